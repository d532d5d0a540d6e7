package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/promrw"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	// Port 1 on loopback refuses connections: the loops run and fail, which is enough here.
	cfg := decodeConfig(t, `
config:
  scrape_configs:
    - job_name: dead
      scrape_interval: 100ms
      static_configs: [{targets: ["127.0.0.1:1"]}]
`)
	componenttest.CheckReceiver(t, NewFactory(), cfg)
}

func TestCreateNeedsAMetricsConsumer(t *testing.T) {
	cfg := decodeConfig(t, "config: {scrape_configs: [{job_name: a}]}")
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	if _, err := NewFactory().Create(set, cfg, map[batch.Signal]component.Consumer{}); err == nil ||
		!strings.Contains(err.Error(), "no metrics pipeline") {
		t.Errorf("no consumer: %v", err)
	}
	if _, err := NewFactory().Create(set, NewConfig(), map[batch.Signal]component.Consumer{batch.Metrics: component.Discard}); err == nil ||
		!strings.Contains(err.Error(), "at least one scrape config") {
		t.Errorf("empty config: %v", err)
	}
}

// ---- harness --------------------------------------------------------------------------------

func decodeConfig(t *testing.T, src string) *Config {
	t.Helper()
	cfg := NewConfig()
	if err := decodeInto(src, cfg); err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	return cfg
}

func decodeInto(src string, cfg *Config) error { return componenttest.DecodeConfig([]byte(src), cfg) }

// target is a scrape target whose exposition the test changes between scrapes.
type target struct {
	*httptest.Server
	mu          sync.Mutex
	body        string
	contentType string
}

func newTarget(t *testing.T, body string) *target {
	t.Helper()
	tg := &target{body: body, contentType: "text/plain; version=0.0.4"}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tg.mu.Lock()
		body, ct := tg.body, tg.contentType
		tg.mu.Unlock()
		w.Header().Set("Content-Type", ct)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) set(body string) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.body = body
}

func (tg *target) addr() string { return strings.TrimPrefix(tg.URL, "http://") }

// sample is one series of a batch with its single sample (or native histogram), decoded from
// the remote-write body.
type sample struct {
	labels    string // labels.Labels.String(): {__name__="up", instance="…", job="…"}
	value     float64
	ts        int64
	hist      *prompb.Histogram
	exemplars []prompb.Exemplar
}

func (s sample) stale() bool { return value.IsStaleNaN(s.value) }

// scraped is one batch: what one commit handed to the pipeline.
type scraped struct {
	samples []sample
	meta    []prompb.MetricMetadata
}

func (s scraped) find(lbls string) (sample, bool) {
	for _, x := range s.samples {
		if x.labels == lbls {
			return x, true
		}
	}
	return sample{}, false
}

