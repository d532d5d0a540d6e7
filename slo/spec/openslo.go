package spec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// OpenSLO SLO documents: ratio metrics with Occurrences budgeting, one Vigil SLO per objective
// ("<name>-<index>", as Sloth names them). v1 puts the indicator beside the objectives; v1alpha
// (which Sloth reads) puts ratioMetrics in each objective.

type openSLODoc struct {
	APIVersion string          `yaml:"apiVersion"`
	Kind       string          `yaml:"kind"`
	Metadata   openSLOMetadata `yaml:"metadata"`
	Spec       openSLOSpec     `yaml:"spec"`
}

type openSLOMetadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type openSLOSpec struct {
	Description     string             `yaml:"description"`
	Service         string             `yaml:"service"`
	Indicator       *openSLOIndicator  `yaml:"indicator"`
	IndicatorRef    string             `yaml:"indicatorRef"`
	TimeWindow      []openSLOWindow    `yaml:"timeWindow"`  // v1
	TimeWindows     []openSLOWindow    `yaml:"timeWindows"` // v1alpha
	BudgetingMethod string             `yaml:"budgetingMethod"`
	Objectives      []openSLOObjective `yaml:"objectives"`
	AlertPolicies   []yaml.Node        `yaml:"alertPolicies"`
}

type openSLOIndicator struct {
	Metadata openSLOMetadata `yaml:"metadata"`
	Spec     struct {
		RatioMetric     *openSLORatio `yaml:"ratioMetric"`
		ThresholdMetric *yaml.Node    `yaml:"thresholdMetric"`
	} `yaml:"spec"`
}

type openSLORatio struct {
	Counter bool           `yaml:"counter"`
	Good    *openSLOSource `yaml:"good"`
	Bad     *openSLOSource `yaml:"bad"`
	Total   *openSLOSource `yaml:"total"`
	RawType string         `yaml:"rawType"`
	Raw     *openSLOSource `yaml:"raw"`
}

// openSLOSource is v1's {metricSource: {type, spec: {query}}} or v1alpha's {source, queryType,
// query}.
type openSLOSource struct {
	MetricSource *struct {
		Type      string `yaml:"type"`
		MetricRef string `yaml:"metricSourceRef"`
		Spec      struct {
			Query string `yaml:"query"`
		} `yaml:"spec"`
	} `yaml:"metricSource"`
	Source    string `yaml:"source"`
	QueryType string `yaml:"queryType"`
	Query     string `yaml:"query"`
}

type openSLOWindow struct {
	Duration  string `yaml:"duration"` // v1: 30d, 4w
	IsRolling *bool  `yaml:"isRolling"`
	Count     int    `yaml:"count"` // v1alpha
	Unit      string `yaml:"unit"`
	Calendar  any    `yaml:"calendar"`
}

type openSLOObjective struct {
	DisplayName     string        `yaml:"displayName"`
	Op              string        `yaml:"op"`
	Value           float64       `yaml:"value"`
	Target          *float64      `yaml:"target"`
	TargetPercent   *float64      `yaml:"targetPercent"`
	TimeSliceTarget *float64      `yaml:"timeSliceTarget"`
	TimeSliceWindow string        `yaml:"timeSliceWindow"`
	RatioMetrics    *openSLORatio `yaml:"ratioMetrics"` // v1alpha
	Indicator       *yaml.Node    `yaml:"indicator"`
	IndicatorRef    string        `yaml:"indicatorRef"`
	CompositeWeight float64       `yaml:"compositeWeight"`
}

