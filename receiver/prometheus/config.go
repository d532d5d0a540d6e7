package prometheus

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// Config is the prometheus receiver's configuration, with the OpenTelemetry Collector's key names:
// `config` holds what a Prometheus configuration file would.
type Config struct {
	PrometheusConfig PromConfig `yaml:"config"`
	// FallbackScrapeProtocol is the format assumed for a target whose Content-Type is missing
	// or not one Prometheus knows (a plain web server serving a file), in every scrape config
	// that does not set its own fallback_scrape_protocol. Prometheus has no default and fails
	// such scrapes; the OpenTelemetry Collector's receiver defaults to the classic text format,
	// and so does Vigil. "none" keeps Prometheus's behaviour.
	FallbackScrapeProtocol string `yaml:"fallback_scrape_protocol"`
}

// DefaultFallbackScrapeProtocol is the classic text format (upstream's PrometheusText0_0_4), as in
// the Collector's receiver.
const DefaultFallbackScrapeProtocol = "PrometheusText0.0.4"

// NoFallback turns the fallback off.
const NoFallback = "none"

// NewConfig returns an empty configuration; it does not validate until it has a scrape config.
func NewConfig() *Config { return &Config{FallbackScrapeProtocol: DefaultFallbackScrapeProtocol} }

// Validate checks what the upstream decoding could not: that there is something to scrape.
func (c *Config) Validate() error {
	var errs []error
	p := c.PrometheusConfig.Config
	if p == nil || (len(p.ScrapeConfigs) == 0 && len(p.ScrapeConfigFiles) == 0) {
		errs = append(errs, errors.New("config.scrape_configs: at least one scrape config is required"))
	}
	if f := c.FallbackScrapeProtocol; f != NoFallback {
		if err := promconfig.ScrapeProtocol(f).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("fallback_scrape_protocol: %w, or %q", err, NoFallback))
		}
	}
	return errors.Join(errs...)
}

// scrapeConfig returns the Prometheus configuration the scrape manager runs: the scrape configs
// of scrape_config_files read in (upstream would read them again, and lose what is set here) and
// the receiver's fallback protocol set where a job has none.
func (c *Config) scrapeConfig() (*promconfig.Config, []*promconfig.ScrapeConfig, error) {
	scfgs, err := c.PrometheusConfig.Config.GetScrapeConfigs()
	if err != nil {
		return nil, nil, err
	}
	out := *c.PrometheusConfig.Config
	out.ScrapeConfigFiles = nil
	out.ScrapeConfigs = make([]*promconfig.ScrapeConfig, len(scfgs))
	for i, sc := range scfgs {
		cp := *sc
		if cp.ScrapeFallbackProtocol == "" && c.FallbackScrapeProtocol != NoFallback {
			cp.ScrapeFallbackProtocol = promconfig.ScrapeProtocol(c.FallbackScrapeProtocol)
		}
		out.ScrapeConfigs[i] = &cp
	}
	return &out, out.ScrapeConfigs, nil
}

// PromConfig is a Prometheus configuration (`global`, `scrape_configs`, `scrape_config_files`)
// decoded, defaulted and validated by the upstream config package, so that every Prometheus key,
// default and check applies, strictly (unknown keys fail).
type PromConfig struct {
	// Config is the upstream result; nil when the block is absent. Read-only, as upstream requires.
	Config *promconfig.Config
}

