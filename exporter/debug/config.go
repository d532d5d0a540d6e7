package debug

import (
	"errors"
	"fmt"
	"strings"
)

// Verbosity levels, as in the OpenTelemetry Collector.
const (
	Basic    = "basic"
	Normal   = "normal"
	Detailed = "detailed"
)

// Config is the debug exporter's configuration, with the OpenTelemetry Collector's key names.
// Output always goes to Vigil's log (set by service.telemetry.logs); the Collector's
// use_internal_logger: false, which writes to stdout instead, is not supported.
type Config struct {
	// Verbosity is basic (one line per batch), normal (one line per item) or detailed (the batch
	// as OTLP/JSON).
	Verbosity string `yaml:"verbosity"`
	// SamplingInitial batches per second and signal are logged…
	SamplingInitial int `yaml:"sampling_initial"`
	// …then every SamplingThereafter-th one in the same second (0: none).
	SamplingThereafter int `yaml:"sampling_thereafter"`
}

// NewConfig returns the Collector's defaults: basic, the first 2 batches a second, then every one.
func NewConfig() *Config {
	return &Config{Verbosity: Basic, SamplingInitial: 2, SamplingThereafter: 1}
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.Verbosity) {
	case Basic, Normal, Detailed:
	default:
		errs = append(errs, fmt.Errorf("verbosity: must be basic, normal or detailed, got %q", c.Verbosity))
	}
	if c.SamplingInitial < 0 {
		errs = append(errs, fmt.Errorf("sampling_initial: must be ≥ 0, got %d", c.SamplingInitial))
	}
	if c.SamplingThereafter < 0 {
		errs = append(errs, fmt.Errorf("sampling_thereafter: must be ≥ 0, got %d", c.SamplingThereafter))
	}
	return errors.Join(errs...)
}