func parseOpenSLO(name string, n *yaml.Node, version string) ([]SLO, error) {
	var errs []error
	checkKnown(n, reflect.TypeFor[openSLODoc](), "", func(line int, path, msg string) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, path, msg))
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var doc openSLODoc
	if err := n.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, cleanDecodeError(err))
	}
	where := fmt.Sprintf("%s:%d", name, n.Line)
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: slo %q: %s", where, doc.Metadata.Name, fmt.Sprintf(format, a...))
	}
	switch {
	case doc.Kind != "SLO":
		return nil, fmt.Errorf("%s: kind %q: only SLO documents are read (indicators inline)", where, doc.Kind)
	case doc.Metadata.Name == "":
		return nil, fmt.Errorf("%s: metadata.name: required", where)
	case doc.Spec.Service == "":
		return nil, fail("spec.service: required")
	case doc.Spec.BudgetingMethod != "Occurrences":
		return nil, fail("spec.budgetingMethod: %q: only Occurrences is supported", doc.Spec.BudgetingMethod)
	case doc.Spec.IndicatorRef != "":
		return nil, fail("spec.indicatorRef: put the indicator inline (spec.indicator); references to SLI documents are not read")
	case len(doc.Spec.AlertPolicies) > 0:
		return nil, fail("spec.alertPolicies: not read; Vigil alerts on burn rates by its window policy")
	case len(doc.Spec.Objectives) == 0:
		return nil, fail("spec.objectives: at least one")
	}
	windows := doc.Spec.TimeWindow
	field := "spec.timeWindow"
	if version == OpenSLOAlpha {
		windows, field = doc.Spec.TimeWindows, "spec.timeWindows"
	}
	window, err := openSLOWindowOf(windows, version)
	if err != nil {
		return nil, fail("%s: %v", field, err)
	}
	var out []SLO
	for i, o := range doc.Spec.Objectives {
		f := fmt.Sprintf("spec.objectives[%d]", i)
		ratio := o.RatioMetrics
		if version == OpenSLOV1 {
			if o.RatioMetrics != nil {
				return nil, fail("%s.ratioMetrics: that is v1alpha; in %s the indicator is spec.indicator", f, OpenSLOV1)
			}
			if doc.Spec.Indicator == nil || doc.Spec.Indicator.Spec.RatioMetric == nil {
				return nil, fail("spec.indicator.spec.ratioMetric: required (threshold metrics are not supported)")
			}
			ratio = doc.Spec.Indicator.Spec.RatioMetric
		} else if ratio == nil {
			return nil, fail("%s.ratioMetrics: required", f)
		}
		if o.TimeSliceTarget != nil || o.TimeSliceWindow != "" || o.Indicator != nil || o.IndicatorRef != "" {
			return nil, fail("%s: time slices and per-objective indicators are not supported", f)
		}
		var objective float64
		switch {
		case o.Target != nil:
			objective = *o.Target * 100
		case o.TargetPercent != nil:
			objective = *o.TargetPercent
		default:
			return nil, fail("%s: target (or targetPercent) is required", f)
		}
		objective = math.Round(objective*1e9) / 1e9 // 0.999 × 100 is 99.9, not 99.89999999999999
		sli, err := openSLOSLI(ratio)
		if err != nil {
			return nil, fail("%s: %v", f, err)
		}
		slo := SLO{
			ID: fmt.Sprintf("%s-%s-%d", doc.Spec.Service, doc.Metadata.Name, i), Service: doc.Spec.Service,
			Name: fmt.Sprintf("%s-%d", doc.Metadata.Name, i), Description: doc.Spec.Description,
			Objective: objective, Window: window, Labels: merge(doc.Metadata.Labels), SLI: sli,
			Alerting: Alerting{PageAlert: Alert{Disable: true}, TicketAlert: Alert{Disable: true}},
			Spec:     version, Where: where,
		}
		if err := slo.check(); err != nil {
			return nil, slo.wrap(err)
		}
		out = append(out, slo)
	}
	return out, nil
}

// openSLOSLI turns a ratio metric into Sloth's SLI: bad/total as events, good/total as the
// error ratio 1 − good/total.
func openSLOSLI(r *openSLORatio) (SLI, error) {
	if r.Raw != nil || r.RawType != "" {
		return SLI{}, errors.New("raw ratio metrics are not supported; use good or bad with total")
	}
	query := func(which string, s *openSLOSource) (string, error) {
		switch {
		case s == nil:
			return "", nil
		case s.MetricSource != nil:
			if t := strings.ToLower(s.MetricSource.Type); t != "prometheus" {
				return "", fmt.Errorf("%s.metricSource.type: %q: only Prometheus queries are read", which, s.MetricSource.Type)
			}
			return s.MetricSource.Spec.Query, nil
		default:
			if s.Source != "" && strings.ToLower(s.Source) != "prometheus" {
				return "", fmt.Errorf("%s.source: %q: only prometheus is read", which, s.Source)
			}
			return s.Query, nil
		}
	}
	good, err1 := query("good", r.Good)
	bad, err2 := query("bad", r.Bad)
	total, err3 := query("total", r.Total)
	if err := errors.Join(err1, err2, err3); err != nil {
		return SLI{}, err
	}
	switch {
	case total == "":
		return SLI{}, errors.New("total: a query is required")
	case (good == "") == (bad == ""):
		return SLI{}, errors.New("one of good and bad is required")
	case bad != "":
		return SLI{Events: &Events{ErrorQuery: bad, TotalQuery: total}}, nil
	}
	return SLI{Raw: &Raw{ErrorRatioQuery: fmt.Sprintf("1 - (\n(\n%s\n)\n/\n(\n%s\n)\n)", good, total)}}, nil
}

func openSLOWindowOf(ws []openSLOWindow, version string) (time.Duration, error) {
	if len(ws) != 1 {
		return 0, fmt.Errorf("exactly one window, got %d", len(ws))
	}
	w := ws[0]
	if w.Calendar != nil || (w.IsRolling != nil && !*w.IsRolling) {
		return 0, errors.New("only rolling windows are supported")
	}
	if version == OpenSLOV1 {
		if w.Duration == "" {
			return 0, errors.New("duration: required (e.g. 30d)")
		}
		return parseWindow(w.Duration)
	}
	units := map[string]time.Duration{"Minute": time.Minute, "Hour": time.Hour, "Day": 24 * time.Hour, "Week": 7 * 24 * time.Hour}
	u, ok := units[w.Unit]
	if !ok || w.Count <= 0 {
		return 0, fmt.Errorf("count %d, unit %q: a positive count of Minute, Hour, Day or Week", w.Count, w.Unit)
	}
	return time.Duration(w.Count) * u, nil
}