// Sections and keys of a Prometheus configuration that make no sense in a scrape receiver. They
// are refused, not ignored: a user who writes remote_write here expects it to happen.
var (
	unsupportedSections = map[string]string{
		"alerting":     "Vigil evaluates alerts in its own alerting component, not in the scrape receiver",
		"rule_files":   "Vigil evaluates rules in its own alerting component, not in the scrape receiver",
		"remote_write": "send with an exporter (prometheusremotewrite) in the pipeline instead",
		"remote_read":  "the scrape receiver stores nothing to read back",
		"storage":      "the scrape receiver stores nothing; exporters queue and persist",
		"tracing":      "Vigil's own telemetry is set under service.telemetry",
		"otlp":         "receive OTLP with the otlp receiver",
		"runtime":      "Vigil's runtime is not configured per receiver",
	}
	unsupportedGlobal = map[string]string{
		"external_labels":        "they would be silently lost here; add labels with relabel_configs, or in the exporter",
		"query_log_file":         "the scrape receiver runs no queries",
		"query_max_duration":     "the scrape receiver runs no queries",
		"query_max_samples_read": "the scrape receiver runs no queries",
		"query_max_series":       "the scrape receiver runs no queries",
	}
)

// MarshalYAML prints the upstream configuration's sections the receiver takes (its secrets as
// <secret>), with upstream's defaults filled in.
func (p PromConfig) MarshalYAML() (any, error) {
	if p.Config == nil {
		return nil, nil
	}
	return struct {
		Global        promconfig.GlobalConfig    `yaml:"global"`
		ScrapeConfigs []*promconfig.ScrapeConfig `yaml:"scrape_configs,omitempty"`
	}{p.Config.GlobalConfig, p.Config.ScrapeConfigs}, nil
}

// UnmarshalYAML hands the block to the upstream config package (config.Load, the function
// Prometheus itself uses) and turns its errors into ones that point at lines of the Vigil file.
//
// It takes a yaml.Node on purpose: Vigil's strict loader does not walk into types that decode
// themselves, and upstream decodes strictly with its own yaml library, so unknown keys are
// reported once, by upstream, with the names Prometheus users know.
func (p *PromConfig) UnmarshalYAML(n *yaml.Node) (err error) {
	p.Config = nil
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return typeErrors(fmt.Sprintf("line %d: must be a mapping holding a Prometheus configuration (global, scrape_configs)", n.Line))
	}
	// Refused sections are reported with whatever upstream finds, so that one run shows all.
	msgs := refuseUnsupported(n)
	// Aliases may point at anchors outside this block, which upstream would not see; copy their
	// targets in. The copy keeps the original line numbers, which map upstream's lines back. It
	// is marshalled in block style, one key per line, so that a line upstream names is one key.
	local := copyResolved(n, false)
	text, err := yaml.Marshal(copyResolved(n, true))
	if err != nil {
		return typeErrors(fmt.Sprintf("line %d: %v", n.Line, err))
	}
	cfg, err := load(string(text))
	if err != nil {
		msgs = append(msgs, translate(err, text, local)...)
	}
	if len(msgs) > 0 {
		return typeErrors(msgs...)
	}
	p.Config = cfg
	return nil
}

// load runs the upstream loader. A panic in it would take the agent down on bad input, so it is
// turned into an error.
func load(text string) (cfg *promconfig.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("the Prometheus config package failed on this input: %v", r)
		}
	}()
	cfg, err = promconfig.Load(text, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	// scrape_config_files are read at start-up by upstream; read them now too so that a broken
	// file fails validation rather than start-up.
	if _, err := cfg.GetScrapeConfigs(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func refuseUnsupported(n *yaml.Node) []string {
	var msgs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], resolve(n.Content[i+1])
		if why, ok := unsupportedSections[key.Value]; ok {
			msgs = append(msgs, fmt.Sprintf("line %d: config.%s: not supported by the prometheus receiver: %s", key.Line, key.Value, why))
		}
		if key.Value == "global" && val.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(val.Content); j += 2 {
				if why, ok := unsupportedGlobal[val.Content[j].Value]; ok {
					msgs = append(msgs, fmt.Sprintf("line %d: config.global.%s: not supported by the prometheus receiver: %s",
						val.Content[j].Line, val.Content[j].Value, why))
				}
			}
		}
	}
	return msgs
}

