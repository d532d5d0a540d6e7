package loki

import (
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/server"
)

// Defaults.
const (
	// DefaultEndpoint is on loopback, Loki's port: nothing is exposed unless the config says so.
	DefaultEndpoint = "127.0.0.1:3100"
	// Path is the push API's.
	Path = "/loki/api/v1/push"
	// DefaultMaxDecompressedBodySize bounds a body after snappy or gzip.
	DefaultMaxDecompressedBodySize = 64 << 20
	// DefaultMaxLineBytes is Loki's own default max_line_size.
	DefaultMaxLineBytes = 256 << 10
	// DefaultMaxLabels bounds the labels of a stream (Loki's max_label_names_per_series is 15).
	DefaultMaxLabels = 30
	// DefaultMaxLabelNameLength and DefaultMaxLabelValueLength are Loki's own defaults
	// (max_label_name_length, max_label_value_length).
	DefaultMaxLabelNameLength  = 1024
	DefaultMaxLabelValueLength = 2048
	// DefaultMaxStructuredMetadataEntries and DefaultMaxStructuredMetadataSize are Loki's own
	// defaults (max_structured_metadata_entries_count, max_structured_metadata_size).
	DefaultMaxStructuredMetadataEntries = 128
	DefaultMaxStructuredMetadataSize    = 64 << 10
)

// Config is the receiver's configuration.
type Config struct {
	server.HTTP `yaml:",inline"`
	// MaxDecompressedBodySize bounds a body after decompression.
	MaxDecompressedBodySize int `yaml:"max_decompressed_body_size"`
	// MaxLineBytes refuses (400) a request with a longer line.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxLabels refuses (400) a request with a stream of more labels.
	MaxLabels int `yaml:"max_labels"`
	// MaxLabelNameLength and MaxLabelValueLength refuse (400) a request with a stream label
	// whose name or value is longer, in bytes.
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxStructuredMetadataEntries and MaxStructuredMetadataSize refuse (400) a request with an
	// entry of more structured metadata, by count or by bytes of names and values.
	MaxStructuredMetadataEntries int `yaml:"max_structured_metadata_entries_count"`
	MaxStructuredMetadataSize    int `yaml:"max_structured_metadata_size"`
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{HTTP: server.NewHTTP(DefaultEndpoint), MaxDecompressedBodySize: DefaultMaxDecompressedBodySize,
		MaxLineBytes: DefaultMaxLineBytes, MaxLabels: DefaultMaxLabels,
		MaxLabelNameLength: DefaultMaxLabelNameLength, MaxLabelValueLength: DefaultMaxLabelValueLength,
		MaxStructuredMetadataEntries: DefaultMaxStructuredMetadataEntries, MaxStructuredMetadataSize: DefaultMaxStructuredMetadataSize}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	errs := []error{c.HTTP.Validate()}
	if c.MaxDecompressedBodySize <= 0 {
		errs = append(errs, fmt.Errorf("max_decompressed_body_size: must be > 0, got %d", c.MaxDecompressedBodySize))
	}
	if c.MaxLineBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_line_bytes: must be > 0, got %d", c.MaxLineBytes))
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"max_labels", c.MaxLabels}, {"max_label_name_length", c.MaxLabelNameLength}, {"max_label_value_length", c.MaxLabelValueLength},
		{"max_structured_metadata_entries_count", c.MaxStructuredMetadataEntries}, {"max_structured_metadata_size", c.MaxStructuredMetadataSize}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %d", f.key, f.v))
		}
	}
	if need := c.minInFlight(); c.HTTP.MaxInFlightBytes > 0 && c.HTTP.MaxInFlightBytes < need {
		errs = append(errs, fmt.Errorf("max_in_flight_bytes: must be at least %d (max_request_body_size plus max_decompressed_body_size, plus a third of that for the Go runtime's overhead), got %d",
			need, c.HTTP.MaxInFlightBytes))
	}
	return errors.Join(errs...)
}

func (c *Config) minInFlight() int64 {
	return server.LimitFor(c.HTTP.MaxBodySize() + int64(c.MaxDecompressedBodySize))
}

func (c *Config) inFlightLimit() int64 {
	if c.HTTP.MaxInFlightBytes > 0 {
		return c.HTTP.MaxInFlightBytes
	}
	return max(c.HTTP.InFlightLimit(), c.minInFlight())
}
