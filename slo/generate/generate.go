// Package generate writes an SLO spec out as Prometheus rules for a central Prometheus: the
// groups, names, labels and expressions Sloth generates for the same spec, so that dashboards
// and alerts built on Sloth's output work unchanged.
package generate

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/slo/spec"
	"github.com/vigilhq/vigil/slo/windows"
)

// Options tune the output as Sloth's command-line flags do.
type Options struct {
	// Window is the period of SLOs whose spec gives none (Sloth's --default-slo-period).
	Window time.Duration
	// Policy names the burn-rate windows (windows.Policies).
	Policy string
	// DisableAlerts and DisableRecordings leave out those groups.
	DisableAlerts, DisableRecordings bool
	// ExtraLabels are added to every SLO's labels (Sloth's -l).
	ExtraLabels map[string]string
	// Version is written in sloth_slo_info's sloth_version label.
	Version string
}

// Groups is a Prometheus rule file.
type Groups struct {
	Groups []Group `yaml:"groups"`
	// Skipped names the SLOs on spans or logs: they have no PromQL equivalent and are
	// evaluated in the agent only.
	Skipped []string `yaml:"-"`
}

// Group is one rule group.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording or an alerting rule.
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Sloth's metric and label names.
const (
	SLIErrorPrefix = "slo:sli_error:ratio_rate"
	LabelID        = "sloth_id"
	LabelService   = "sloth_service"
	LabelSLO       = "sloth_slo"
	LabelWindow    = "sloth_window"
	LabelSeverity  = "sloth_severity"
)

// SLIErrorMetric is the recording of the error ratio over w, e.g. slo:sli_error:ratio_rate5m.
func SLIErrorMetric(w time.Duration) string { return SLIErrorPrefix + model.Duration(w).String() }

// Generate builds the rule groups of every SLO, in order: SLI recordings, meta recordings and
// alerts for each.
func Generate(slos []spec.SLO, o Options) (*Groups, error) {
	out := &Groups{}
	for i := range slos {
		s := slos[i]
		if s.Window == 0 {
			s.Window = o.Window
		}
		if s.Window == 0 {
			s.Window = spec.DefaultWindow
		}
		if k := s.SLI.Kind(); k == "spans" || k == "logs" {
			out.Skipped = append(out.Skipped, fmt.Sprintf("%s: slo %q: sli.%s has no PromQL equivalent; it is evaluated in the agent only", s.Where, s.Name, k))
			continue
		}
		ws, err := windows.For(o.Policy, &s)
		if err != nil {
			return nil, fmt.Errorf("%s: slo %q: %w", s.Where, s.Name, err)
		}
		labels := merge(s.Labels, o.ExtraLabels)
		if !o.DisableRecordings {
			sli, err := sliRules(&s, ws, labels)
			if err != nil {
				return nil, fmt.Errorf("%s: slo %q: %w", s.Where, s.Name, err)
			}
			out.Groups = append(out.Groups,
				Group{Name: "sloth-slo-sli-recordings-" + s.ID, Rules: sli},
				Group{Name: "sloth-slo-meta-recordings-" + s.ID, Rules: metaRules(&s, ws, labels, o.Version)})
		}
		if !o.DisableAlerts {
			if alerts := alertRules(&s, ws); len(alerts) > 0 {
				out.Groups = append(out.Groups, Group{Name: "sloth-slo-alerts-" + s.ID, Rules: alerts})
			}
		}
	}
	return out, nil
}