// decodeBatch reads a batch with promrw's validating scanner (so the test also proves the body
// is valid remote write) and the upstream prompb types for values.
func decodeBatch(t *testing.T, b *batch.Batch) scraped {
	t.Helper()
	body, ok := b.PromRW()
	if !ok {
		t.Fatalf("batch is %v, want remote write", b.Form())
	}
	var out scraped
	items := 0
	err := promrw.ScanV1(body, func(s promrw.SeriesV1) error {
		var sb labels.ScratchBuilder
		it := s.Labels()
		for n, v, ok := it.Next(); ok; n, v, ok = it.Next() {
			sb.Add(string(n), string(v))
		}
		if err := it.Err(); err != nil {
			return err
		}
		var ts prompb.TimeSeries
		if err := ts.Unmarshal(s.Raw); err != nil {
			return err
		}
		if len(ts.Samples)+len(ts.Histograms) != 1 {
			return fmt.Errorf("series %s has %d samples and %d histograms, want one", sb.Labels(), len(ts.Samples), len(ts.Histograms))
		}
		x := sample{labels: sb.Labels().String(), exemplars: ts.Exemplars}
		if len(ts.Samples) == 1 {
			x.value, x.ts = ts.Samples[0].Value, ts.Samples[0].Timestamp
		} else {
			x.hist, x.ts = &ts.Histograms[0], ts.Histograms[0].Timestamp
		}
		items++
		out.samples = append(out.samples, x)
		return nil
	})
	if err != nil {
		t.Fatalf("invalid remote-write body: %v", err)
	}
	if items != b.Items() {
		t.Errorf("batch counts %d items, body holds %d", b.Items(), items)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	out.meta = wr.Metadata
	return out
}

// run is a started receiver and what reached its pipeline.
type run struct {
	t    *testing.T
	sink *componenttest.Sink
	logs *componenttest.LogBuffer
	r    *receiver
	// refuse, when set, makes the pipeline refuse batches (they are not kept).
	refuse atomic.Bool
}

func start(t *testing.T, cfgYAML string) *run {
	t.Helper()
	// Upstream waits up to 5s before applying discovered targets; the tests cannot.
	return startWith(t, decodeConfig(t, cfgYAML), options{discoveryReload: 20 * time.Millisecond, discoveryUpdate: 20 * time.Millisecond})
}

func startWith(t *testing.T, cfg *Config, opts options) *run {
	t.Helper()
	ru := &run{t: t, sink: &componenttest.Sink{}, logs: &componenttest.LogBuffer{}}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type, Name: t.Name()})
	set.Logger = slog.New(slog.NewTextHandler(ru.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	next := component.ConsumerFunc(func(ctx context.Context, b *batch.Batch) error {
		if ru.refuse.Load() {
			return errors.New("pipeline full")
		}
		return ru.sink.Consume(ctx, b)
	})
	r, err := newReceiver(set, cfg, map[batch.Signal]component.Consumer{batch.Metrics: next})
	if err != nil {
		t.Fatal(err)
	}
	r.opts = opts
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	ru.r = r
	return ru
}

// scrapes decodes every batch received so far, in order.
func (ru *run) scrapes() []scraped {
	var out []scraped
	for _, b := range ru.sink.Batches() {
		out = append(out, decodeBatch(ru.t, b))
	}
	return out
}

// waitScrape polls, without asserting on timing, until a batch received after the first `after`
// ones satisfies cond, and returns its index and content.
func (ru *run) waitScrape(what string, after int, cond func(scraped) bool) (int, scraped) {
	ru.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := ru.sink.Batches()
		for i := after; i < len(all); i++ {
			if s := decodeBatch(ru.t, all[i]); cond(s) {
				return i, s
			}
		}
		if time.Now().After(deadline) {
			ru.t.Fatalf("no scrape with %s among %d batches; the last:\n%s\nlogs:\n%s", what, len(all), lastDump(ru), ru.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastDump(ru *run) string {
	all := ru.scrapes()
	if len(all) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, s := range all[len(all)-1].samples {
		fmt.Fprintf(&b, "  %s %v\n", s.labels, s.value)
	}
	return b.String()
}

// has is a condition: the scrape holds the series with exactly this value (NaN: a stale marker).
func has(lbls string, v float64) func(scraped) bool {
	return func(s scraped) bool {
		x, ok := s.find(lbls)
		if !ok {
			return false
		}
		if math.IsNaN(v) {
			return x.stale()
		}
		return x.value == v
	}
}

func up(job, instance string) string {
	return fmt.Sprintf(`{__name__="up", instance="%s", job="%s"}`, instance, job)
}

// series builds the label string of a scraped series with the target labels added.
func series(name, job, instance string, extra ...string) string {
	l := []string{"__name__", name, "instance", instance, "job", job}
	return labels.FromStrings(append(l, extra...)...).String()
}

// ---- scraping ---------------------------------------------------------------------------------

const exposition = `# HELP c_total A counter.
# TYPE c_total counter
c_total 5
# HELP h A histogram.
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="1"} 3
h_bucket{le="+Inf"} 4
h_sum 2.5
h_count 4
# HELP g A gauge that goes away.
# TYPE g gauge
g{k="v"} 7
`

func TestScrapeCounterHistogramGaugeAndStaleness(t *testing.T) {
	tg := newTarget(t, exposition)
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs: [{targets: ["%s"]}]
`, tg.addr()))
	inst := tg.addr()
	s := func(name string, extra ...string) string { return series(name, "app", inst, extra...) }

	i, first := ru.waitScrape("c_total 5", 0, has(s("c_total"), 5))
	want := map[string]float64{
		s("c_total"):                               5,
		s("h_bucket", "le", "0.5"):                 1,
		s("h_bucket", "le", "1.0"):                 3, // Prometheus 3 writes le values as floats
		s("h_bucket", "le", "+Inf"):                4,
		s("h_sum"):                                 2.5,
		s("h_count"):                               4,
		s("g", "k", "v"):                           7,
		up("app", inst):                            1,
		s("scrape_samples_scraped"):                7,
		s("scrape_samples_post_metric_relabeling"): 7,
	}
	for lbls, v := range want {
		x, ok := first.find(lbls)
		if !ok || x.value != v {
			t.Errorf("first scrape: %s = %v (present %v), want %v", lbls, x.value, ok, v)
		}
	}
	if _, ok := first.find(s("scrape_duration_seconds")); !ok {
		t.Error("no scrape_duration_seconds")
	}
	// One commit is one scrape: every sample of it has the scrape's timestamp.
	for _, x := range first.samples {
		if x.ts != first.samples[0].ts || x.ts == 0 {
			t.Errorf("timestamps differ within a scrape: %s at %d, first at %d", x.labels, x.ts, first.samples[0].ts)
		}
	}
	if d := time.Since(time.UnixMilli(first.samples[0].ts)); d < 0 || d > time.Hour {
		t.Errorf("timestamp %d is not the scrape time", first.samples[0].ts)
	}

	// Metadata travels with the samples, once per family, with valid family names.
	meta := map[string]prompb.MetricMetadata{}
	for _, m := range first.meta {
		if !promrw.ValidMetricName([]byte(m.MetricFamilyName)) {
			t.Errorf("metadata family name %q is not a valid metric name", m.MetricFamilyName)
		}
		if _, dup := meta[m.MetricFamilyName]; dup {
			t.Errorf("metadata for %q twice", m.MetricFamilyName)
		}
		meta[m.MetricFamilyName] = m
	}
	for fam, typ := range map[string]prompb.MetricMetadata_MetricType{
		"c_total": prompb.MetricMetadata_COUNTER, "h": prompb.MetricMetadata_HISTOGRAM,
		"g": prompb.MetricMetadata_GAUGE, "up": prompb.MetricMetadata_GAUGE,
	} {
		if m, ok := meta[fam]; !ok || m.Type != typ {
			t.Errorf("metadata %s = %+v, want type %v", fam, m, typ)
		}
	}
	if meta["c_total"].Help != "A counter." {
		t.Errorf("help of c_total = %q", meta["c_total"].Help)
	}

	// The counter resets and the gauge disappears: the next scrape carries the new value as is
	// (resets are for the backend to see) and a staleness marker for the gauge.
	tg.set(strings.Replace(strings.Split(exposition, "# HELP g")[0], "c_total 5", "c_total 2", 1))
	_, next := ru.waitScrape("c_total 2", i+1, has(s("c_total"), 2))
	g, ok := next.find(s("g", "k", "v"))
	if !ok || !g.stale() || math.Float64bits(g.value) != value.StaleNaN {
		t.Errorf("gauge after it vanished: %+v (present %v), want the staleness marker", g, ok)
	}
	if x, _ := next.find(s("scrape_samples_scraped")); x.value != 6 {
		t.Errorf("scrape_samples_scraped = %v, want 6", x.value)
	}
	// Later scrapes do not repeat the marker.
	_, later := ru.waitScrape("a later scrape", len(ru.sink.Batches()), has(s("c_total"), 2))
	if _, ok := later.find(s("g", "k", "v")); ok {
		t.Error("staleness marker repeated")
	}
}

func TestUpWhenTargetIsDownOrBroken(t *testing.T) {
	tg := newTarget(t, "m 1\n")
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs: [{targets: ["%s"]}]
`, tg.addr()))
	inst := tg.addr()
	i, _ := ru.waitScrape("up 1", 0, has(up("app", inst), 1))

	// Garbage: the scrape fails, up is 0, the series scraped before are marked stale.
	tg.set("this is { not the text format\n")
	i, s := ru.waitScrape("up 0 on garbage", i+1, has(up("app", inst), 0))
	if x, ok := s.find(series("m", "app", inst)); !ok || !x.stale() {
		t.Errorf("m after a failed scrape: %+v (present %v), want the staleness marker", x, ok)
	}
	if !strings.Contains(ru.logs.String(), "Append failed") {
		t.Errorf("the parse error is not logged:\n%s", ru.logs.String())
	}

	tg.set("m 2\n")
	i, _ = ru.waitScrape("m 2 after recovery", i+1, has(series("m", "app", inst), 2))

	// The target goes away: up is 0, nothing else but the scrape series.
	tg.Close()
	_, s = ru.waitScrape("up 0 when down", i+1, has(up("app", inst), 0))
	for _, x := range s.samples {
		if strings.Contains(x.labels, `__name__="m"`) && !x.stale() {
			t.Errorf("a down target produced %s %v", x.labels, x.value)
		}
	}
}

func TestRelabelling(t *testing.T) {
	tg := newTarget(t, "keep{k=\"a\",drop=\"x\"} 1\ndrop_me 2\n")
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs: [{targets: ["%s"], labels: {team: blue}}]
      relabel_configs:
        - {target_label: env, replacement: test}
        - {source_labels: [team], target_label: owner}
      metric_relabel_configs:
        - {source_labels: [__name__], regex: drop_me, action: drop}
        - {source_labels: [k], target_label: kk}
        - {regex: "drop|k", action: labeldrop}
`, tg.addr()))
	inst := tg.addr()
	want := series("keep", "app", inst, "env", "test", "kk", "a", "owner", "blue", "team", "blue")
	_, s := ru.waitScrape("the relabelled series", 0, has(want, 1))
	for _, x := range s.samples {
		if strings.Contains(x.labels, "drop_me") {
			t.Errorf("dropped metric present: %s", x.labels)
		}
	}
	// Target relabelling applies to the scrape series too; metric relabelling does not.
	if _, ok := s.find(labels.FromStrings("__name__", "up", "env", "test", "instance", inst, "job", "app", "owner", "blue", "team", "blue").String()); !ok {
		t.Errorf("up does not carry the target labels:\n%s", lastDump(ru))
	}
	if x, _ := s.find(series("scrape_samples_post_metric_relabeling", "app", inst, "env", "test", "owner", "blue", "team", "blue")); x.value != 1 {
		t.Errorf("scrape_samples_post_metric_relabeling = %v, want 1", x.value)
	}
}

func TestHonorLabels(t *testing.T) {
	tg := newTarget(t, "m{job=\"exporter\",instance=\"in-target\"} 1\n")
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: honor
      honor_labels: true
      scrape_interval: 100ms
      static_configs: [{targets: ["%[1]s"]}]
    - job_name: plain
      scrape_interval: 100ms
      static_configs: [{targets: ["%[1]s"]}]
`, tg.addr()))
	inst := tg.addr()
	ru.waitScrape("honored labels", 0, has(`{__name__="m", instance="in-target", job="exporter"}`, 1))
	ru.waitScrape("exported_ labels", 0, has(series("m", "plain", inst, "exported_instance", "in-target", "exported_job", "exporter"), 1))
}

