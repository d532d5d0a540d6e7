package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.yaml.in/yaml/v3"
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
	heapBefore := heapInUse()
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
	storeBytes := heapInUse() - heapBefore
	series = nil
	groups, errs := e.mgr.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, file)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		for _, g := range groups {
			g.Eval(context.Background(), now)
		}
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/rule")
	// CPU of the whole process (garbage collection included) per round, and what that is per
	// second of wall time when the rules are evaluated every minute.
	perRound := cpu.Seconds() / float64(b.N)
	b.ReportMetric(perRound, "cpu-s/round")
	b.ReportMetric(perRound/60, "cpu-s/wall-s@1m")
	// The heap the store's head takes for 100 000 series of 41 samples each.
	b.ReportMetric(float64(storeBytes)/100_000, "store-B/series")
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

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEmbeddedNotifications: alerts put into the in-agent Alertmanager and delivered to
// a webhook, one group per alert (group_by alertname, group_wait 0). ns/op is the time from
// handing over one alert to its notification being received, amortised over a burst of b.N.
func BenchmarkEmbeddedNotifications(b *testing.B) {
	var got atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer hook.Close()
	c := newEmbeddedConfig()
	c.HTTP.Endpoint = "127.0.0.1:0"
	c.DataDir = b.TempDir()
	text := fmt.Sprintf("route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1h, repeat_interval: 1h}\n"+
		"receivers: [{name: hook, webhook_configs: [{url: %q}]}]\n", hook.URL)
	if err := yaml.Unmarshal([]byte(text), &c.Config); err != nil {
		b.Fatal(err)
	}
	e, err := newEmbedded(&c, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	e.start()
	defer e.stop()
	now := time.Now()
	b.ResetTimer()
	batch := make([]*alert.Alert, 0, 100)
	for i := range b.N {
		batch = append(batch, alert.New(model.Alert{
			Labels:   model.LabelSet{"alertname": model.LabelValue(fmt.Sprintf("A%d", i)), "severity": "page"},
			StartsAt: now, EndsAt: now.Add(time.Hour),
		}, now, false))
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := e.put(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	deadline := time.Now().Add(time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got.Load() < int64(b.N) {
		b.Fatalf("%d of %d notifications arrived within a minute", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
}
