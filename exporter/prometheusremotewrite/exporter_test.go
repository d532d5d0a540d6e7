package prometheusremotewrite

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// got is one request as the backend decoded it (with the upstream prompb types).
type got struct {
	header http.Header
	series []prompb.TimeSeries // 2.0 requests are resolved into 1.0 series
	meta   []prompb.MetricMetadata
	v2meta map[string]writev2.Metadata // 2.0: by series labels
	v2help map[string]string
	raw    []byte
}

// backend is a remote-write receiver for tests: answer picks the status of the n-th request.
type backend struct {
	mu     sync.Mutex
	reqs   []got
	answer func(n int, g got) (int, map[string]string)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	comp, _ := io.ReadAll(r.Body)
	var body []byte
	var err error
	switch r.Header.Get("Content-Encoding") {
	case "snappy":
		body, err = snappy.Decode(nil, comp)
	case "zstd":
		var d *zstd.Decoder
		d, _ = zstd.NewReader(nil)
		body, err = d.DecodeAll(comp, nil)
		d.Close()
	default:
		err = fmt.Errorf("encoding %q", r.Header.Get("Content-Encoding"))
	}
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	g := got{header: r.Header.Clone(), raw: body}
	if strings.Contains(r.Header.Get("Content-Type"), "io.prometheus.write.v2.Request") {
		var req writev2.Request
		if err := req.Unmarshal(body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		g.v2meta, g.v2help = map[string]writev2.Metadata{}, map[string]string{}
		for _, ts := range req.Timeseries {
			var sb labels.ScratchBuilder
			ls, err := ts.ToLabels(&sb, req.Symbols)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			s := prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}
			for _, smp := range ts.Samples {
				s.Samples = append(s.Samples, prompb.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
			}
			for _, ex := range ts.Exemplars {
				el, _ := ex.ToExemplar(&sb, req.Symbols)
				s.Exemplars = append(s.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(el.Labels, nil), Value: el.Value, Timestamp: el.Ts})
			}
			g.v2meta[ls.String()] = ts.Metadata
			if ts.Metadata.HelpRef != 0 {
				g.v2help[ls.String()] = req.Symbols[ts.Metadata.HelpRef]
			}
			g.series = append(g.series, s)
		}
	} else {
		var req prompb.WriteRequest
		if err := req.Unmarshal(body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		g.series, g.meta = req.Timeseries, req.Metadata
	}
	b.mu.Lock()
	n := len(b.reqs)
	b.reqs = append(b.reqs, g)
	answer := b.answer
	b.mu.Unlock()
	code, hdr := http.StatusNoContent, map[string]string(nil)
	if answer != nil {
		code, hdr = answer(n, g)
	}
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	if code/100 == 2 {
		w.WriteHeader(code)
		return
	}
	http.Error(w, "backend says no", code)
}

func (b *backend) requests() []got {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

// samplesBySeries flattens requests into series → "ts:value" in arrival order.
func samplesBySeries(reqs []got) map[string][]string {
	out := map[string][]string{}
	for _, g := range reqs {
		for _, s := range g.series {
			k := lblString(s.Labels)
			for _, smp := range s.Samples {
				out[k] = append(out[k], fmt.Sprintf("%d:%g", smp.Timestamp, smp.Value))
			}
		}
	}
	return out
}

func lblString(ls []prompb.Label) string {
	var sb labels.ScratchBuilder
	for _, l := range ls {
		sb.Add(l.Name, l.Value)
	}
	return sb.Labels().String()
}

func rwBatch(t testing.TB, ts ...prompb.TimeSeries) *batch.Batch {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ser(name string, kv []string, samples ...prompb.Sample) prompb.TimeSeries {
	ls := labels.NewBuilder(labels.EmptyLabels())
	ls.Set("__name__", name)
	for i := 0; i+1 < len(kv); i += 2 {
		ls.Set(kv[i], kv[i+1])
	}
	return prompb.TimeSeries{Labels: prompb.FromLabels(ls.Labels(), nil), Samples: samples}
}

func smp(ts int64, v float64) prompb.Sample { return prompb.Sample{Timestamp: ts, Value: v} }

func newTestExporter(t *testing.T, be *backend, mod func(*Config)) (*exporter, *componenttest.Counters) {
	t.Helper()
	srv := httptest.NewServer(be)
	t.Cleanup(srv.Close)
	cfg := NewConfig()
	cfg.Client.Endpoint = srv.URL + "/api/v1/write"
	cfg.Sender.Queue.Enabled = false
	cfg.Sender.Retry.InitialInterval = time.Millisecond
	cfg.Sender.Retry.MaxInterval = 5 * time.Millisecond
	if mod != nil {
		mod(cfg)
	}
	counters := &componenttest.Counters{}
	e, err := newExporter(component.Settings{ID: component.ID{Type: Type}, Counters: counters}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e, counters
}

func TestSendsSeriesAsTheyCame(t *testing.T) {
	be := &backend{}
	e, c := newTestExporter(t, be, nil)
	b := rwBatch(t,
		ser("up", []string{"job", "node", "instance", "a:9100"}, smp(1000, 1)),
		ser("http_requests_total", []string{"code", "200"}, smp(1000, 5), smp(2000, 7)),
	)
	if err := e.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	reqs := be.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	for k, want := range map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
		"X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "vigil"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	want := map[string][]string{
		`{__name__="up", instance="a:9100", job="node"}`: {"1000:1"},
		`{__name__="http_requests_total", code="200"}`:   {"1000:5", "2000:7"},
	}
	if got := samplesBySeries(reqs); !equalMaps(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if c.Get(component.Sent) != 3 {
		t.Errorf("sent %d, want 3", c.Get(component.Sent))
	}
}

func equalMaps(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestExternalLabels(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, func(c *Config) {
		c.ExternalLabels = map[string]string{"cluster": "eu1", "replica": "a", "job": "ignored"}
	})
	if err := e.Consume(context.Background(), rwBatch(t,
		ser("up", []string{"job", "node"}, smp(1, 1)),
		ser("a", nil, smp(1, 2)),
	)); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		`{__name__="up", cluster="eu1", job="node", replica="a"}`:   {"1:1"},
		`{__name__="a", cluster="eu1", job="ignored", replica="a"}`: {"1:2"},
	}
	if got := samplesBySeries(be.requests()); !equalMaps(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, g := range be.requests() {
		for _, s := range g.series {
			if !slices.IsSortedFunc(s.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("labels not sorted: %v", s.Labels)
			}
		}
	}
}

// Series are spread over shards, each in order, and requests hold at most max_samples_per_send.
func TestShardingKeepsSeriesOrder(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, func(c *Config) {
		c.QueueConfig.MinShards, c.QueueConfig.MaxShards, c.QueueConfig.MaxSamplesPerSend = 4, 4, 10
	})
	want := map[string][]string{}
	for round := range 3 {
		var ts []prompb.TimeSeries
		for s := range 50 {
			name := fmt.Sprintf("m%d", s)
			ts = append(ts, ser(name, nil, smp(int64(round*2), float64(round)), smp(int64(round*2+1), float64(round)+0.5)))
			k := fmt.Sprintf(`{__name__="%s"}`, name)
			want[k] = append(want[k], fmt.Sprintf("%d:%g", round*2, float64(round)), fmt.Sprintf("%d:%g", round*2+1, float64(round)+0.5))
		}
		if err := e.Consume(context.Background(), rwBatch(t, ts...)); err != nil {
			t.Fatal(err)
		}
	}
	reqs := be.requests()
	if got := samplesBySeries(reqs); !equalMaps(got, want) {
		t.Errorf("series out of order or missing")
	}
	for i, g := range reqs {
		n := 0
		for _, s := range g.series {
			n += len(s.Samples)
		}
		if n > 10 {
			t.Errorf("request %d holds %d samples, over max_samples_per_send 10", i, n)
		}
	}
	if len(reqs) < 30 { // 300 samples / 10
		t.Errorf("%d requests; want at least 30", len(reqs))
	}
}

// A retry sends only the requests that were not accepted: no duplicates of the others.
func TestRetrySendsOnlyWhatFailed(t *testing.T) {
	failedOnce := map[string]bool{}
	var mu sync.Mutex
	be := &backend{answer: func(_ int, g got) (int, map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		k := lblString(g.series[0].Labels)
		if strings.Contains(k, `"m1"`) && !failedOnce[k] {
			failedOnce[k] = true
			return 503, map[string]string{"Retry-After": "0"}
		}
		return 204, nil
	}}
	e, c := newTestExporter(t, be, func(c *Config) {
		c.QueueConfig.MinShards, c.QueueConfig.MaxShards, c.QueueConfig.MaxSamplesPerSend = 4, 4, 1
	})
	var ts []prompb.TimeSeries
	for s := range 8 {
		ts = append(ts, ser(fmt.Sprintf("m%d", s), nil, smp(1, float64(s))))
	}
	if err := e.Consume(context.Background(), rwBatch(t, ts...)); err != nil {
		t.Fatal(err)
	}
	got := samplesBySeries(be.requests())
	for s := range 8 {
		k := fmt.Sprintf(`{__name__="m%d"}`, s)
		want := 1
		if s == 1 {
			want = 2 // refused once, then sent again
		}
		if len(got[k]) != want {
			t.Errorf("%s arrived %d times, want %d", k, len(got[k]), want)
		}
	}
	if c.Get(component.Sent) != 8 {
		t.Errorf("sent %d, want 8", c.Get(component.Sent))
	}
}

func TestStatusHandling(t *testing.T) {
	f := func(name string, code int, hdr map[string]string, wantAttempts int, wantErr string, wantDropped int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			be := &backend{answer: func(n int, _ got) (int, map[string]string) {
				if n == 0 {
					return code, hdr
				}
				return 204, nil
			}}
			e, c := newTestExporter(t, be, nil)
			err := e.Consume(context.Background(), rwBatch(t, ser("up", nil, smp(1, 1), smp(2, 1))))
			if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
				t.Fatalf("error %v, want %q", err, wantErr)
			}
			if n := len(be.requests()); n != wantAttempts {
				t.Errorf("%d attempts, want %d", n, wantAttempts)
			}
			if got := c.Get(component.Dropped); got != wantDropped {
				t.Errorf("dropped %d, want %d", got, wantDropped)
			}
		})
	}
	f("500 retried", 500, nil, 2, "", 0)
	f("429 retried", 429, map[string]string{"Retry-After": "0"}, 2, "", 0)
	f("400 not retried", 400, nil, 1, "HTTP 400", 2)
	f("404 not retried", 404, nil, 1, "HTTP 404", 2)
}

