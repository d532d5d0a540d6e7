//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

const scrapeVigil = `receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: app
          scrape_interval: 1s
          scrape_timeout: 900ms
          static_configs:
            - targets: ['%[1]s']
              labels: {team: payments}
exporters:
  prometheusremotewrite/prom:
    endpoint: http://%[2]s/api/v1/write
    external_labels: {cluster: e2e}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
  prometheusremotewrite/vm:
    endpoint: http://%[3]s/api/v1/write
    external_labels: {cluster: e2e}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
service:
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [prometheusremotewrite/prom, prometheusremotewrite/vm]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`

// target is an application exposing Prometheus text whose content the test changes between
// scrapes: a counter that resets, a classic histogram, and a gauge that disappears.
type target struct {
	mu      sync.Mutex
	counter float64
	gauge   bool
	scrapes int
}

func (tg *target) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.scrapes++
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} %g\n", tg.counter)
	fmt.Fprint(w, "# HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\n"+
		"app_latency_seconds_bucket{le=\"0.1\"} 1\napp_latency_seconds_bucket{le=\"1\"} 3\napp_latency_seconds_bucket{le=\"+Inf\"} 6\n"+
		"app_latency_seconds_sum 4.5\napp_latency_seconds_count 6\n")
	if tg.gauge {
		fmt.Fprint(w, "# TYPE app_queue_depth gauge\napp_queue_depth 7\n")
	}
}

func (tg *target) set(counter float64, gauge bool) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.counter, tg.gauge = counter, gauge
	return tg.scrapes
}

func (tg *target) waitScrapes(t *testing.T, after, n int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		if tg.scrapes < after+n {
			return fmt.Errorf("%d scrapes, waiting for %d", tg.scrapes, after+n)
		}
		return nil
	})
}

// TestScrapeToRemoteWrite: vigil scrapes an application with the upstream scrape code and
// remote-writes to a real Prometheus and a real VictoriaMetrics; the test reads back a counter
// across a reset, a histogram, a series that went stale, and the scrape health series.
func TestScrapeToRemoteWrite(t *testing.T) {
	telemetry := freeAddr(t)

	tg := &target{counter: 10, gauge: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tg, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	promAddr, vmAddr := startPrometheusRW(t), startVictoriaMetrics(t)
	v := startVigil(t, "vigil-scrape", fmt.Sprintf(scrapeVigil, ln.Addr(), promAddr, vmAddr, telemetry), telemetry)

	// Phase 1: counter 10 then 25, gauge present. Phase 2: counter reset to 3, gauge gone.
	tg.waitScrapes(t, tg.set(10, true), 2)
	tg.waitScrapes(t, tg.set(25, true), 2)
	tg.waitScrapes(t, tg.set(3, false), 3)
	end := time.Now()

	base := map[string]string{"job": "app", "instance": ln.Addr().String(), "team": "payments", "cluster": "e2e"}
	with := func(kv ...string) map[string]string {
		out := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	at := strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)

	// The counter's samples, in order: 10…, 25…, 3… — one reset.
	eventually(t, 30*time.Second, func() error {
		got, err := promRange(promAddr, `app_requests_total[5m]`, at)
		if err != nil {
			return err
		}
		if len(got) != 1 || !maps.Equal(got[0].labels, with("__name__", "app_requests_total", "code", "200")) {
			return fmt.Errorf("app_requests_total: %+v", got)
		}
		if seq := distinctRuns(got[0].values); fmt.Sprint(seq) != "[10 25 3]" {
			return fmt.Errorf("counter values %v, want runs of 10, 25, 3", got[0].values)
		}
		return nil
	})
	if got, err := promQueryAt(promAddr, `resets(app_requests_total[5m])`, at); err != nil || len(got) != 1 || got[0].value != 1 {
		t.Errorf("resets = %+v (%v), want 1", got, err)
	}
	// The histogram, bucket by bucket. The upstream scrape code (Prometheus 3) writes le values
	// in float form: the target's le="1" is stored as le="1.0", as Prometheus itself stores it.
	for le, want := range map[string]float64{"0.1": 1, "1.0": 3, "+Inf": 6} {
		got, err := promQueryAt(promAddr, fmt.Sprintf(`app_latency_seconds_bucket{le=%q}`, le), at)
		if err != nil || len(got) != 1 || got[0].value != want || !maps.Equal(got[0].Metric, with("__name__", "app_latency_seconds_bucket", "le", le)) {
			t.Errorf("bucket le=%s: %+v (%v), want %g", le, got, err, want)
		}
	}
	for name, want := range map[string]float64{"app_latency_seconds_sum": 4.5, "app_latency_seconds_count": 6} {
		if got, err := promQueryAt(promAddr, name, at); err != nil || len(got) != 1 || got[0].value != want {
			t.Errorf("%s: %+v (%v), want %g", name, got, err, want)
		}
	}
	// The gauge was scraped, then went stale: the scrape loop wrote a staleness marker, so an
	// instant query no longer finds it (without waiting out the 5-minute lookback).
	if got, err := promRange(promAddr, `app_queue_depth[5m]`, at); err != nil || len(got) != 1 || len(got[0].values) == 0 {
		t.Errorf("gauge history: %+v (%v)", got, err)
	}
	if got, err := promQueryAt(promAddr, `app_queue_depth`, at); err != nil || len(got) != 0 {
		t.Errorf("stale gauge still answers: %+v (%v)", got, err)
	}
	// Scrape health, as Prometheus records it.
	for name, check := range map[string]func(float64) bool{
		"up":                      func(v float64) bool { return v == 1 },
		"scrape_samples_scraped":  func(v float64) bool { return v == 6 },
		"scrape_duration_seconds": func(v float64) bool { return v > 0 && v < 1 },
	} {
		got, err := promQueryAt(promAddr, name, at)
		if err != nil || len(got) != 1 || !check(got[0].value) || !maps.Equal(got[0].Metric, with("__name__", name)) {
			t.Errorf("%s: %+v (%v)", name, got, err)
		}
	}

	// VictoriaMetrics got the same counter samples.
	eventually(t, 30*time.Second, func() error {
		got, err := vmExport(vmAddr, `app_requests_total`)
		if err != nil {
			return err
		}
		vals := got[fmt.Sprint(with("__name__", "app_requests_total", "code", "200"))]
		if seq := distinctRuns(vals); fmt.Sprint(seq) != "[10 25 3]" {
			return fmt.Errorf("VictoriaMetrics counter %v (all %v)", vals, got)
		}
		return nil
	})
	v.stopClean(t)
}

// distinctRuns turns "ts:value" samples into the sequence of values with repeats collapsed.
func distinctRuns(samples []string) []float64 {
	var out []float64
	for _, s := range samples {
		var ts int64
		var v float64
		if _, err := fmt.Sscanf(s, "%d:%g", &ts, &v); err != nil {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}
