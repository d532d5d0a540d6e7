package prometheus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	cfg.Endpoint = "127.0.0.1:0"
	componenttest.CheckExporter(t, NewFactory(), cfg)
}

func TestConfig(t *testing.T) {
	f := func(name string, want *Config, wantErrs ...string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg := NewConfig()
		err = componenttest.DecodeConfig(data, cfg)
		for _, w := range wantErrs {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", name, err, w)
			}
		}
		if len(wantErrs) == 0 && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if want != nil && !reflect.DeepEqual(cfg, want) {
			t.Errorf("%s: got %+v, want %+v", name, *cfg, *want)
		}
	}
	f("otelcol.yaml", &Config{
		HTTP:                          server.NewHTTP("0.0.0.0:9464"),
		Namespace:                     "vigil",
		ConstLabels:                   map[string]string{"region": "eu-west-1"},
		MetricExpiration:              10 * time.Minute,
		ResourceToTelemetryConversion: ResourceToTelemetry{Enabled: true},
		EnableOpenMetrics:             true,
	})
	f("empty.yaml", NewConfig())
	f("bad-values.bad.yaml", nil, `endpoint: must be host:port, got "localhost"`,
		`namespace: must match [a-zA-Z_:][a-zA-Z0-9_:]*, got "my-app" (try "my_app")`,
		"const_labels.__bad: must match", "metric_expiration: must be > 0, got 0s")
	f("send-timestamps.bad.yaml", nil, "send_timestamps")
}

type harness struct {
	exp *exporter
	cnt *componenttest.Counters
	log *componenttest.LogBuffer
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := NewConfig()
	cfg.Endpoint = "127.0.0.1:0"
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{cnt: &componenttest.Counters{}, log: &componenttest.LogBuffer{}}
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	set.Counters = h.cnt
	set.Logger = slogTo(h.log)
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.exp = exp.(*exporter)
	return h
}

func (h *harness) consume(t *testing.T, md pmetric.Metrics) {
	t.Helper()
	if err := h.exp.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
		t.Fatal(err)
	}
}

// scrape serves one /metrics request in memory and parses the text exposition.
func (h *harness) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.exp.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// labels returns a metric's labels as a map.
func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// one returns the only metric of family name, checking its type and help.
func one(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, help string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %q; have %v", name, slicesOfKeys(fams))
	}
	if f.GetType() != typ || f.GetHelp() != help {
		t.Errorf("%s: type %s help %q, want %s %q", name, f.GetType(), f.GetHelp(), typ, help)
	}
	if len(f.GetMetric()) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(f.GetMetric()))
	}
	return f.GetMetric()[0]
}

func slicesOfKeys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range maps.Keys(m) {
		out = append(out, k)
	}
	return out
}

func wantLabels(t *testing.T, name string, m *dto.Metric, want map[string]string) {
	t.Helper()
	if got := labels(m); !maps.Equal(got, want) {
		t.Errorf("%s labels = %v, want %v", name, got, want)
	}
}

// newMetrics returns metrics with one resource (service checkout/shop, instance i-1, host h1)
// and one scope, and the scope's metric slice.
func newMetrics() (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("service.instance.id", "i-1")
	ra.PutStr("host.name", "h1")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("lib")
	sm.Scope().SetVersion("1.2")
	return md, sm.Metrics()
}

var ts = pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))

func addSum(ms pmetric.MetricSlice, name, unit string, monotonic bool, temp pmetric.AggregationTemporality, v int64, kv ...string) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(name + " help")
	s := m.SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(temp)
	dp := s.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(v)
	putAttrs(dp.Attributes(), kv...)
}

func addGauge(ms pmetric.MetricSlice, name, unit string, v float64, kv ...string) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(name + " help")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(v)
	putAttrs(dp.Attributes(), kv...)
}

func putAttrs(m pcommon.Map, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		m.PutStr(kv[i], kv[i+1])
	}
}