func TestRemoteWriteV2(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, func(c *Config) { c.Protocol = ProtocolV2 })
	raw, err := (&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:    prompb.FromLabels(labels.FromStrings("__name__", "http_requests_total", "code", "200"), nil),
				Samples:   []prompb.Sample{smp(1000, 3)},
				Exemplars: []prompb.Exemplar{{Labels: prompb.FromLabels(labels.FromStrings("trace_id", "abc"), nil), Value: 1, Timestamp: 900}},
			},
			ser("temp_celsius", nil, smp(1000, 21.5)),
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests", Help: "Requests."},
			{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "temp_celsius", Unit: "celsius"},
		},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	reqs := be.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	g := reqs[0]
	if g.header.Get("X-Prometheus-Remote-Write-Version") != "2.0.0" {
		t.Errorf("version header %q", g.header.Get("X-Prometheus-Remote-Write-Version"))
	}
	want := map[string][]string{
		`{__name__="http_requests_total", code="200"}`: {"1000:3"},
		`{__name__="temp_celsius"}`:                    {"1000:21.5"},
	}
	if got := samplesBySeries(reqs); !equalMaps(got, want) {
		t.Errorf("got %v", got)
	}
	k := `{__name__="http_requests_total", code="200"}`
	if g.v2meta[k].Type != writev2.Metadata_METRIC_TYPE_COUNTER || g.v2help[k] != "Requests." {
		t.Errorf("metadata of %s: %+v help %q", k, g.v2meta[k], g.v2help[k])
	}
	if g.v2meta[`{__name__="temp_celsius"}`].Type != writev2.Metadata_METRIC_TYPE_GAUGE {
		t.Errorf("gauge metadata %+v", g.v2meta[`{__name__="temp_celsius"}`])
	}
	for _, s := range g.series {
		if lblString(s.Labels) == k {
			if len(s.Exemplars) != 1 || lblString(s.Exemplars[0].Labels) != `{trace_id="abc"}` || s.Exemplars[0].Timestamp != 900 {
				t.Errorf("exemplars %+v", s.Exemplars)
			}
		}
	}
}

