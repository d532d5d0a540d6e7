package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// BenchmarkEvaluate1000RulesOver100kSeries: one evaluation of 1000 alerting rules (10 groups
// of 100), each reading the rate of its own job's 100 series, over a store of 100 000 series
// with 10 minutes of 15 s samples. ns/op is the time of one evaluation of every rule.
func BenchmarkEvaluate1000RulesOver100kSeries(b *testing.B) {
	dir := b.TempDir()
	var rules strings.Builder
	rules.WriteString("groups:\n")
	for g := range 10 {
		fmt.Fprintf(&rules, "  - name: g%d\n    rules:\n", g)
		for r := range 100 {
			job := g*100 + r
			fmt.Fprintf(&rules, "      - alert: HighErrors%d\n        expr: sum by (job) (rate(http_requests_total{job=\"j%d\",code=~\"5..\"}[5m])) / sum by (job) (rate(http_requests_total{job=\"j%d\"}[5m])) > 0.01\n", job, job, job)
		}
	}
	file := filepath.Join(dir, "bench.rules.yaml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := NewConfig()
	cfg.RuleFiles = []string{file}
	cfg.Store.Path = filepath.Join(dir, "store")
	cfg.Store.Retention = time.Hour
	e, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop()
	// 1000 jobs × 100 series (10 instances × 10 codes), 41 samples each.
	now := time.Now()
	start := now.Add(-10 * time.Minute)
	var series []labels.Labels
	codes := []string{"200", "201", "204", "301", "400", "404", "429", "500", "502", "503"}
	for j := range 1000 {
		for i := range 10 {
			for _, c := range codes {
				series = append(series, labels.FromStrings("__name__", "http_requests_total", "code", c,
					"instance", fmt.Sprintf("host-%d:8080", i), "job", fmt.Sprintf("j%d", j)))
			}
		}
	}
	for k := 0; k <= 40; k++ {
		ts := start.Add(time.Duration(k) * 15 * time.Second).UnixMilli()
		app := e.Store().Feed(context.Background())
		for n, ls := range series {
			if _, err := app.Append(0, ls, 0, ts, float64(k*(n%7+1)), nil, nil, storage.AppendV2Options{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	groups, errs := e.mgr.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, file)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, g := range groups {
			g.Eval(context.Background(), now)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/rule")
	firing := 0
	for _, g := range groups {
		for _, r := range g.AlertingRules() {
			firing += len(r.ActiveAlerts())
		}
	}
	if firing == 0 {
		b.Fatal("no rule became active: the benchmark evaluated nothing")
	}
}
