package prometheusremotewrite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/server"
)

// Defaults.
const (
	// DefaultEndpoint is on loopback, so that nothing is exposed unless the config says so.
	DefaultEndpoint = "127.0.0.1:9201"
	DefaultPath     = "/api/v1/write"
	// DefaultMaxDecompressedBodySize bounds a body after snappy. Remote-write bodies compress
	// about 5–10×, so this is generous for the 20 MiB compressed default.
	DefaultMaxDecompressedBodySize = 128 << 20
)

// Config is the receiver's configuration.
type Config struct {
	server.HTTP `yaml:",inline"`
	// Path is the URL path requests are posted to.
	Path string `yaml:"path"`
	// MaxDecompressedBodySize bounds a body after snappy decoding; checked against snappy's
	// declared length before anything is allocated.
	MaxDecompressedBodySize int `yaml:"max_decompressed_body_size"`
	// MaxSeriesPerRequest refuses (400) requests with more series (DefaultMaxSeriesPerRequest);
	// 0 means no limit.
	MaxSeriesPerRequest int `yaml:"max_series_per_request"`
	// MaxLabelsPerSeries, MaxLabelNameLength and MaxLabelValueLength refuse (400) a request with
	// a series over them; 0 means no limit.
	MaxLabelsPerSeries  int `yaml:"max_labels_per_series"`
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
}

// Default limits per series: generous next to what backends accept (Mimir's defaults are 30
// labels, 1024-byte names and 2048-byte values), so that they stop abuse without refusing what
// a backend would take.
const (
	// DefaultMaxSeriesPerRequest is 25 times what Prometheus sends at most per request
	// (max_samples_per_send 2000) and 5 times vmagent's largest block.
	DefaultMaxSeriesPerRequest = 50000
	DefaultMaxLabelsPerSeries  = 128
	DefaultMaxLabelNameLength  = 1024
	DefaultMaxLabelValueLength = 16 << 10
)

// limits is the scanner's form of the per-series limits.
func (c *Config) limits() promrw.Limits {
	return promrw.Limits{Labels: c.MaxLabelsPerSeries, NameLength: c.MaxLabelNameLength, ValueLength: c.MaxLabelValueLength}
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		HTTP:                    server.NewHTTP(DefaultEndpoint),
		Path:                    DefaultPath,
		MaxDecompressedBodySize: DefaultMaxDecompressedBodySize,
		MaxSeriesPerRequest:     DefaultMaxSeriesPerRequest,
		MaxLabelsPerSeries:      DefaultMaxLabelsPerSeries,
		MaxLabelNameLength:      DefaultMaxLabelNameLength,
		MaxLabelValueLength:     DefaultMaxLabelValueLength,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	errs := []error{c.HTTP.Validate()}
	switch {
	case c.Path == "" || !strings.HasPrefix(c.Path, "/"):
		errs = append(errs, fmt.Errorf("path: must be a URL path starting with /, got %q", c.Path))
	case strings.ContainsAny(c.Path, " ?#"):
		errs = append(errs, fmt.Errorf("path: must be a plain URL path, got %q", c.Path))
	}
	if c.MaxDecompressedBodySize <= 0 {
		errs = append(errs, fmt.Errorf("max_decompressed_body_size: must be > 0, got %d", c.MaxDecompressedBodySize))
	}
	if need := c.minInFlight(); c.HTTP.MaxInFlightBytes > 0 && c.HTTP.MaxInFlightBytes < need {
		errs = append(errs, fmt.Errorf("max_in_flight_bytes: must be at least %d (max_request_body_size plus max_decompressed_body_size, plus a third of that for the Go runtime's overhead), so that the largest request fits, got %d",
			need, c.HTTP.MaxInFlightBytes))
	}
	for _, l := range []struct {
		key string
		v   int
	}{{"max_series_per_request", c.MaxSeriesPerRequest}, {"max_labels_per_series", c.MaxLabelsPerSeries},
		{"max_label_name_length", c.MaxLabelNameLength}, {"max_label_value_length", c.MaxLabelValueLength}} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0 (0: no limit), got %d", l.key, l.v))
		}
	}
	return errors.Join(errs...)
}

// minInFlight is the budget that admits what the largest request holds: its body as sent and
// snappy's output (the runtime's share comes on top, see server.RuntimeShare).
func (c *Config) minInFlight() int64 {
	return server.LimitFor(c.HTTP.MaxBodySize() + int64(c.MaxDecompressedBodySize))
}

// inFlightLimit is the budget of bytes in flight: max_in_flight_bytes, or the listener's
// default raised to what the largest request holds.
func (c *Config) inFlightLimit() int64 {
	if c.HTTP.MaxInFlightBytes > 0 {
		return c.HTTP.MaxInFlightBytes
	}
	return max(c.HTTP.InFlightLimit(), c.minInFlight())
}