func TestZstd(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, func(c *Config) { c.Client.Compression = Zstd })
	if err := e.Consume(context.Background(), rwBatch(t, ser("up", nil, smp(1, 1)))); err != nil {
		t.Fatal(err)
	}
	if r := be.requests(); len(r) != 1 || r[0].header.Get("Content-Encoding") != "zstd" || len(r[0].series) != 1 {
		t.Fatalf("requests %+v", r)
	}
}

// OTLP metrics are translated by the specification's rules; delta sums are dropped and counted.
func TestFromOTLP(t *testing.T) {
	be := &backend{}
	e, c := newTestExporter(t, be, nil)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(time.UnixMilli(5000))
	m := ms.AppendEmpty()
	m.SetName("http.server.requests")
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(42)
	dp.Attributes().PutStr("http.route", "/pay")
	d := ms.AppendEmpty()
	d.SetName("delta.things")
	ds := d.SetEmptySum()
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ddp := ds.DataPoints().AppendEmpty()
	ddp.SetIntValue(1)
	ddp.SetTimestamp(ts)

	err := e.Consume(context.Background(), batch.FromMetrics(md))
	if err == nil || !strings.Contains(err.Error(), "delta.things") {
		t.Fatalf("want a partial error naming the delta metric, got %v", err)
	}
	got := samplesBySeries(be.requests())
	if v := got[`{__name__="http_server_requests_total", http_route="/pay", instance="pod-1", job="checkout"}`]; !slices.Equal(v, []string{"5000:42"}) {
		t.Errorf("counter: %v (all: %v)", v, got)
	}
	if v := got[`{__name__="target_info", instance="pod-1", job="checkout", k8s_namespace_name="shop"}`]; !slices.Equal(v, []string{"5000:1"}) {
		t.Errorf("target_info: %v (all: %v)", v, got)
	}
	if c.Get(component.Dropped) != 1 {
		t.Errorf("dropped %d, want 1", c.Get(component.Dropped))
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		cfg := NewConfig()
		cfg.Client.Endpoint = "http://x/api/v1/write"
		mod(cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	f(func(c *Config) { c.Client.Endpoint = "" }, "endpoint: required")
	f(func(c *Config) { c.Client.Compression = "gzip" }, "compression: must be snappy or zstd")
	f(func(c *Config) { c.Protocol = "3" }, `protocol: must be "1.0" or "2.0"`)
	f(func(c *Config) { c.Protocol = ProtocolV2; c.Client.Compression = Zstd }, "2.0 is snappy only")
	f(func(c *Config) { c.Sender.Queue.NumConsumers = 4 }, "num_consumers: must be 1")
	f(func(c *Config) { c.ExternalLabels = map[string]string{"bad-name": "x"} }, `"bad-name" is not a valid label name`)
	f(func(c *Config) { c.ExternalLabels = map[string]string{"a": ""} }, "must not be empty")
	f(func(c *Config) { c.QueueConfig.MinShards, c.QueueConfig.MaxShards = 5, 2 }, "queue_config.max_shards: must be >= queue_config.min_shards")
	f(func(c *Config) { c.QueueConfig.MaxSamplesPerSend = 0 }, "max_samples_per_send")
	f(func(c *Config) { c.QueueConfig.BatchSendDeadline = -time.Second }, "queue_config.batch_send_deadline: must be >= 0")
	f(func(c *Config) { c.MetadataConfig.SendInterval = 0 }, "metadata_config.send_interval")
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	cfg.Client.Endpoint = "http://127.0.0.1:1/api/v1/write"
	componenttest.CheckExporter(t, NewFactory(), cfg)
}

func TestResharder(t *testing.T) {
	cfg := QueueConfig{MinShards: 1, MaxShards: 16, ReshardInterval: 10 * time.Second}
	t0 := time.Unix(0, 0)
	// f runs intervals in which inRate items/s come in and each request of 1000 items takes rtt.
	f := func(start int, inRate float64, rtt time.Duration, intervals int, want int) {
		t.Helper()
		r := newResharder(cfg, t0)
		r.shards = start
		now := t0
		for range intervals {
			r.observeIn(int(inRate * 10))
			for range int(inRate * 10 / 1000) {
				r.observeRequest(rtt, 1000)
			}
			now = now.Add(10 * time.Second)
			r.reshard(now)
		}
		if r.current() != want {
			t.Errorf("from %d, %g items/s, %s per 1000: %d shards, want %d", start, inRate, rtt, r.current(), want)
		}
	}
	f(1, 100_000, 50*time.Millisecond, 1, 6)     // 5 requests/s × 50 ms = 5 busy senders, + 20%
	f(1, 100_000, 5*time.Millisecond, 1, 1)      // a fast backend: one shard keeps up
	f(8, 100_000, 5*time.Millisecond, 1, 1)      // and too many shards shrink back
	f(4, 100_000, 30*time.Millisecond, 1, 4)     // 3.6 wanted: within ±30%, stay
	f(1, 1_000_000, 100*time.Millisecond, 1, 16) // capped at max
	f(3, 0, 0, 3, 3)                             // nothing sent: nothing to go by
	// Smoothing: a single slow interval after fast ones moves the count only part of the way.
	r := newResharder(cfg, t0)
	now := t0
	for i, rtt := range []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 80 * time.Millisecond} {
		r.observeIn(1_000_000)
		for range 1000 {
			r.observeRequest(rtt, 1000)
		}
		now = now.Add(10 * time.Second)
		if got := r.reshard(now); i == 2 && (got <= 1 || got >= 10) {
			t.Errorf("after one slow interval: %d shards, want between the fast (1) and the slow (10) answer", got)
		}
	}
}
