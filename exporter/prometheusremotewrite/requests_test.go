package prometheusremotewrite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/sender"
)

func rwBatchMeta(t testing.TB, meta []prompb.MetricMetadata, ts ...prompb.TimeSeries) *batch.Batch {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: ts, Metadata: meta}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seriesOnShard returns a series name that the exporter's builder puts on shard want of n.
func seriesOnShard(t *testing.T, n, want int, skip map[string]bool) string {
	t.Helper()
	bld := promrw.NewBuilder(n)
	for i := range 1000 {
		name := fmt.Sprintf("m%d", i)
		if skip[name] {
			continue
		}
		raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ser(name, nil, smp(1, 1))}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		_ = promrw.ScanV1(raw, func(s promrw.SeriesV1) error { got = bld.Add(s); return nil })
		if got == want {
			return name
		}
	}
	t.Fatalf("no series name hashes to shard %d of %d", want, n)
	return ""
}

// 1.0 metadata must reach the backend once per batch, whichever shards the series land on, and
// also when the batch holds metadata only.
func TestMetadataSentOnce(t *testing.T) {
	meta := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "temp", Help: "Temperature."}}
	f := func(name string, series ...string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			be := &backend{}
			e, _ := newTestExporter(t, be, func(c *Config) { c.QueueConfig.MinShards, c.QueueConfig.MaxShards = 4, 4 })
			var ts []prompb.TimeSeries
			for _, s := range series {
				ts = append(ts, ser(s, nil, smp(1, 1)))
			}
			if err := e.Consume(context.Background(), rwBatchMeta(t, meta, ts...)); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, g := range be.requests() {
				for _, m := range g.meta {
					if m.MetricFamilyName == "temp" && m.Help == "Temperature." {
						n++
					}
				}
			}
			if n != 1 {
				t.Errorf("metadata arrived %d times in %d requests, want once", n, len(be.requests()))
			}
		})
	}
	f("no series")
	f("series on shard 0 only", seriesOnShard(t, 4, 0, nil))
	f("no series on shard 0", seriesOnShard(t, 4, 1, nil), seriesOnShard(t, 4, 3, nil))
}

// Without a sending queue, several callers share the exporter. A batch retried after another
// batch was sent in between must still re-send only what the backend did not take.
func TestInterleavedRetriesSendOnlyWhatFailed(t *testing.T) {
	var mu sync.Mutex
	failing := true
	be := &backend{answer: func(_ int, g got) (int, map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		if failing && strings.Contains(lblString(g.series[0].Labels), `"a1"`) {
			return 503, nil
		}
		return 204, nil
	}}
	e, _ := newTestExporter(t, be, func(c *Config) {
		c.QueueConfig.MinShards, c.QueueConfig.MaxShards, c.QueueConfig.MaxSamplesPerSend = 4, 4, 1
	})
	var as, bs []prompb.TimeSeries
	for s := range 8 {
		as = append(as, ser(fmt.Sprintf("a%d", s), nil, smp(1, float64(s))))
		bs = append(bs, ser(fmt.Sprintf("b%d", s), nil, smp(1, float64(s))))
	}
	a, b := rwBatch(t, as...), rwBatch(t, bs...)
	ctx := context.Background()
	// What the sender does for two callers: attempt a (fails in part), attempt b, retry a.
	if err := e.send(ctx, a); err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("first attempt of a: %v, want a retryable error", err)
	}
	if err := e.send(ctx, b); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if err := e.send(ctx, a); err != nil {
		t.Fatal(err)
	}
	got := samplesBySeries(be.requests())
	for s := range 8 {
		k := fmt.Sprintf(`{__name__="a%d"}`, s)
		want := 1
		if s == 1 {
			want = 2 // refused once, then sent again
		}
		if len(got[k]) != want {
			t.Errorf("%s arrived %d times, want %d", k, len(got[k]), want)
		}
	}
}

// No request may hold more than max_samples_per_send samples, also when series of several
// samples do not divide it.
func TestRequestsRespectMaxSamplesPerSend(t *testing.T) {
	be := &backend{}
	e, c := newTestExporter(t, be, func(c *Config) {
		c.QueueConfig.MinShards, c.QueueConfig.MaxShards, c.QueueConfig.MaxSamplesPerSend = 1, 1, 10
	})
	var ts []prompb.TimeSeries
	for s := range 20 {
		ts = append(ts, ser(fmt.Sprintf("m%d", s), nil, smp(1, 1), smp(2, 2), smp(3, 3)))
	}
	if err := e.Consume(context.Background(), rwBatch(t, ts...)); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, g := range be.requests() {
		n := 0
		for _, s := range g.series {
			n += len(s.Samples)
		}
		total += n
		if n > 10 {
			t.Errorf("request %d holds %d samples, over max_samples_per_send 10", i, n)
		}
	}
	if total != 60 || c.Get(component.Sent) != 60 {
		t.Errorf("backend got %d samples, sent counter %d; want 60", total, c.Get(component.Sent))
	}
}

