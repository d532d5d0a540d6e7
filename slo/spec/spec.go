// Package spec reads SLO specs: Sloth's prometheus/v1 documents (with Vigil's span and log
// SLIs and a per-SLO window) and OpenSLO SLO documents, into one model that the generator and
// the engine share. Every error names where it is (file and line), the SLO and the field.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// DefaultWindow is the SLO window when neither the spec nor the caller gives one.
const DefaultWindow = 30 * 24 * time.Hour

// Spec versions, as sloth_spec labels them.
const (
	SlothV1      = "prometheus/v1"
	OpenSLOV1    = "openslo/v1"
	OpenSLOAlpha = "openslo/v1alpha"
)

// SLO is one objective, whatever document it came from.
type SLO struct {
	// ID is sloth_id: "<service>-<name>", and for OpenSLO "<service>-<name>-<objective index>".
	ID          string
	Service     string
	Name        string
	Description string
	// Objective is in percent: 99.9 means 99.9% of events are good.
	Objective float64
	// Window is the SLO's period; 0 until Defaults gives it one.
	Window time.Duration
	// Labels are the document's labels overlaid by the SLO's.
	Labels   map[string]string
	SLI      SLI
	Alerting Alerting
	// Spec is the document's version (sloth_spec): prometheus/v1, openslo/v1 or v1alpha.
	Spec string
	// Where is "file:line" of the SLO, for messages.
	Where string
}

// ErrorBudget is 1 − objective, as a ratio.
func (s *SLO) ErrorBudget() float64 { return (100 - s.Objective) / 100 }

// ObjectiveRatio is the objective as a ratio.
func (s *SLO) ObjectiveRatio() float64 { return s.Objective / 100 }

// SLI is one of: Events or Raw (PromQL on the store), Spans, Logs.
type SLI struct {
	Events *Events `yaml:"events"`
	Raw    *Raw    `yaml:"raw"`
	Spans  *Spans  `yaml:"spans"`
	Logs   *Logs   `yaml:"logs"`
}

// Kind names the SLI's kind.
func (s *SLI) Kind() string {
	switch {
	case s.Events != nil:
		return "events"
	case s.Raw != nil:
		return "raw"
	case s.Spans != nil:
		return "spans"
	case s.Logs != nil:
		return "logs"
	}
	return ""
}

// Events is Sloth's events SLI: PromQL for the errors and the total, with {{.window}}.
type Events struct {
	ErrorQuery string `yaml:"error_query"`
	TotalQuery string `yaml:"total_query"`
}

// Raw is Sloth's raw SLI: PromQL for the error ratio, with {{.window}}.
type Raw struct {
	ErrorRatioQuery string `yaml:"error_ratio_query"`
}

// Spans counts the spans that match; good ones have no ERROR status and, with Latency, last
// at most that long.
type Spans struct {
	Service    string            `yaml:"service"`
	Kind       string            `yaml:"kind"`
	Name       string            `yaml:"name"`
	NameRegex  string            `yaml:"name_regex"`
	Attributes map[string]string `yaml:"attributes"`
	Latency    time.Duration     `yaml:"latency"`
}

// SpanKinds are the values of Spans.Kind.
var SpanKinds = []string{"internal", "server", "client", "producer", "consumer"}

// Logs counts the log records Match selects; those Bad also selects are the errors.
type Logs struct {
	Match LogMatch `yaml:"match"`
	Bad   LogMatch `yaml:"bad"`
}

// LogMatch selects log records: every field set must hold.
type LogMatch struct {
	Service    string            `yaml:"service"`    // resource service.name
	Body       string            `yaml:"body"`       // regular expression, unanchored
	Severity   string            `yaml:"severity"`   // at least: trace, debug, info, warn, error, fatal
	Attributes map[string]string `yaml:"attributes"` // log or resource attribute, exact
}

func (m *LogMatch) empty() bool {
	return m.Service == "" && m.Body == "" && m.Severity == "" && len(m.Attributes) == 0
}

// Severities are the values of LogMatch.Severity, lowest first.
var Severities = []string{"trace", "debug", "info", "warn", "error", "fatal"}

// Alerting is Sloth's alerting block.
type Alerting struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	PageAlert   Alert             `yaml:"page_alert"`
	TicketAlert Alert             `yaml:"ticket_alert"`
	// Windows replaces the window policy's burn-rate windows for this SLO (Vigil's).
	Windows []BurnWindow `yaml:"windows"`
}

// Alert is one of the two alerts.
type Alert struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// BurnWindow is one alert condition: the burn rate over both windows above Factor.
type BurnWindow struct {
	Severity string        `yaml:"severity"` // page or ticket
	Long     time.Duration `yaml:"long"`
	Short    time.Duration `yaml:"short"`
	Factor   float64       `yaml:"factor"`
}

