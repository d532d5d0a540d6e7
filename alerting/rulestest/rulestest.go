// Package rulestest runs unit tests of Prometheus rules in promtool's `test rules` format:
// series written in the expanding notation (`1+2x10`, `_`, `stale`, native histograms as
// `{{schema:0 count:4 sum:5 buckets:[1 2 1]}}+{{...}}x3`) are loaded into an in-memory store
// with promqltest's loader, the rule files are loaded by Prometheus's rule
// manager and their groups evaluated step by step, and the alerts firing and the results of
// PromQL expressions at each eval_time are compared with the expected ones.
package rulestest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/alerting/rulefiles"
)

// Exit codes, as promtool's.
const (
	ExitOK      = 0
	ExitFailure = 1
)

// File is one test file.
type File struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	GroupEvalOrder     []string       `yaml:"group_eval_order"`
	FuzzyCompare       bool           `yaml:"fuzzy_compare"`
	Tests              []TestGroup    `yaml:"tests"`
	dir                string         // rule_files are relative to the test file
}

// TestGroup is one entry of tests: input series and what to expect of them.
type TestGroup struct {
	Name           string            `yaml:"name"`
	Interval       model.Duration    `yaml:"interval"`
	InputSeries    []Series          `yaml:"input_series"`
	AlertRuleTests []AlertTest       `yaml:"alert_rule_test"`
	PromQLTests    []ExprTest        `yaml:"promql_expr_test"`
	ExternalLabels map[string]string `yaml:"external_labels"`
	ExternalURL    string            `yaml:"external_url"`
	StartTimestamp Timestamp         `yaml:"start_timestamp"`
}

// Timestamp is start_timestamp: Unix seconds (fractions allowed) or RFC 3339, as promtool's.
// Zero means the Unix epoch.
type Timestamp struct {
	time.Time
}

// UnmarshalYAML reads the scalar's text, so that an unquoted RFC 3339 time (a YAML
// !!timestamp) and a number are read the same way as a quoted string.
func (t *Timestamp) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: start_timestamp must be a Unix timestamp or an RFC 3339 time", n.Line)
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		sec, frac := math.Modf(f)
		t.Time = time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC()
		return nil
	}
	parsed, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		return fmt.Errorf("cannot parse %q to a valid timestamp", n.Value)
	}
	t.Time = parsed
	return nil
}

// Series is an input series: a selector and its values in the expanding notation.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertTest expects the alerts of one alerting rule firing at eval_time.
type AlertTest struct {
	EvalTime  model.Duration  `yaml:"eval_time"`
	Alertname string          `yaml:"alertname"`
	ExpAlerts []ExpectedAlert `yaml:"exp_alerts"`
}

// ExpectedAlert is one alert's labels (besides alertname) and annotations.
type ExpectedAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// ExprTest expects the samples of a PromQL expression at eval_time.
type ExprTest struct {
	Expr       string           `yaml:"expr"`
	EvalTime   model.Duration   `yaml:"eval_time"`
	ExpSamples []ExpectedSample `yaml:"exp_samples"`
}

// ExpectedSample is one sample: its series in selector notation and its value, a float or,
// when Histogram is set, a native histogram in the series notation
// (`{{schema:0 count:4 sum:5 buckets:[1 2 1]}}`).
type ExpectedSample struct {
	Labels    string  `yaml:"labels"`
	Value     float64 `yaml:"value"`
	Histogram string  `yaml:"histogram"`
}

// Run tests each file and writes promtool's report ("Unit Testing: FILE", then SUCCESS or
// FAILED with the differences) to out; it returns promtool's exit code.
func Run(out io.Writer, files ...string) int {
	code := ExitOK
	for _, f := range files {
		fmt.Fprintln(out, "Unit Testing: ", f)
		if errs := runFile(f); len(errs) > 0 {
			fmt.Fprintln(out, "  FAILED:")
			for _, e := range errs {
				fmt.Fprintln(out, e.Error())
				fmt.Fprintln(out)
			}
			code = ExitFailure
		} else {
			fmt.Fprintln(out, "  SUCCESS")
		}
		fmt.Fprintln(out)
	}
	return code
}