// A series with more samples than max_samples_per_send is cut into several requests, in order.
func TestHugeSeriesIsSplit(t *testing.T) {
	be := &backend{}
	e, c := newTestExporter(t, be, func(c *Config) {
		c.QueueConfig.MinShards, c.QueueConfig.MaxShards, c.QueueConfig.MaxSamplesPerSend = 2, 2, 10
		c.ExternalLabels = map[string]string{"cluster": "eu1"}
	})
	var samples []prompb.Sample
	var want []string
	for i := range 25 {
		samples = append(samples, smp(int64(i), float64(i)))
		want = append(want, fmt.Sprintf("%d:%d", i, i))
	}
	big := ser("big", []string{"job", "x"}, samples...)
	big.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 3, Timestamp: 3}}
	if err := e.Consume(context.Background(), rwBatch(t, big, ser("small", nil, smp(1, 1)))); err != nil {
		t.Fatal(err)
	}
	reqs := be.requests()
	exemplars := 0
	for i, g := range reqs {
		n := 0
		for _, s := range g.series {
			n += len(s.Samples)
			exemplars += len(s.Exemplars)
		}
		if n > 10 {
			t.Errorf("request %d holds %d samples, over max_samples_per_send 10", i, n)
		}
	}
	got := samplesBySeries(reqs)
	k := `{__name__="big", cluster="eu1", job="x"}`
	if strings.Join(got[k], " ") != strings.Join(want, " ") {
		t.Errorf("big series arrived as %v", got[k])
	}
	if exemplars != 1 {
		t.Errorf("%d exemplars arrived, want 1", exemplars)
	}
	if c.Get(component.Sent) != 26 {
		t.Errorf("sent %d, want 26", c.Get(component.Sent))
	}
}

// A translation cut short by the end of the attempt's context must not be sent as if it were
// the whole batch, nor kept for the retry.
func TestCancelledTranslationIsRetried(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, nil)
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for i := range 300 {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprintf("g%d", i))
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)
	}
	b := batch.FromMetrics(md)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := e.send(ctx, b)
	if err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("send with an ended context: %v, want a retryable error", err)
	}
	if _, partial := consumererror.AsPartial(err); partial {
		t.Fatalf("send with an ended context: partial %v", err)
	}
	if err := e.send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range samplesBySeries(be.requests()) {
		n += len(s)
	}
	if n != 300 {
		t.Errorf("backend got %d samples, want 300", n)
	}
}

// Batches joined by the batch processor or the sending queue each bring their metadata (a scrape
// sends its families' with every scrape); the backend gets each entry once per request batch.
func TestJoinedMetadataSentOnce(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, nil)
	meta := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "temp", Help: "Temperature."}}
	var parts []*batch.Batch
	for i := range 3 {
		parts = append(parts, rwBatchMeta(t, meta, ser("temp", nil, smp(int64(i), 1))))
	}
	joined, err := batch.Concat(parts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Consume(context.Background(), joined); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range be.requests() {
		n += len(g.meta)
	}
	if n != 1 {
		t.Errorf("metadata arrived %d times, want once", n)
	}
}