func TestServesEveryType(t *testing.T) {
	h := newHarness(t, nil)
	md, ms := newMetrics()
	cum := pmetric.AggregationTemporalityCumulative
	addSum(ms, "http.requests", "{request}", true, cum, 42, "http.method", "GET")
	addSum(ms, "queue.length", "", false, cum, 7)
	addGauge(ms, "cpu.utilization", "1", 0.25)
	addGauge(ms, "temperature", "Cel", 21.5, "room", "a", "2fa", "on")

	m := ms.AppendEmpty()
	m.SetName("http.server.duration")
	m.SetUnit("s")
	m.SetDescription("request latency")
	hist := m.SetEmptyHistogram()
	hist.SetAggregationTemporality(cum)
	hdp := hist.DataPoints().AppendEmpty()
	hdp.SetTimestamp(ts)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	hdp.SetCount(6)
	hdp.SetSum(10.5)
	hdp.Attributes().PutStr("route", "/cart")

	m = ms.AppendEmpty()
	m.SetName("rpc.size")
	m.SetUnit("By")
	sdp := m.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts)
	sdp.SetCount(4)
	sdp.SetSum(400)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(90)
	q = sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(150)

	h.consume(t, md)
	fams := h.scrape(t)
	base := map[string]string{"job": "shop/checkout", "instance": "i-1", "otel_scope_name": "lib", "otel_scope_version": "1.2"}
	with := func(kv ...string) map[string]string {
		out := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	c := one(t, fams, "http_requests_total", dto.MetricType_COUNTER, "http.requests help")
	wantLabels(t, "http_requests_total", c, with("http_method", "GET"))
	if c.GetCounter().GetValue() != 42 {
		t.Errorf("http_requests_total = %v, want 42", c.GetCounter().GetValue())
	}
	g := one(t, fams, "queue_length", dto.MetricType_GAUGE, "queue.length help")
	if g.GetGauge().GetValue() != 7 {
		t.Errorf("queue_length = %v, want 7", g.GetGauge().GetValue())
	}
	g = one(t, fams, "cpu_utilization_ratio", dto.MetricType_GAUGE, "cpu.utilization help")
	if g.GetGauge().GetValue() != 0.25 {
		t.Errorf("cpu_utilization_ratio = %v", g.GetGauge().GetValue())
	}
	g = one(t, fams, "temperature_celsius", dto.MetricType_GAUGE, "temperature help")
	wantLabels(t, "temperature_celsius", g, with("room", "a", "key_2fa", "on"))

	hm := one(t, fams, "http_server_duration_seconds", dto.MetricType_HISTOGRAM, "request latency")
	wantLabels(t, "http_server_duration_seconds", hm, with("route", "/cart"))
	hh := hm.GetHistogram()
	if hh.GetSampleCount() != 6 || hh.GetSampleSum() != 10.5 {
		t.Errorf("histogram count %d sum %v, want 6 10.5", hh.GetSampleCount(), hh.GetSampleSum())
	}
	var got []string
	for _, b := range hh.GetBucket() {
		got = append(got, fmt.Sprintf("%g:%d", b.GetUpperBound(), b.GetCumulativeCount()))
	}
	if want := "0.1:1 1:3 +Inf:6"; strings.Join(got, " ") != want {
		t.Errorf("buckets %v, want %s", got, want)
	}

	sm := one(t, fams, "rpc_size_bytes", dto.MetricType_SUMMARY, "")
	if s := sm.GetSummary(); s.GetSampleCount() != 4 || s.GetSampleSum() != 400 || len(s.GetQuantile()) != 2 ||
		s.GetQuantile()[1].GetQuantile() != 0.99 || s.GetQuantile()[1].GetValue() != 150 {
		t.Errorf("summary %v", s)
	}

	ti := one(t, fams, "target_info", dto.MetricType_GAUGE, "Target metadata")
	wantLabels(t, "target_info", ti, map[string]string{"job": "shop/checkout", "instance": "i-1", "host_name": "h1"})
	if ti.GetGauge().GetValue() != 1 {
		t.Errorf("target_info = %v, want 1", ti.GetGauge().GetValue())
	}
	if s, d := h.cnt.Get(component.Sent), h.cnt.Get(component.Dropped); s != 6 || d != 0 {
		t.Errorf("sent %d dropped %d, want 6 0", s, d)
	}
}