func TestSampleLimit(t *testing.T) {
	tg := newTarget(t, "a 1\nb 2\n")
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      sample_limit: 3
      static_configs: [{targets: ["%s"]}]
`, tg.addr()))
	inst := tg.addr()
	i, _ := ru.waitScrape("a within the limit", 0, has(series("a", "app", inst), 1))
	tg.set("a 1\nb 2\nc 3\nd 4\ne 5\n")
	// The whole scrape is rolled back: none of its samples is sent. (Upstream sends no staleness
	// markers for a and b here: the failed attempt saw them, so they are not "gone".)
	_, s := ru.waitScrape("up 0 over the limit", i+1, has(up("app", inst), 0))
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if x, ok := s.find(series(name, "app", inst)); ok && !x.stale() {
			t.Errorf("%s = %v sent although the scrape exceeded sample_limit", name, x.value)
		}
	}
	if x, _ := s.find(series("scrape_samples_scraped", "app", inst)); x.value != 5 {
		t.Errorf("scrape_samples_scraped = %v, want 5", x.value)
	}
}

func TestFileSDPicksUpTargets(t *testing.T) {
	one := newTarget(t, "m 1\n")
	two := newTarget(t, "m 2\n")
	dir := t.TempDir()
	file := filepath.Join(dir, "targets.json")
	write := func(groups ...map[string]any) {
		t.Helper()
		data, err := json.Marshal(groups)
		if err != nil {
			t.Fatal(err)
		}
		// Renamed into place, so that the watcher never reads a half-written file.
		tmp := filepath.Join(dir, "tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(map[string]any{"targets": []string{one.addr()}, "labels": map[string]string{"team": "a"}})
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: files
      scrape_interval: 100ms
      file_sd_configs: [{files: ["%s"]}]
`, file))
	ru.waitScrape("the first target", 0, has(series("m", "files", one.addr(), "team", "a"), 1))

	write(map[string]any{"targets": []string{one.addr(), two.addr()}, "labels": map[string]string{"team": "a"}})
	i, _ := ru.waitScrape("the added target", 0, has(series("m", "files", two.addr(), "team", "a"), 2))

	// A target that disappears from discovery gets staleness markers once its loop has stopped
	// (upstream waits two intervals, in case it comes back).
	write(map[string]any{"targets": []string{two.addr()}, "labels": map[string]string{"team": "a"}})
	ru.waitScrape("end-of-run staleness", i+1, has(series("m", "files", one.addr(), "team", "a"), math.NaN()))
}

