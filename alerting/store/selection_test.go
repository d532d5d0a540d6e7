package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vigilhq/vigil/alerting/rulefiles"
)

func TestSelectionFromRules(t *testing.T) {
	s, errs := FromRuleFiles("../rulestest/testdata/rules.yaml", "../rulestest/testdata/order-rules.yaml")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := s.AddSelector(`{job="keep-me"}`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		series string
		want   bool
	}{
		{`up{job="node"}`, true},                                // up == 0
		{`job:request_latency_seconds:mean5m{job="api"}`, true}, // HighLatency
		{`requests{job="api", pod="a"}`, true},                  // sum by (job) (requests)
		{`job:a{job="api"}`, true},                              // read by job:b and External
		{`http_requests_total{job="api"}`, false},               // no rule reads it
		{`node_cpu_seconds_total{job="keep-me"}`, true},         // alerting.store.keep
		{`node_cpu_seconds_total{job="other"}`, false},          // neither
	} {
		ls, err := rulefiles.Parser.ParseMetric(tc.series)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Selects(ls); got != tc.want {
			t.Errorf("%s: selected %v, want %v", tc.series, got, tc.want)
		}
	}
	if s.SelectsEverything() {
		t.Error("these rules do not read every series")
	}
}

func TestSelectionMatchers(t *testing.T) {
	s := &Selection{}
	for _, e := range []string{
		`rate(http_requests_total{code=~"5.."}[5m]) > 1`,
		`{__name__=~"node_.*", instance="a"}`,
		`absent(nothing{job!="x"})`,
	} {
		if err := s.AddExpr(e); err != nil {
			t.Fatal(err)
		}
	}
	f := func(series string, want bool) {
		t.Helper()
		ls, err := rulefiles.Parser.ParseMetric(series)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Selects(ls); got != want {
			t.Errorf("%s: selected %v, want %v", series, got, want)
		}
	}
	f(`http_requests_total{code="503"}`, true)
	f(`http_requests_total{code="200"}`, false)
	f(`node_load1{instance="a"}`, true)
	f(`node_load1{instance="b"}`, false)
	f(`nothing{job="y"}`, true)
	f(`nothing{job="x"}`, false)
	if err := s.AddExpr(`sum(`); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad expression: %v", err)
	}
	if s.SelectsEverything() {
		t.Error("no selector matches everything yet")
	}
	if err := s.AddExpr(`count({__name__=~".+"})`); err != nil {
		t.Fatal(err)
	}
	f(`anything{at="all"}`, true)
	if !s.SelectsEverything() {
		t.Error(`{__name__=~".+"} selects everything`)
	}
	var zero Selection
	if zero.Selects(labels.FromStrings("__name__", "up")) {
		t.Error("the zero Selection selects nothing")
	}
}

// BenchmarkSelects: 1000 rules, each reading its own metric by name with a label matcher, and
// 20 that select by label only; a series is checked against its name's selectors and those.
func BenchmarkSelects(b *testing.B) {
	s := &Selection{}
	for i := range 1000 {
		if err := s.AddExpr(fmt.Sprintf(`rate(metric_%d_total{job="api", code=~"5.."}[5m]) > 0.01`, i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 20 {
		if err := s.AddExpr(fmt.Sprintf(`count({team="t%d"})`, i)); err != nil {
			b.Fatal(err)
		}
	}
	series := make([]labels.Labels, 1000)
	for i := range series {
		series[i] = labels.FromStrings("__name__", fmt.Sprintf("metric_%d_total", i*7%1500), "code", "503", "job", "api", "instance", "a:9100")
	}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if s.Selects(series[i%len(series)]) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("nothing selected")
	}
}

func TestMaySelectName(t *testing.T) {
	s := &Selection{}
	if err := s.AddSelector(`http_requests_total{job="api"}`); err != nil {
		t.Fatal(err)
	}
	if !s.MaySelectName([]byte("http_requests_total")) || s.MaySelectName([]byte("node_cpu_seconds_total")) {
		t.Error("named selector: wrong answer")
	}
	if err := s.AddSelector(`{job="api"}`); err != nil {
		t.Fatal(err)
	}
	if !s.MaySelectName([]byte("node_cpu_seconds_total")) {
		t.Error("a selector without a name may match any name")
	}
	if n := testing.AllocsPerRun(100, func() { s.MaySelectName([]byte("x")) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