func typeErrors(msgs ...string) error { return &yaml.TypeError{Errors: msgs} }

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// copyResolved deep-copies n with aliases replaced by copies of what they point at, and flow
// collections turned into block ones if asked.
func copyResolved(n *yaml.Node, block bool) *yaml.Node {
	n = resolve(n)
	c := *n
	c.Anchor = ""
	if block && (c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode) {
		c.Style &^= yaml.FlowStyle
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = copyResolved(child, block)
	}
	return &c
}

var (
	v2Line    = regexp.MustCompile(`^line (\d+): `)
	unknownSD = regexp.MustCompile(`^field \w+_sd_configs not found`)
)

// supportedSD lists the *_sd_configs keys registered with upstream, which are those of the
// discovery packages this binary imports.
func supportedSD() string {
	names := discovery.RegisteredConfigNames()
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if n != "static" {
			keys = append(keys, n+"_sd_configs")
		}
	}
	return "static_configs, " + strings.Join(keys, ", ")
}

// translate rewrites an upstream error: yaml.v2 type errors carry line numbers of the text
// upstream parsed (this block, re-marshalled), which are mapped back to lines of the Vigil file;
// other errors (upstream's validation) carry no line and are put on the block's first line.
func translate(err error, text []byte, local *yaml.Node) []string {
	var te *yamlv2.TypeError
	if !errors.As(err, &te) {
		return []string{fmt.Sprintf("line %d: %v", local.Line, err)}
	}
	lines := mapLines(text, local)
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := v2Line.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, fmt.Sprintf("line %d: %s", local.Line, e))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		msg := e[len(m[0]):]
		if unknownSD.MatchString(msg) {
			msg += " (supported here: " + supportedSD() + ")"
		}
		loc, ok := lines[n]
		if !ok {
			msgs = append(msgs, fmt.Sprintf("line %d: %s", local.Line, msg))
			continue
		}
		if loc.scalar {
			// Vigil's loader finds the path of a key with a scalar value from its line; naming
			// it again would print it twice. It cannot find other keys, nor anything in a flow
			// collection (several keys on one line): those carry their path in the message.
			msgs = append(msgs, fmt.Sprintf("line %d: %s", loc.line, msg))
		} else {
			msgs = append(msgs, fmt.Sprintf("line %d: %s: %s", loc.line, loc.path, msg))
		}
	}
	return msgs
}

type location struct {
	line   int    // in the Vigil file
	path   string // inside the receiver's config: config.scrape_configs[0].job_name
	scalar bool   // a key with a scalar value, or a scalar item of a list, in block style
}

// mapLines parses the re-marshalled text again and walks it beside the block it came from (the
// same shape), recording for each line of the text where it came from.
func mapLines(text []byte, local *yaml.Node) map[int]location {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil || len(doc.Content) != 1 {
		return nil
	}
	out := map[int]location{}
	walkLines(doc.Content[0], local, "config", out)
	return out
}

func walkLines(re, orig *yaml.Node, path string, out map[int]location) {
	if re.Kind != orig.Kind || len(re.Content) != len(orig.Content) {
		return // cannot happen for a marshal round trip; give up rather than mislead
	}
	block := orig.Style&yaml.FlowStyle == 0
	add := func(line int, loc location) {
		if _, taken := out[line]; !taken {
			out[line] = loc
		}
	}
	switch re.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(re.Content); i += 2 {
			p := path + "." + orig.Content[i].Value
			add(re.Content[i].Line, location{line: orig.Content[i].Line, path: p, scalar: block && orig.Content[i+1].Kind == yaml.ScalarNode})
			walkLines(re.Content[i+1], orig.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i := range re.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if re.Content[i].Kind == yaml.ScalarNode {
				add(re.Content[i].Line, location{line: orig.Content[i].Line, path: p, scalar: block})
			}
			walkLines(re.Content[i], orig.Content[i], p, out)
		}
	}
	// Whatever else is on a line upstream names (a scalar, a flow mapping, a list item's mapping)
	// maps to where the node starts.
	add(re.Line, location{line: orig.Line, path: path})
}
