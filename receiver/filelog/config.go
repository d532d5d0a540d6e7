package filelog

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/logparse"
)

// Formats of the lines in the files.
const (
	FormatNone   = "none"   // each line as it is
	FormatCRI    = "cri"    // CRI-O / containerd: "time stream P|F message"
	FormatDocker = "docker" // Docker json-file: {"log":...,"stream":...,"time":...}
	FormatAuto   = "auto"   // CRI or Docker told apart by each file's first line, else none
)

// Config is the receiver's configuration.
type Config struct {
	// Include and Exclude are globs (filepath.Match, ** not supported); they are evaluated
	// again every poll, so new files are found.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// StartAt is where files found at start-up without a checkpoint are read from: end
	// (default) or beginning. Files that appear later are read from their beginning.
	StartAt string `yaml:"start_at"`
	// PollInterval is how often the globs are evaluated and files read.
	PollInterval time.Duration `yaml:"poll_interval"`
	// CheckpointDir keeps the committed offset of every file, by fingerprint.
	CheckpointDir string `yaml:"checkpoint_dir"`
	// CheckpointInterval is how often committed offsets are written (and at shutdown).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Format of the lines: none, cri, docker or auto.
	Format string `yaml:"format"`
	// MaxLineBytes cuts longer lines (the rest is dropped, counted).
	MaxLineBytes int `yaml:"max_line_bytes"`
	// FingerprintBytes is how much of a file's start identifies it, across renames.
	FingerprintBytes int `yaml:"fingerprint_bytes"`
	// BatchLines bounds the lines of one batch; MaxReadBytes what one poll reads of a file.
	BatchLines   int `yaml:"batch_lines"`
	MaxReadBytes int `yaml:"max_read_bytes"`
	// Parser, when set, parses each line (after the container format) into attributes.
	Parser *ParserConfig `yaml:"parser"`
	// Encoding of the files: utf-8 (default), latin1, windows-1252, utf-16le, utf-16be.
	Encoding string `yaml:"encoding"`
	// Multiline, when set, joins lines into entries that start at lines matching a pattern
	// (stack traces).
	Multiline *MultilineConfig `yaml:"multiline"`
}

// MultilineConfig joins continuation lines to the entry before them.
type MultilineConfig struct {
	// LineStartPattern matches the first line of each entry.
	LineStartPattern string `yaml:"line_start_pattern"`
	// FlushAfter sends the last entry of a file once nothing has followed it this long.
	FlushAfter time.Duration `yaml:"flush_after"`
}

// ParserConfig parses lines: json, logfmt or regex (named groups); the fields become the
// record's attributes, and timestamp, severity and body may be taken from fields.
type ParserConfig struct {
	Type      string `yaml:"type"`
	Regex     string `yaml:"regex"`
	Timestamp struct {
		Field  string `yaml:"field"`
		Layout string `yaml:"layout"` // rfc3339, unix, unix_ms, unix_us, unix_ns, or a Go layout
	} `yaml:"timestamp"`
	Severity struct {
		Field string `yaml:"field"`
	} `yaml:"severity"`
	Body struct {
		Field string `yaml:"field"`
	} `yaml:"body"`
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{StartAt: "end", PollInterval: 200 * time.Millisecond, CheckpointInterval: time.Second, Format: FormatAuto,
		MaxLineBytes: 1 << 20, FingerprintBytes: 1000, BatchLines: 1000, MaxReadBytes: 4 << 20}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Include) == 0 {
		add("include: at least one glob (e.g. /var/log/pods/*/*/*.log)")
	}
	for i, g := range append(append([]string{}, c.Include...), c.Exclude...) {
		if _, err := filepath.Match(g, ""); err != nil {
			add("include/exclude[%d]: %q: %v", i, g, err)
		}
	}
	if c.StartAt != "end" && c.StartAt != "beginning" {
		add("start_at: end or beginning, got %q", c.StartAt)
	}
	if c.CheckpointDir == "" {
		add("checkpoint_dir: required (the offsets read, so that a restart neither loses nor repeats lines)")
	}
	switch c.Format {
	case FormatNone, FormatCRI, FormatDocker, FormatAuto:
	default:
		add("format: none, cri, docker or auto, got %q", c.Format)
	}
	if c.PollInterval < 10*time.Millisecond || c.CheckpointInterval < 10*time.Millisecond {
		add("poll_interval and checkpoint_interval: at least 10ms, got %s and %s", c.PollInterval, c.CheckpointInterval)
	}
	if c.MaxLineBytes < 64 || c.FingerprintBytes < 16 || c.BatchLines < 1 || c.MaxReadBytes < c.MaxLineBytes {
		add("max_line_bytes (>= 64), fingerprint_bytes (>= 16), batch_lines (>= 1), max_read_bytes (>= max_line_bytes): got %d, %d, %d, %d",
			c.MaxLineBytes, c.FingerprintBytes, c.BatchLines, c.MaxReadBytes)
	}
	switch c.Encoding {
	case "", "utf-8", "utf8", "latin1", "iso-8859-1", "windows-1252":
	case "utf-16le", "utf-16be":
		if c.Multiline != nil || c.Format != FormatNone {
			add("encoding %s: only with format none and without multiline", c.Encoding)
		}
	default:
		add("encoding: utf-8, latin1, windows-1252, utf-16le or utf-16be, got %q", c.Encoding)
	}
	if m := c.Multiline; m != nil {
		if _, err := regexp.Compile(m.LineStartPattern); err != nil || m.LineStartPattern == "" {
			add("multiline.line_start_pattern: a regular expression matching each entry's first line (%v)", err)
		}
		if m.FlushAfter == 0 {
			m.FlushAfter = time.Second
		}
		if m.FlushAfter < 0 {
			add("multiline.flush_after: must be > 0, got %s", m.FlushAfter)
		}
		if c.Format != FormatNone {
			add("multiline: only with format none (container runtimes split lines themselves: their partial lines are joined)")
		}
	}
	if p := c.Parser; p != nil {
		switch p.Type {
		case "json", "logfmt":
			if p.Regex != "" {
				add("parser.regex: only for type regex")
			}
		case "regex":
			if _, err := logparse.NewRegex(p.Regex); err != nil {
				add("parser.regex: %v", err)
			}
		default:
			add("parser.type: json, logfmt or regex, got %q", p.Type)
		}
		switch p.Timestamp.Layout {
		case "", "rfc3339", "unix", "unix_ms", "unix_us", "unix_ns":
		default:
			if !strings.Contains(p.Timestamp.Layout, "2006") && !strings.Contains(p.Timestamp.Layout, "06") {
				add("parser.timestamp.layout: rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout (with 2006), got %q", p.Timestamp.Layout)
			}
		}
	}
	return errors.Join(errs...)
}