func runFile(name string) []error {
	data, err := os.ReadFile(name)
	if err != nil {
		return []error{err}
	}
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return []error{fmt.Errorf("%s: %w", name, err)}
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	f.dir = filepath.Dir(name)
	ruleFiles, err := f.ruleFiles()
	if err != nil {
		return []error{err}
	}
	// The rule files must load before any test runs: their errors are the test file's. Their
	// groups' positions give the evaluation order of groups not in group_eval_order.
	fileOrder := map[string]int{}
	for _, rf := range ruleFiles {
		rgs, errs := rulefiles.Parse(rf, nil)
		if len(errs) > 0 {
			return errs
		}
		for _, g := range rgs.Groups {
			fileOrder[rules.GroupKey(rf, g.Name)] = len(fileOrder)
		}
	}
	order := map[string]int{}
	for i, g := range f.GroupEvalOrder {
		if _, dup := order[g]; dup {
			return []error{fmt.Errorf("group name repeated in evaluation order: %s", g)}
		}
		order[g] = i
	}
	var errs []error
	for _, tg := range f.Tests {
		if tg.Interval == 0 {
			tg.Interval = f.EvaluationInterval
		}
		errs = append(errs, tg.run(time.Duration(f.EvaluationInterval), order, fileOrder, f.FuzzyCompare, ruleFiles)...)
	}
	return errs
}

// ruleFiles resolves rule_files against the test file's directory and expands globs.
func (f *File) ruleFiles() ([]string, error) {
	var out []string
	for _, p := range f.RuleFiles {
		if !filepath.IsAbs(p) {
			p = filepath.Join(f.dir, p)
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("rule file %s: no such file", p)
		}
		out = append(out, m...)
	}
	return out, nil
}

// loadCommand writes the input series as promqltest's load command.
func (tg *TestGroup) loadCommand() string {
	var b strings.Builder
	fmt.Fprintf(&b, "load %s\n", time.Duration(tg.Interval))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&b, "  %s %s\n", s.Series, s.Values)
	}
	return b.String()
}

// run evaluates the rule groups every evalInterval from 0 to the last eval_time of the group's
// tests, checking the alerts at each step where an alert test falls, then the expressions.
func (tg *TestGroup) run(evalInterval time.Duration, order, fileOrder map[string]int, fuzzy bool, ruleFiles []string) []error {
	suite, err := promqltest.NewLazyLoader(tg.loadCommand(), promqltest.LazyLoaderOpts{
		EnableAtModifier: true, EnableNegativeOffset: true, Parser: rulefiles.Parser,
		StartTime: tg.StartTimestamp.Time,
	})
	if err != nil {
		return []error{err}
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval
	mgr := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       slog.New(slog.DiscardHandler),
		Parser:       rulefiles.Parser,
	})
	groupMap, errs := mgr.LoadGroups(time.Duration(tg.Interval), labels.FromMap(tg.ExternalLabels), tg.ExternalURL, nil, false, ruleFiles...)
	if len(errs) > 0 {
		return errs
	}
	groups := ordered(groupMap, order, fileOrder)
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // no restart to restore from: ALERTS is written from the start
			}
		}
	}

	// The eval_times of alert tests, in order; each is checked after the last evaluation at or
	// before it.
	byTime := map[time.Duration][]AlertTest{}
	var times []time.Duration
	var last time.Duration
	for _, at := range tg.AlertRuleTests {
		if at.Alertname == "" {
			return []error{fmt.Errorf("an item under alert_rule_test misses required attribute alertname at eval_time %v%s", at.EvalTime, tg.where())}
		}
		t := time.Duration(at.EvalTime)
		if _, ok := byTime[t]; !ok {
			times = append(times, t)
		}
		byTime[t] = append(byTime[t], at)
		last = max(last, t)
	}
	for _, et := range tg.PromQLTests {
		last = max(last, time.Duration(et.EvalTime))
	}
	slices.Sort(times)
	eq := equalFloats(fuzzy)

	// eval_times count from start_timestamp; the errors of rules name the time since the epoch.
	epoch := time.Unix(0, 0).UTC()
	mint := epoch
	if !tg.StartTimestamp.IsZero() {
		mint = tg.StartTimestamp.Time
	}
	var failures []error
	next := 0
	for step := time.Duration(0); step <= last; step += evalInterval {
		ts := mint.Add(step)
		var evalErrs []error
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErrs = append(evalErrs, err)
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if err := r.LastError(); err != nil {
						evalErrs = append(evalErrs, fmt.Errorf("    rule: %s, time: %s, err: %w", r.Name(), model.Duration(ts.Sub(epoch)), err))
					}
				}
			}
		})
		if len(evalErrs) > 0 {
			return append(failures, evalErrs...)
		}
		for ; next < len(times) && times[next] >= step && times[next] < step+evalInterval; next++ {
			failures = append(failures, tg.checkAlerts(groups, byTime[times[next]], times[next])...)
		}
	}
	for _, et := range tg.PromQLTests {
		failures = append(failures, tg.checkExpr(suite, mint, et, eq)...)
	}
	return failures
}