// 1.0 metadata goes as Prometheus sends it: when new families appear and every
// metadata_config.send_interval, not after every batch.
func TestMetadataSentPeriodically(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, nil)
	now := time.Unix(1e9, 0)
	e.now = func() time.Time { return now }
	temp := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "temp", Help: "Temperature."}
	hum := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "hum", Help: "Humidity."}
	send := func(meta ...prompb.MetricMetadata) {
		t.Helper()
		if err := e.Consume(context.Background(), rwBatchMeta(t, meta, ser("temp", nil, smp(1, 1)))); err != nil {
			t.Fatal(err)
		}
	}
	metaRequests := func() (n int, last []string) {
		for _, g := range be.requests() {
			if len(g.meta) > 0 {
				if len(g.series) > 0 {
					t.Errorf("a request holds series and metadata")
				}
				n++
				last = last[:0]
				for _, m := range g.meta {
					last = append(last, m.MetricFamilyName)
				}
			}
		}
		return n, last
	}
	for range 10 {
		send(temp)
		now = now.Add(time.Second)
	}
	if n, last := metaRequests(); n != 1 || !slices.Equal(last, []string{"temp"}) {
		t.Fatalf("after 10 batches with one family: %d metadata requests (last %v), want 1 [temp]", n, last)
	}
	send(temp, hum) // a new family goes at once, with the others
	if n, last := metaRequests(); n != 2 || !slices.Equal(last, []string{"hum", "temp"}) {
		t.Fatalf("after a new family: %d metadata requests (last %v), want 2 [hum temp]", n, last)
	}
	now = now.Add(time.Minute) // send_interval passed: everything again
	send()
	if n, last := metaRequests(); n != 3 || !slices.Equal(last, []string{"hum", "temp"}) {
		t.Fatalf("after send_interval: %d metadata requests (last %v), want 3 [hum temp]", n, last)
	}
	if got := len(be.requests()); got != 3+12 {
		t.Errorf("%d requests, want 12 with series and 3 with metadata", got)
	}
}

// Batches that come in quickly (one per scrape) leave as one request per shard when
// batch_send_deadline or max_samples_per_send is reached, not one each; a backend refusing
// them sees one refused request per deadline.
func TestRequestsAccumulate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"accepted", 204}, {"refused", 400}} {
		t.Run(tc.name, func(t *testing.T) {
			be := &backend{answer: func(int, got) (int, map[string]string) { return tc.status, nil }}
			e, _ := newTestExporter(t, be, func(c *Config) {
				c.Sender.Queue.Enabled = true
				c.QueueConfig.BatchSendDeadline = time.Hour // only the size or shutdown sends
				c.QueueConfig.MaxSamplesPerSend = 100
				c.MetadataConfig.Send = false
			})
			// 250 batches of one sample each, in one shard: 2 full requests, then shutdown
			// sends the remaining 50.
			for i := range 250 {
				if err := e.Consume(context.Background(), rwBatch(t, ser("m", nil, smp(int64(i), float64(i))))); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			reqs := be.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3 (100, 100, 50 samples)", len(reqs))
			}
			var ts []int64
			for _, g := range reqs {
				for _, s := range g.series {
					for _, x := range s.Samples {
						ts = append(ts, x.Timestamp)
					}
				}
			}
			if len(ts) != 250 || !slices.IsSorted(ts) {
				t.Errorf("%d samples, in order: %v", len(ts), slices.IsSorted(ts))
			}
		})
	}
}

// batch_send_deadline sends what accumulated although max_samples_per_send was not reached.
func TestBatchSendDeadline(t *testing.T) {
	be := &backend{}
	e, _ := newTestExporter(t, be, func(c *Config) {
		c.Sender.Queue.Enabled = true
		c.QueueConfig.BatchSendDeadline = 50 * time.Millisecond
	})
	for i := range 5 {
		if err := e.Consume(context.Background(), rwBatch(t, ser("m", nil, smp(int64(i), 1)))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(be.requests()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing sent after the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if reqs := be.requests(); len(reqs) != 1 || len(reqs[0].series) != 5 {
		t.Errorf("%d requests (first with %d series), want 1 with the 5", len(reqs), len(reqs[0].series))
	}
}

// An OpenTelemetry Collector config's sending_queue.batch is used as written.
func TestExplicitQueueBatchWins(t *testing.T) {
	cfg := NewConfig()
	b := sender.NewBatchConfig()
	b.MinSize, b.FlushTimeout = 7, time.Second
	cfg.Sender.Queue.Batch = &b
	if got := cfg.senderConfig().Queue.Batch; got == nil || got.MinSize != 7 || got.FlushTimeout != time.Second {
		t.Errorf("sender batching %+v, want the explicit one", got)
	}
	cfg = NewConfig()
	if got := cfg.senderConfig().Queue.Batch; got == nil || got.MinSize != 2000 || got.FlushTimeout != 5*time.Second {
		t.Errorf("default sender batching %+v, want max_samples_per_send 2000, batch_send_deadline 5s", got)
	}
	cfg.QueueConfig.BatchSendDeadline = 0
	if got := cfg.senderConfig().Queue.Batch; got != nil {
		t.Errorf("batch_send_deadline 0: sender batching %+v, want none", got)
	}
}