func TestDropsDeltaAndExponential(t *testing.T) {
	h := newHarness(t, nil)
	md, ms := newMetrics()
	addSum(ms, "delta.requests", "", true, pmetric.AggregationTemporalityDelta, 5)
	m := ms.AppendEmpty()
	m.SetName("delta.hist")
	dh := m.SetEmptyHistogram()
	dh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dh.DataPoints().AppendEmpty().SetCount(1)
	dh.DataPoints().AppendEmpty().SetCount(2)
	m = ms.AppendEmpty()
	m.SetName("exp.hist")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	eh.DataPoints().AppendEmpty()
	addGauge(ms, "kept", "", 1)
	h.consume(t, md)
	h.consume(t, md)

	fams := h.scrape(t)
	for _, name := range []string{"delta_requests_total", "delta_hist", "exp_hist"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s is served, want it dropped", name)
		}
	}
	one(t, fams, "kept", dto.MetricType_GAUGE, "kept help")
	if s, d := h.cnt.Get(component.Sent), h.cnt.Get(component.Dropped); s != 2 || d != 8 {
		t.Errorf("sent %d dropped %d, want 2 8", s, d)
	}
	logs := h.log.String()
	if strings.Count(logs, "delta temporality") != 1 || strings.Count(logs, "exponential histogram") != 1 {
		t.Errorf("want one line per reason (rate limited), got:\n%s", logs)
	}
}

func TestOptions(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Namespace = "vigil"
		c.ConstLabels = map[string]string{"region": "eu", "room": "const wins"}
		c.ResourceToTelemetryConversion.Enabled = true
		c.AddMetricSuffixes = false
	})
	md, ms := newMetrics()
	addSum(ms, "sent", "By", true, pmetric.AggregationTemporalityCumulative, 3, "room", "b", "a.b", "x", "a-b", "y")
	h.consume(t, md)
	fams := h.scrape(t)
	c := one(t, fams, "vigil_sent", dto.MetricType_COUNTER, "sent help")
	wantLabels(t, "vigil_sent", c, map[string]string{
		"job": "shop/checkout", "instance": "i-1", "otel_scope_name": "lib", "otel_scope_version": "1.2",
		"service_name": "checkout", "service_namespace": "shop", "service_instance_id": "i-1", "host_name": "h1",
		"region": "eu", "room": "const wins", "a_b": "y;x", // "a-b" sorts before "a.b"
	})
}