func TestRefusedScrapeFailsTheCommit(t *testing.T) {
	tg := newTarget(t, "m 1\n")
	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs: [{targets: ["%s"]}]
`, tg.addr()))
	ru.refuse.Store(true)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ru.logs.String(), "Scrape commit failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed commit logged:\n%s", ru.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(ru.sink.Batches()); n != 0 {
		t.Errorf("%d batches kept while the pipeline refused", n)
	}
	if !strings.Contains(ru.logs.String(), "pipeline full") || !strings.Contains(ru.logs.String(), "the pipeline refused the scrape") {
		t.Errorf("the commit error does not carry the pipeline's:\n%s", ru.logs.String())
	}
	// Scraping goes on; once the pipeline takes data again, scrapes arrive.
	ru.refuse.Store(false)
	ru.waitScrape("a scrape after the refusal", 0, has(series("m", "app", tg.addr()), 1))
}

func TestNativeHistogramsAndExemplars(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "latency_seconds", Help: "A native histogram.", NativeHistogramBucketFactor: 1.1,
	})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "requests_total", Help: "A counter with exemplars."})
	reg.MustRegister(h, c)
	for _, v := range []float64{0.1, 0.2, 0.2, 5} {
		h.Observe(v)
	}
	c.(prometheus.ExemplarAdder).AddWithExemplar(3, prometheus.Labels{"trace_id": "abc"})
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	inst := strings.TrimPrefix(srv.URL, "http://")

	ru := start(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: native
      scrape_interval: 100ms
      scrape_protocols: [PrometheusProto]
      scrape_native_histograms: true
      static_configs: [{targets: ["%s"]}]
`, inst))
	_, s := ru.waitScrape("the native histogram", 0, func(s scraped) bool {
		x, ok := s.find(series("latency_seconds", "native", inst))
		return ok && x.hist != nil
	})
	x, _ := s.find(series("latency_seconds", "native", inst))
	if got := x.hist.GetCountInt(); got != 4 || x.hist.Sum != 5.5 {
		t.Errorf("native histogram count %d sum %v, want 4 and 5.5", got, x.hist.Sum)
	}
	if _, ok := s.find(series("latency_seconds_bucket", "native", inst, "le", "+Inf")); ok {
		t.Error("classic buckets scraped although the native histogram was")
	}
	rq, ok := s.find(series("requests_total", "native", inst))
	if !ok || rq.value != 3 || len(rq.exemplars) != 1 || rq.exemplars[0].Value != 3 ||
		!slices.ContainsFunc(rq.exemplars[0].Labels, func(l prompb.Label) bool { return l.Name == "trace_id" && l.Value == "abc" }) {
		t.Errorf("requests_total = %+v (present %v), want 3 with exemplar trace_id=abc", rq, ok)
	}
}