// YAML is the rule file, with a header saying where it came from.
func (g *Groups) YAML(header string) ([]byte, error) {
	var b bytes.Buffer
	for line := range strings.SplitSeq(strings.TrimRight(header, "\n"), "\n") {
		b.WriteString("# " + line + "\n")
	}
	b.WriteString("\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(g); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func idLabels(s *spec.SLO) map[string]string {
	return map[string]string{LabelID: s.ID, LabelService: s.Service, LabelSLO: s.Name}
}

// selector is the matchers that pick the SLO's own recordings.
func selector(s *spec.SLO) string {
	return fmt.Sprintf(`%s=%q, %s=%q, %s=%q`, LabelID, s.ID, LabelService, s.Service, LabelSLO, s.Name)
}

// quickShort is the shortest page window (5m for Google's): the period's ratio is averaged
// over it, and the current burn rate is read from it.
func quickShort(ws []windows.Window) time.Duration {
	var d time.Duration
	for _, w := range ws {
		if d == 0 || w.Short < d {
			d = w.Short
		}
	}
	return d
}

func sliRules(s *spec.SLO, ws []windows.Window, labels map[string]string) ([]Rule, error) {
	var rules []Rule
	for _, w := range windows.Durations(ws) {
		var tpl string
		switch {
		case s.SLI.Events != nil:
			tpl = fmt.Sprintf("(%s)\n/\n(%s)\n", s.SLI.Events.ErrorQuery, s.SLI.Events.TotalQuery)
		case s.SLI.Raw != nil:
			tpl = fmt.Sprintf("(%s)", strings.TrimRight(s.SLI.Raw.ErrorRatioQuery, "\n"))
		}
		expr, err := spec.RenderWindow(tpl, w)
		if err != nil {
			return nil, err
		}
		rules = append(rules, Rule{Record: SLIErrorMetric(w), Expr: expr,
			Labels: merge(labels, idLabels(s), map[string]string{LabelWindow: model.Duration(w).String()})})
	}
	short := SLIErrorMetric(quickShort(ws))
	period := model.Duration(s.Window).String()
	rules = append(rules, Rule{
		Record: SLIErrorMetric(s.Window),
		Expr: fmt.Sprintf("sum_over_time(%s{%s}[%s])\n/ ignoring (%s)\ncount_over_time(%s{%s}[%s])\n",
			short, selector(s), period, LabelWindow, short, selector(s), period),
		Labels: merge(labels, idLabels(s), map[string]string{LabelWindow: period}),
	})
	return rules, nil
}

func metaRules(s *spec.SLO, ws []windows.Window, labels map[string]string, version string) []Rule {
	l := merge(labels, idLabels(s))
	sel := selector(s)
	objective := num(s.ObjectiveRatio())
	burn := func(metric string) string {
		return fmt.Sprintf("%s{%s}\n/ on(%s, %s, %s) group_left\nslo:error_budget:ratio{%s}\n", metric, sel, LabelID, LabelSLO, LabelService, sel)
	}
	mode := "cli-gen-prom"
	if s.Spec != spec.SlothV1 {
		mode = "cli-gen-openslo"
	}
	info := merge(l, map[string]string{
		"sloth_mode": mode, "sloth_objective": num(s.Objective), "sloth_spec": s.Spec, "sloth_version": version,
	})
	return []Rule{
		{Record: "slo:objective:ratio", Expr: "vector(" + objective + ")", Labels: l},
		{Record: "slo:error_budget:ratio", Expr: "vector(1-" + objective + ")", Labels: l},
		{Record: "slo:time_period:days", Expr: "vector(" + num(s.Window.Hours()/24) + ")", Labels: l},
		{Record: "slo:current_burn_rate:ratio", Expr: burn(SLIErrorMetric(quickShort(ws))), Labels: l},
		{Record: "slo:period_burn_rate:ratio", Expr: burn(SLIErrorMetric(s.Window)), Labels: l},
		{Record: "slo:period_error_budget_remaining:ratio", Expr: "1 - slo:period_burn_rate:ratio{" + sel + "}", Labels: l},
		{Record: "sloth_slo_info", Expr: "vector(1)", Labels: info},
	}
}

func alertRules(s *spec.SLO, ws []windows.Window) []Rule {
	var rules []Rule
	for _, sev := range []string{"page", "ticket"} {
		a := s.Alerting.PageAlert
		if sev == "ticket" {
			a = s.Alerting.TicketAlert
		}
		if a.Disable {
			continue
		}
		var conds []string
		var forDur time.Duration
		for _, w := range ws {
			if w.Severity != sev {
				continue
			}
			threshold := fmt.Sprintf("(%s * %s)", num(w.Factor), num(s.ErrorBudget()))
			cond := func(d time.Duration) string {
				return fmt.Sprintf("    max(%s{%s} > %s) without (%s)", SLIErrorMetric(d), selector(s), threshold, LabelWindow)
			}
			conds = append(conds, fmt.Sprintf("(\n%s\n    and\n%s\n)", cond(w.Short), cond(w.Long)))
			forDur = max(forDur, w.For)
		}
		if len(conds) == 0 {
			continue
		}
		r := Rule{
			Alert:  s.Alerting.Name,
			Expr:   strings.Join(conds, "\nor\n") + "\n",
			Labels: merge(s.Alerting.Labels, a.Labels, map[string]string{LabelSeverity: sev}),
			Annotations: merge(map[string]string{
				"summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.",
				"title":   "(" + sev + ") {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast.",
			}, s.Alerting.Annotations, a.Annotations),
		}
		if forDur > 0 {
			r.For = model.Duration(forDur).String()
		}
		rules = append(rules, r)
	}
	return rules
}

// num formats a float as Go's shortest exact form, without an exponent for ordinary values.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