// slothDoc is a prometheus/v1 document.
type slothDoc struct {
	Version string            `yaml:"version"`
	Service string            `yaml:"service"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []slothSLO        `yaml:"slos"`
}

type slothSLO struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Objective   float64           `yaml:"objective"`
	Window      string            `yaml:"window"`
	Labels      map[string]string `yaml:"labels"`
	SLI         SLI               `yaml:"sli"`
	Alerting    Alerting          `yaml:"alerting"`
}

// camelKeys are the older Sloth spellings, accepted for the current ones.
var camelKeys = map[string]string{
	"errorQuery":      "error_query",
	"totalQuery":      "total_query",
	"errorRatioQuery": "error_ratio_query",
	"pageAlert":       "page_alert",
	"ticketAlert":     "ticket_alert",
}

// ParseFile reads every document in data (YAML, "---"-separated). name is used in messages.
func ParseFile(name string, data []byte) ([]SLO, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []SLO
	var errs []error
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		slos, err := ParseNode(name, doc.Content[0])
		errs = append(errs, err)
		out = append(out, slos...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no SLOs", name)
	}
	return out, nil
}

// ParseNode reads one document, from a file or inline in the agent's config.
func ParseNode(name string, n *yaml.Node) ([]SLO, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: an SLO document is a mapping", name, n.Line)
	}
	switch v := scalar(n, "version"); {
	case v == SlothV1:
		return parseSloth(name, n)
	case v != "":
		return nil, fmt.Errorf("%s:%d: version %q: want %s (or an OpenSLO document with apiVersion)", name, n.Line, v, SlothV1)
	}
	switch v := scalar(n, "apiVersion"); v {
	case OpenSLOV1, OpenSLOAlpha:
		return parseOpenSLO(name, n, v)
	case "":
		return nil, fmt.Errorf("%s:%d: neither version (%s) nor apiVersion (%s, %s)", name, n.Line, SlothV1, OpenSLOV1, OpenSLOAlpha)
	default:
		return nil, fmt.Errorf("%s:%d: apiVersion %q: want %s or %s", name, n.Line, v, OpenSLOV1, OpenSLOAlpha)
	}
}

func parseSloth(name string, n *yaml.Node) ([]SLO, error) {
	renameKeys(n)
	var errs []error
	sloNodes := child(n, "slos")
	checkKnown(n, slothDocType, "", func(line int, path, msg string) {
		// Name the SLO the key is in, as every other error does.
		var i int
		if _, err := fmt.Sscanf(path, "slos[%d]", &i); err == nil && sloNodes != nil && i < len(sloNodes.Content) {
			if slo := scalar(sloNodes.Content[i], "name"); slo != "" {
				errs = append(errs, fmt.Errorf("%s:%d: slo %q: %s: %s", name, line, slo, path, msg))
				return
			}
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, path, msg))
	})
	// Unknown keys are reported with everything else wrong (the decoder skips them).
	var doc slothDoc
	if err := n.Decode(&doc); err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("%s: %w", name, cleanDecodeError(err)))...)
	}
	if doc.Service == "" {
		errs = append(errs, fmt.Errorf("%s:%d: service: required", name, n.Line))
	}
	if len(doc.SLOs) == 0 {
		errs = append(errs, fmt.Errorf("%s:%d: slos: at least one SLO", name, n.Line))
	}
	var out []SLO
	seen := map[string]bool{}
	for i, s := range doc.SLOs {
		line := n.Line
		if sloNodes != nil && i < len(sloNodes.Content) {
			line = sloNodes.Content[i].Line
		}
		slo := SLO{
			ID: doc.Service + "-" + s.Name, Service: doc.Service, Name: s.Name, Description: s.Description,
			Objective: s.Objective, Labels: merge(doc.Labels, s.Labels), SLI: s.SLI, Alerting: s.Alerting,
			Spec: SlothV1, Where: fmt.Sprintf("%s:%d", name, line),
		}
		var err error
		if s.Window != "" {
			slo.Window, err = parseWindow(s.Window)
		}
		err = errors.Join(err, slo.check())
		if seen[s.Name] {
			err = errors.Join(err, fmt.Errorf("name: %q is used by another SLO of service %q", s.Name, doc.Service))
		}
		seen[s.Name] = true
		if err != nil {
			errs = append(errs, slo.wrap(err))
			continue
		}
		out = append(out, slo)
	}
	return out, errors.Join(errs...)
}

// wrap prefixes each of err's parts with where the SLO is and its name.
func (s *SLO) wrap(err error) error {
	var parts []error
	for _, e := range flatten(err) {
		parts = append(parts, fmt.Errorf("%s: slo %q: %w", s.Where, s.Name, e))
	}
	return errors.Join(parts...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// check validates the SLO's fields; errors name the field.
func (s *SLO) check() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Name == "" {
		add("name: required")
	} else if !nameRE.MatchString(s.Name) {
		add("name: %q: letters, digits, '_', '.' and '-' only", s.Name)
	}
	if !(s.Objective > 0 && s.Objective < 100) {
		add("objective: must be > 0 and < 100 (a percentage), got %v", s.Objective)
	}
	if s.Window < 0 || (s.Window > 0 && (s.Window < time.Hour || s.Window%time.Minute != 0)) {
		add("window: must be at least 1h, in whole minutes, got %s", model.Duration(s.Window))
	}
	for k := range s.Labels {
		if !model.UTF8Validation.IsValidLabelName(k) {
			add("labels: %q is not a valid label name", k)
		}
	}
	switch n := countSet(s.SLI.Events != nil, s.SLI.Raw != nil, s.SLI.Spans != nil, s.SLI.Logs != nil); {
	case n == 0:
		add("sli: one of events, raw, spans or logs is required")
	case n > 1:
		add("sli: one of events, raw, spans or logs, not %d", n)
	}
	if e := s.SLI.Events; e != nil {
		errs = append(errs, checkQuery("sli.events.error_query", e.ErrorQuery), checkQuery("sli.events.total_query", e.TotalQuery))
	}
	if r := s.SLI.Raw; r != nil {
		errs = append(errs, checkQuery("sli.raw.error_ratio_query", r.ErrorRatioQuery))
	}
	if sp := s.SLI.Spans; sp != nil {
		if sp.Kind != "" && !slices.Contains(SpanKinds, sp.Kind) {
			add("sli.spans.kind: %q: one of %s", sp.Kind, strings.Join(SpanKinds, ", "))
		}
		if sp.Name != "" && sp.NameRegex != "" {
			add("sli.spans: name and name_regex: set one of them")
		}
		if sp.NameRegex != "" {
			if _, err := regexp.Compile(sp.NameRegex); err != nil {
				add("sli.spans.name_regex: %v", err)
			}
		}
		if sp.Latency < 0 {
			add("sli.spans.latency: must be >= 0, got %s", sp.Latency)
		}
		if sp.Service == "" && sp.Kind == "" && sp.Name == "" && sp.NameRegex == "" && len(sp.Attributes) == 0 {
			add("sli.spans: match on at least one of service, kind, name, name_regex, attributes")
		}
	}
	if l := s.SLI.Logs; l != nil {
		if l.Match.empty() {
			add("sli.logs.match: match on at least one of service, body, severity, attributes")
		}
		if l.Bad.empty() {
			add("sli.logs.bad: say which of the matched records are bad (service, body, severity, attributes)")
		}
		for field, m := range map[string]LogMatch{"sli.logs.match": l.Match, "sli.logs.bad": l.Bad} {
			if m.Body != "" {
				if _, err := regexp.Compile(m.Body); err != nil {
					add("%s.body: %v", field, err)
				}
			}
			if m.Severity != "" && !slices.Contains(Severities, m.Severity) {
				add("%s.severity: %q: one of %s", field, m.Severity, strings.Join(Severities, ", "))
			}
		}
	}
	a := &s.Alerting
	if a.Name == "" && (!a.PageAlert.Disable || !a.TicketAlert.Disable) {
		add("alerting.name: required unless both page_alert and ticket_alert are disabled")
	}
	for i, w := range a.Windows {
		f := fmt.Sprintf("alerting.windows[%d]", i)
		if w.Severity != "page" && w.Severity != "ticket" {
			add("%s.severity: %q: page or ticket", f, w.Severity)
		}
		if w.Short <= 0 || w.Long <= w.Short || w.Long%time.Minute != 0 || w.Short%time.Minute != 0 {
			add("%s: want 0 < short < long, in whole minutes; got short %s, long %s", f, w.Short, w.Long)
		}
		if w.Factor <= 0 {
			add("%s.factor: must be > 0, got %v", f, w.Factor)
		}
	}
	return errors.Join(errs...)
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// checkQuery renders the query's {{.window}} and parses it as PromQL.
func checkQuery(field, q string) error {
	if strings.TrimSpace(q) == "" {
		return fmt.Errorf("%s: required", field)
	}
	out, err := RenderWindow(q, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(out); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// RenderWindow replaces {{.window}} in a query with w in Prometheus's notation.
func RenderWindow(q string, w time.Duration) (string, error) {
	t, err := template.New("query").Option("missingkey=error").Parse(q)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, map[string]string{"window": model.Duration(w).String()}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// parseWindow reads a window in Prometheus's notation (30d, 4w, 720h).
func parseWindow(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("window: %q: %w (units: m, h, d, w)", s, err)
	}
	return time.Duration(d), nil
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// scalar is the value of a top-level scalar key of a mapping node.
func scalar(n *yaml.Node, key string) string {
	if c := child(n, key); c != nil && c.Kind == yaml.ScalarNode {
		return c.Value
	}
	return ""
}

func child(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// renameKeys rewrites the older camelCase keys to the current ones, everywhere in n.
func renameKeys(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if to, ok := camelKeys[n.Content[i].Value]; ok {
				n.Content[i].Value = to
			}
		}
	}
	for _, c := range n.Content {
		renameKeys(c)
	}
}

var typeInMsg = regexp.MustCompile(` (in type|into) \S*spec\.\S+`)

// cleanDecodeError drops Go type names from yaml's messages.
func cleanDecodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var msgs []string
		for _, m := range te.Errors {
			msgs = append(msgs, typeInMsg.ReplaceAllString(m, ""))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}