// A pipeline that blocks until its context ends must not hold Shutdown past its deadline: the
// context of the pipeline call is cancelled then, and the loops finish.
// startOneTarget starts a receiver scraping one target every interval into next, with short
// discovery delays.
func startOneTarget(t *testing.T, interval string, next component.Consumer) *receiver {
	t.Helper()
	tg := newTarget(t, "m 1\n")
	cfg := decodeConfig(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: %s
      static_configs: [{targets: ["%s"]}]
`, interval, tg.addr()))
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	r, err := newReceiver(set, cfg, map[batch.Signal]component.Consumer{batch.Metrics: next})
	if err != nil {
		t.Fatal(err)
	}
	r.opts = options{discoveryReload: 20 * time.Millisecond, discoveryUpdate: 20 * time.Millisecond}
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShutdownUnblocksAStuckPipeline(t *testing.T) {
	entered := make(chan struct{}, 1)
	next := component.ConsumerFunc(func(ctx context.Context, _ *batch.Batch) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	// The commit wait is bounded by the scrape interval (TestCommitWaitIsBounded): an interval
	// well above the shutdown deadline keeps the pipeline call stuck until Shutdown ends it.
	r := startOneTarget(t, "1s", next)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("no scrape reached the pipeline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with a stuck pipeline = %v, want the deadline error", err)
	}
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the scrape loops did not finish after the pipeline call was cancelled")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

// TestCommitWaitIsBounded: a commit waits for its scrape to be acknowledged, but no longer than
// the longest scrape_interval, so that a pipeline that never acknowledges (end_to_end with a
// dead backend) does not stop the scrape loop: the next scrapes still reach the pipeline.
func TestCommitWaitIsBounded(t *testing.T) {
	waited := make(chan time.Duration, 100)
	next := component.ConsumerFunc(func(ctx context.Context, _ *batch.Batch) error {
		start := time.Now()
		<-ctx.Done() // never acknowledged
		waited <- time.Since(start)
		return ctx.Err()
	})
	r := startOneTarget(t, "300ms", next)
	defer r.Shutdown(context.Background())
	for i := range 2 {
		select {
		case d := <-waited:
			if d < 250*time.Millisecond || d > 5*time.Second {
				t.Errorf("commit %d waited %s, want about the 300ms scrape_interval", i, d)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("commit %d never gave up waiting, or no scrape followed it", i)
		}
	}
}

// Kubernetes discovery against an API server that is not there: the receiver starts, the
// client's errors reach Vigil's log (klog redirected), and Shutdown stops the informers (goleak
// in TestMain checks that nothing is left running).
func TestKubernetesSDStartsAndStops(t *testing.T) {
	// Registered before start's cleanup, so it runs after Shutdown. Upstream's discovery manager
	// cancels its discoverers without waiting for them, and the client's informers stop on their
	// own within a backoff step (about 1.5s here): wait for that, or goleak, whose patience is
	// about half a second, would report them.
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "k8s.io/client-go/") {
				return
			}
			if time.Now().After(deadline) {
				t.Error("the Kubernetes informers still run after Shutdown")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	ru := start(t, `
config:
  scrape_configs:
    - job_name: pods
      scrape_interval: 100ms
      kubernetes_sd_configs: [{role: pod, api_server: "http://127.0.0.1:1"}]
`)
	deadline := time.Now().Add(20 * time.Second)
	// The informers tried the API server and said so through Vigil's log.
	clientGoFailed := func() bool {
		for _, l := range strings.Split(ru.logs.String(), "\n") {
			if strings.Contains(l, "logger=client-go") && strings.Contains(l, "127.0.0.1:1") {
				return true
			}
		}
		return false
	}
	for !clientGoFailed() {
		if time.Now().After(deadline) {
			t.Fatalf("no client-go log line in Vigil's log:\n%s", ru.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