func (tg *TestGroup) where() string {
	if tg.Name == "" {
		return ""
	}
	return fmt.Sprintf(" (in TestGroup %s)", tg.Name)
}

// ordered lists the groups named in group_eval_order first, in that order, then the others in
// the order their files were given and they appear in them, which is how Prometheus lists them.
func ordered(m map[string]*rules.Group, order map[string]int, fileOrder map[string]int) []*rules.Group {
	gs := make([]*rules.Group, 0, len(m))
	for _, g := range m {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		oi, iok := order[gs[i].Name()]
		oj, jok := order[gs[j].Name()]
		switch {
		case iok && jok:
			return oi < oj
		case iok != jok:
			return iok
		}
		return fileOrder[rules.GroupKey(gs[i].File(), gs[i].Name())] < fileOrder[rules.GroupKey(gs[j].File(), gs[j].Name())]
	})
	return gs
}

// alertText is an alert's labels and annotations, as the report shows them.
type alertText struct {
	labels, annotations labels.Labels
}

func (a alertText) String() string {
	return fmt.Sprintf("Labels:%s\nAnnotations:%s", a.labels.String(), a.annotations.String())
}

func sortAlerts(as []alertText) {
	sort.Slice(as, func(i, j int) bool {
		if c := labels.Compare(as[i].labels, as[j].labels); c != 0 {
			return c < 0
		}
		return labels.Compare(as[i].annotations, as[j].annotations) < 0
	})
}

func (tg *TestGroup) checkAlerts(groups []*rules.Group, tests []AlertTest, at time.Duration) []error {
	got := map[string][]alertText{}
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got[ar.Name()] = append(got[ar.Name()], alertText{a.Labels.Copy(), a.Annotations.Copy()})
				}
			}
		}
	}
	var errs []error
	for _, t := range tests {
		var want []alertText
		for _, e := range t.ExpAlerts {
			ls := map[string]string{labels.AlertName: t.Alertname}
			for k, v := range e.ExpLabels {
				ls[k] = v
			}
			want = append(want, alertText{labels.FromMap(ls), labels.FromMap(e.ExpAnnotations)})
		}
		have := slices.Clone(got[t.Alertname])
		sortAlerts(want)
		sortAlerts(have)
		if !slices.EqualFunc(want, have, func(a, b alertText) bool {
			return labels.Equal(a.labels, b.labels) && labels.Equal(a.annotations, b.annotations)
		}) {
			name := ""
			if tg.Name != "" {
				name = fmt.Sprintf("    name: %s,\n", tg.Name)
			}
			errs = append(errs, fmt.Errorf("%s    alertname: %s, time: %s, \n        exp:%v, \n        got:%v",
				name, t.Alertname, model.Duration(at), listAlerts(want), listAlerts(have)))
		}
	}
	return errs
}

func listAlerts(as []alertText) string {
	if len(as) == 0 {
		return "[]"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("\n            %d:\n              %s", i, strings.ReplaceAll(a.String(), "\n", "\n              "))
	}
	return "[" + strings.Join(parts, "") + "\n        ]"
}

// sampleText is one sample of an expression's result or expectation. A histogram is kept as
// its test expression, so that histograms compare as promtool compares them: equal when their
// schema, count, sum, zero bucket, custom bounds, counter-reset hint and buckets print the same.
// A float and a histogram never compare equal.
type sampleText struct {
	labels    labels.Labels
	value     float64
	histogram string
}

