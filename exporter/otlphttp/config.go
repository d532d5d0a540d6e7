package otlphttp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/sender"
)

// Encodings of the request body.
const (
	EncodingProto = "proto"
	EncodingJSON  = "json"
)

// Config is the exporter's configuration, with otelcol's key names.
type Config struct {
	Client client.HTTP   `yaml:",inline"`
	Sender sender.Config `yaml:",inline"`
	// Per-signal URLs, used as given; when empty the signal's path (/v1/traces, …) is appended
	// to endpoint.
	TracesEndpoint  string `yaml:"traces_endpoint"`
	MetricsEndpoint string `yaml:"metrics_endpoint"`
	LogsEndpoint    string `yaml:"logs_endpoint"`
	// Encoding is proto (default) or json. JSON needs every batch decoded; proto passes
	// encoded batches through untouched.
	Encoding string `yaml:"encoding"`
	// MaxRequestBytes (Vigil's) caps the uncompressed protobuf size of one request: a bigger
	// batch is cut (at resource boundaries, without decoding) and sent as several requests
	// within one attempt. 0, the default, is no cap: HTTP backends' body limits vary (tens of
	// MiB are common) and are rarely met, so nothing is cut before a backend asks. Whatever the
	// cap, a request answered 413 is cut in halves and sent again (otlp.Splitter).
	MaxRequestBytes int `yaml:"max_request_bytes"`
}

// NewConfig returns the defaults: proto, gzip, 30s per attempt (otelcol's HTTP client timeout),
// retries and the memory queue on. An endpoint has to be set.
func NewConfig() *Config {
	s := sender.NewConfig()
	s.Timeout = 30 * time.Second
	return &Config{Client: client.NewHTTP(), Sender: s, Encoding: EncodingProto}
}

var paths = map[batch.Signal]string{batch.Traces: "v1/traces", batch.Metrics: "v1/metrics", batch.Logs: "v1/logs"}

// URL returns where the signal is sent, or "" if neither endpoint nor the signal's own
// endpoint is set.
func (c *Config) URL(sig batch.Signal) string {
	var own string
	switch sig {
	case batch.Traces:
		own = c.TracesEndpoint
	case batch.Metrics:
		own = c.MetricsEndpoint
	case batch.Logs:
		own = c.LogsEndpoint
	}
	if own != "" {
		return own
	}
	if c.Client.Endpoint == "" {
		return ""
	}
	return strings.TrimSuffix(c.Client.Endpoint, "/") + "/" + paths[sig]
}

// Validate reports every problem, with paths relative to the exporter.
func (c *Config) Validate() error {
	errs := []error{c.Client.Validate(), c.Sender.Validate()}
	for key, v := range map[string]string{
		"traces_endpoint":  c.TracesEndpoint,
		"metrics_endpoint": c.MetricsEndpoint,
		"logs_endpoint":    c.LogsEndpoint,
	} {
		if v == "" {
			continue
		}
		if err := client.ValidateURL(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if c.Client.Endpoint == "" && c.TracesEndpoint == "" && c.MetricsEndpoint == "" && c.LogsEndpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set (or traces_endpoint, metrics_endpoint, logs_endpoint), e.g. \"https://collector:4318\""))
	}
	if c.MaxRequestBytes < 0 {
		errs = append(errs, fmt.Errorf("max_request_bytes: must be ≥ 0 (0: no cap), got %d", c.MaxRequestBytes))
	}
	switch c.Encoding {
	case EncodingProto, EncodingJSON:
	default:
		errs = append(errs, fmt.Errorf("encoding: must be proto or json, got %q", c.Encoding))
	}
	return errors.Join(errs...)
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m (component.AckPointer).
func (c *Config) AckPoint(m component.AckMode) string { return c.Sender.AckPoint(m) }
