package file

import (
	"errors"
	"fmt"
	"time"
)

// Formats and compressions, as in the OpenTelemetry Collector.
const (
	FormatJSON  = "json"
	FormatProto = "proto"
	Zstd        = "zstd"
)

// Config is the file exporter's configuration, with the OpenTelemetry Collector's key names.
type Config struct {
	// Path is the file written to; its directory is created if needed. Required.
	Path string `yaml:"path"`
	// Format is json (one OTLP/JSON Export…Request per line) or proto (each request as a 4-byte
	// big-endian length and the OTLP protobuf bytes).
	Format string `yaml:"format"`
	// Rotation starts a new file when the current one would pass max_megabytes.
	Rotation Rotation `yaml:"rotation"`
	// FlushInterval is how often buffered records are written to the file.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Compression "zstd" compresses each record on its own; records are then length-prefixed in
	// either format, as in the Collector. Empty: none.
	Compression string `yaml:"compression"`
}

// Rotation is always on, as in the Collector. Backups are numbered: path.1 is the newest.
// The Collector's localtime (for timestamped backup names) does not apply to numbered names.
type Rotation struct {
	// MaxMegabytes is the size at which the file is rotated.
	MaxMegabytes int `yaml:"max_megabytes"`
	// MaxDays removes backups older than this many days at each rotation; 0: no age limit.
	MaxDays int `yaml:"max_days"`
	// MaxBackups is how many rotated files are kept; 0: all of them.
	MaxBackups int `yaml:"max_backups"`
}

// NewConfig returns the Collector's defaults: json, rotation at 100 MiB keeping 100 backups,
// flushed every second. Path has no default.
func NewConfig() *Config {
	return &Config{
		Format:        FormatJSON,
		Rotation:      Rotation{MaxMegabytes: 100, MaxBackups: 100},
		FlushInterval: time.Second,
	}
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: required"))
	}
	if c.Format != FormatJSON && c.Format != FormatProto {
		errs = append(errs, fmt.Errorf("format: must be json or proto, got %q", c.Format))
	}
	if c.Compression != "" && c.Compression != Zstd {
		errs = append(errs, fmt.Errorf("compression: must be zstd or empty, got %q", c.Compression))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval: must be > 0, got %s", c.FlushInterval))
	}
	if c.Rotation.MaxMegabytes <= 0 {
		errs = append(errs, fmt.Errorf("rotation.max_megabytes: must be > 0, got %d", c.Rotation.MaxMegabytes))
	}
	if c.Rotation.MaxDays < 0 {
		errs = append(errs, fmt.Errorf("rotation.max_days: must be ≥ 0 (0: no age limit), got %d", c.Rotation.MaxDays))
	}
	if c.Rotation.MaxBackups < 0 {
		errs = append(errs, fmt.Errorf("rotation.max_backups: must be ≥ 0 (0: keep all), got %d", c.Rotation.MaxBackups))
	}
	return errors.Join(errs...)
}