func TestLatestValueAndOrder(t *testing.T) {
	h := newHarness(t, nil)
	set := func(v float64, at time.Time) {
		md, ms := newMetrics()
		addGauge(ms, "g", "", v)
		ms.At(0).Gauge().DataPoints().At(0).SetTimestamp(pcommon.NewTimestampFromTime(at))
		h.consume(t, md)
	}
	t0 := time.Unix(1_700_000_000, 0)
	set(1, t0)
	set(2, t0.Add(time.Second))
	set(3, t0) // older: ignored
	if v := one(t, h.scrape(t), "g", dto.MetricType_GAUGE, "g help").GetGauge().GetValue(); v != 2 {
		t.Errorf("g = %v, want 2 (latest by timestamp)", v)
	}

	md, ms := newMetrics()
	addGauge(ms, "g", "", 0)
	dp := ms.At(0).Gauge().DataPoints().At(0)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(2 * time.Second)))
	dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	h.consume(t, md)
	if _, ok := h.scrape(t)["g"]; ok {
		t.Error("g still served after a no-recorded-value point")
	}
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.MetricExpiration = 5 * time.Minute })
		md, ms := newMetrics()
		addGauge(ms, "old", "", 1)
		addGauge(ms, "fresh", "", 1)
		h.consume(t, md)

		time.Sleep(4 * time.Minute)
		md, ms = newMetrics()
		addGauge(ms, "fresh", "", 2)
		h.consume(t, md)
		fams := h.scrape(t)
		if _, ok := fams["old"]; !ok {
			t.Error("old expired before metric_expiration")
		}

		time.Sleep(2 * time.Minute)
		fams = h.scrape(t)
		if _, ok := fams["old"]; ok {
			t.Error("old still served 6m after its last update")
		}
		if v := one(t, fams, "fresh", dto.MetricType_GAUGE, "fresh help").GetGauge().GetValue(); v != 2 {
			t.Errorf("fresh = %v, want 2", v)
		}
		// target_info is refreshed by every batch of its resource.
		one(t, fams, "target_info", dto.MetricType_GAUGE, "Target metadata")

		// Without scrapes, Consume sweeps: the map does not grow beyond the live series.
		for i := range 20 {
			md, ms := newMetrics()
			addGauge(ms, fmt.Sprintf("churn%d", i), "", 1)
			h.consume(t, md)
			time.Sleep(time.Minute)
		}
		h.exp.mu.Lock()
		n := len(h.exp.series)
		h.exp.mu.Unlock()
		if n > 8 { // ≤ 5–6 churn series + target_info
			t.Errorf("%d series held, want only those updated within 5m", n)
		}
	})
}

// TestConcurrentScrapes runs Consume against scrapes over a real listener; run with -race.
func TestConcurrentScrapes(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if err := h.exp.Start(ctx, component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	defer h.exp.Shutdown(ctx)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				md, ms := newMetrics()
				addSum(ms, "c", "", true, pmetric.AggregationTemporalityCumulative, int64(i), "w", fmt.Sprint(w), "i", fmt.Sprint(i%10))
				h.consume(t, md)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				resp, err := client.Get("http://" + h.exp.addr + "/metrics")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("scrape: %s %s", resp.Status, body)
				}
				parse(t, bytes.NewReader(body))
			}
		})
	}
	wg.Wait()
	if f := h.scrape(t)["c_total"]; f == nil || len(f.GetMetric()) != 40 {
		t.Errorf("c_total: want 40 series, got %v", f)
	}
}

func TestOpenMetrics(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.EnableOpenMetrics = true })
	md, ms := newMetrics()
	addSum(ms, "c", "", true, pmetric.AggregationTemporalityCumulative, 1)
	h.consume(t, md)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	rec := httptest.NewRecorder()
	h.exp.handler.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	if body := rec.Body.String(); !strings.Contains(body, "# TYPE c counter") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("body:\n%s", body)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// TestScrapeAuth: with auth on the scrape listener, a scrape without the token, or with
// another, gets 401 and no metrics; with it, the metrics.
func TestScrapeAuth(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Auth = &server.Auth{Tokens: []server.TokenAuth{{Name: "prometheus", Token: "scr4pe-s3cret"}}}
	})
	if err := h.exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.exp.Shutdown(context.Background()) }()
	srv := h.exp.srv // the listener's server, as the exporter built it
	for _, tc := range []struct {
		authorization string
		code          int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"Bearer scr4pe-s3cret", http.StatusOK}} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.authorization != "" {
			req.Header.Set("Authorization", tc.authorization)
		}
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%q: %d, want %d", tc.authorization, rec.Code, tc.code)
		}
		if tc.code == http.StatusUnauthorized && (strings.Contains(rec.Body.String(), "# TYPE") || strings.Contains(rec.Body.String(), "s3cret")) {
			t.Errorf("%q: the 401 says %q", tc.authorization, rec.Body)
		}
	}
}
