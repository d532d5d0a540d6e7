package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/slo/spec"
	"github.com/vigilhq/vigil/slo/windows"
)

// Config is the agent config's top-level `slos` section.
type Config struct {
	// Files are globs of spec files (Sloth prometheus/v1, OpenSLO), relative to the config file.
	Files []string `yaml:"files"`
	// Specs are spec documents written inline.
	Specs InlineSpecs `yaml:"specs"`
	// StateDir keeps each SLO's per-minute counts across restarts.
	StateDir string `yaml:"state_dir"`
	// EvaluationInterval is how often burn rates are computed and alerts sent.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// WindowPolicy is google (the SRE workbook's windows, Sloth's) or pyrra.
	WindowPolicy string `yaml:"window_policy"`
	// MinEvents is the least number of events an alert's long window needs for it to fire.
	MinEvents float64 `yaml:"min_events"`
	// NoDataAfter raises SLONoData after this long without events; 0 turns it off.
	NoDataAfter time.Duration `yaml:"no_data_after"`

	dir  string
	slos []spec.SLO
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{EvaluationInterval: 30 * time.Second, WindowPolicy: "google", MinEvents: DefaultMinEvents, NoDataAfter: DefaultNoDataAfter}
}

// SetDirectory makes relative files relative to dir, the config file's directory.
func (c *Config) SetDirectory(dir string) { c.dir = dir }

// InlineSpecs are spec documents in the agent's config, kept as YAML for spec.ParseNode.
type InlineSpecs []*yaml.Node

// UnmarshalYAML keeps the documents.
func (s *InlineSpecs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: specs: a list of SLO documents", n.Line)
	}
	*s = append((*s)[:0], n.Content...)
	return nil
}

// Validate reads every spec and checks the options; errors name the file (or specs[i]), the
// line, the SLO and the field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.StateDir == "" {
		add("state_dir: required (each SLO's per-minute counts are kept there across restarts)")
	}
	if c.EvaluationInterval < time.Second {
		add("evaluation_interval: at least 1s, got %s", c.EvaluationInterval)
	}
	if !slices.Contains(windows.Policies, c.WindowPolicy) {
		add("window_policy: %q: one of %v", c.WindowPolicy, windows.Policies)
	}
	if c.MinEvents < 0 {
		add("min_events: must be >= 0, got %v", c.MinEvents)
	}
	if c.NoDataAfter < 0 || (c.NoDataAfter > 0 && c.NoDataAfter < time.Minute) {
		add("no_data_after: 0 (off) or at least 1m, got %s", c.NoDataAfter)
	}
	var slos []spec.SLO
	ids := map[string]string{}
	collect := func(got []spec.SLO) {
		for _, s := range got {
			if prev, ok := ids[s.ID]; ok {
				add("%s: slo %q: id %q is also defined at %s", s.Where, s.Name, s.ID, prev)
				continue
			}
			ids[s.ID] = s.Where
			slos = append(slos, s)
		}
	}
	for i, pattern := range c.Files {
		if !filepath.IsAbs(pattern) && c.dir != "" {
			pattern = filepath.Join(c.dir, pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			add("files[%d]: %q matches no file", i, c.Files[i])
			continue
		}
		for _, m := range matches {
			got, err := readFile(m)
			errs = append(errs, err)
			collect(got)
		}
	}
	for i, n := range c.Specs {
		source := fmt.Sprintf("specs[%d]", i)
		got, err := spec.ParseNode(source, n)
		errs = append(errs, inlineErrors(source, err))
		collect(got)
	}
	if len(slos) == 0 && len(errs) == 0 {
		add("no SLOs: give files or specs")
	}
	for i := range slos {
		if _, err := windows.For(c.WindowPolicy, &slos[i]); err != nil {
			errs = append(errs, err)
		}
	}
	c.slos = slos
	return errors.Join(errs...)
}

// SLOs are the specs Validate read.
func (c *Config) SLOs() []spec.SLO { return c.slos }

// LineError is an error in a spec written inline in the agent's config: the config loader
// reports it at Line, under the section's Path.
type LineError struct {
	Line int
	Path string
	Err  error
}

func (e *LineError) Error() string              { return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err) }
func (e *LineError) Unwrap() error              { return e.Err }
func (e *LineError) LineAndPath() (int, string) { return e.Line, e.Path }

// inlineErrors turns spec.ParseNode's "specs[i]:LINE: message" errors into LineErrors.
func inlineErrors(source string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var line int
		var rest string
		if msg, ok := strings.CutPrefix(err.Error(), source+":"); ok {
			if n, _ := fmt.Sscanf(msg, "%d:", &line); n == 1 {
				_, rest, _ = strings.Cut(msg, ": ")
				out = append(out, &LineError{Line: line, Path: source, Err: errors.New(rest)})
				return
			}
		}
		out = append(out, err)
	}
	walk(err)
	return errors.Join(out...)
}