func (s sampleText) String() string {
	switch {
	case s.histogram == "":
		return fmt.Sprintf("%s %v", s.labels, s.value)
	case s.value != 0:
		// promtool compares the value of a histogram sample too (the result's is always 0):
		// without it, such a difference would not show.
		return fmt.Sprintf("%s %s value:%v", s.labels, s.histogram, s.value)
	}
	return fmt.Sprintf("%s %s", s.labels, s.histogram)
}

func (tg *TestGroup) checkExpr(suite *promqltest.LazyLoader, mint time.Time, et ExprTest, eq func(a, b float64) bool) []error {
	failed := func(err error) []error {
		return []error{fmt.Errorf("    expr: %q, time: %s, err: %w", et.Expr, et.EvalTime, err)}
	}
	at := mint.Add(time.Duration(et.EvalTime))
	q, err := suite.QueryEngine().NewInstantQuery(suite.Context(), suite.Queryable(), nil, et.Expr, at)
	if err != nil {
		return failed(err)
	}
	defer q.Close()
	res := q.Exec(suite.Context())
	if res.Err != nil {
		return failed(res.Err)
	}
	var got []sampleText
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			got = append(got, sampleText{s.Metric, s.F, histogramText(s.H)})
		}
	case promql.Scalar:
		got = append(got, sampleText{labels.EmptyLabels(), v.V, ""})
	default:
		return failed(errors.New("rule result is not a vector or scalar"))
	}
	var want []sampleText
	for _, s := range et.ExpSamples {
		w, err := parseExpected(s)
		if err != nil {
			return failed(fmt.Errorf("labels %q: %w", s.Labels, err))
		}
		want = append(want, w)
	}
	byLabels := func(s []sampleText) {
		sort.Slice(s, func(i, j int) bool { return labels.Compare(s[i].labels, s[j].labels) < 0 })
	}
	byLabels(got)
	byLabels(want)
	if !slices.EqualFunc(want, got, func(a, b sampleText) bool {
		return labels.Equal(a.labels, b.labels) && a.histogram == b.histogram && eq(a.value, b.value)
	}) {
		return []error{fmt.Errorf("    expr: %q, time: %s,\n        exp: %s\n        got: %s", et.Expr, et.EvalTime, listSamples(want), listSamples(got))}
	}
	return nil
}

// parseExpected reads an expected sample's labels and, if given, its histogram: one value in
// the series notation, read by the same parser as the input series.
func parseExpected(s ExpectedSample) (sampleText, error) {
	ls, err := rulefiles.Parser.ParseMetric(s.Labels)
	if err != nil {
		return sampleText{}, err
	}
	w := sampleText{labels: ls, value: s.Value}
	if s.Histogram == "" {
		return w, nil
	}
	_, values, err := rulefiles.Parser.ParseSeriesDesc("{} " + s.Histogram)
	switch {
	case err != nil:
		return sampleText{}, err
	case len(values) != 1:
		return sampleText{}, fmt.Errorf("expected 1 value, got %d", len(values))
	case values[0].Histogram == nil:
		return sampleText{}, fmt.Errorf("expected histogram, got %v", values[0])
	}
	w.histogram = histogramText(values[0].Histogram)
	return w, nil
}

// histogramText is h's test expression, or "" for a float sample. The expression cannot show
// more than one bucket span; should h still have several after compaction, its full form is
// compared instead of panicking.
func histogramText(h *histogram.FloatHistogram) (text string) {
	if h == nil {
		return ""
	}
	defer func() {
		if recover() != nil {
			text = h.String()
		}
	}()
	return promqltest.HistogramTestExpression(h)
}

func listSamples(ss []sampleText) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// equalFloats compares values exactly, or within one ulp with fuzzy_compare; NaN equals NaN.
func equalFloats(fuzzy bool) func(a, b float64) bool {
	return func(a, b float64) bool {
		switch {
		case a == b, math.IsNaN(a) && math.IsNaN(b):
			return true
		case fuzzy:
			return math.Nextafter(a, math.Inf(-1)) == b || math.Nextafter(a, math.Inf(1)) == b
		}
		return false
	}
}
