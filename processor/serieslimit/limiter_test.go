package serieslimit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/promrw"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckProcessor(t, NewFactory(), &Config{MaxSeries: 10, Window: time.Hour})
}

// fixture is a limiter in front of a sink, with its counters, registry and log.
type fixture struct {
	l        *limiter
	sink     *componenttest.Sink
	counters *componenttest.Counters
	reg      *prometheus.Registry
	log      *componenttest.LogBuffer
}

func newFixture(t testing.TB, maxSeries int, window time.Duration) *fixture {
	t.Helper()
	fx := &fixture{sink: &componenttest.Sink{}, counters: &componenttest.Counters{}, reg: prometheus.NewRegistry(),
		log: &componenttest.LogBuffer{}}
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	set.Counters, set.Registerer = fx.counters, fx.reg
	set.Logger = slog.New(slog.NewTextHandler(fx.log, nil))
	p, err := NewFactory().Create(set, &Config{MaxSeries: maxSeries, Window: window}, batch.Metrics, fx.sink)
	if err != nil {
		t.Fatal(err)
	}
	fx.l = p.(*limiter)
	if err := fx.l.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fx.l.Shutdown(context.Background()) })
	return fx
}

// rwBody holds one series per index, named s_<i> with a label, each with two samples.
func rwBody(idx ...int) []byte {
	var enc promrw.SeriesEncoder
	body := promrw.AppendMetadata(nil, promrw.MetadataGauge, "s", "", "")
	for _, i := range idx {
		enc.Label("__name__", fmt.Sprintf("s_%d", i))
		enc.Label("job", "test")
		enc.Sample(1, 1000)
		enc.Sample(2, 2000)
		body = enc.AppendTo(body)
	}
	return body
}

func span(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// send pushes the series through the limiter as one remote-write batch and returns the names
// that came out, in order ("" if the batch was not passed on).
func (fx *fixture) send(t testing.TB, idx ...int) []string {
	t.Helper()
	before := len(fx.sink.Batches())
	b := batch.FromPromRWTrusted(rwBody(idx...), 2*len(idx))
	h := ack.New()
	b.SetAcks(h.Set())
	if err := fx.l.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	bs := fx.sink.Batches()
	if len(bs) == before {
		return nil
	}
	if acks := bs[len(bs)-1].Acks(); len(acks) != 1 || acks[0] != h {
		t.Errorf("the batch passed on carries %v, want the input's handle", acks)
	}
	out, _ := bs[len(bs)-1].PromRW()
	var names []string
	if err := promrw.ScanV1(out, func(s promrw.SeriesV1) error {
		names = append(names, string(s.MetricName()))
		return nil
	}); err != nil {
		t.Fatalf("output is not valid remote write: %v", err)
	}
	if got := bs[len(bs)-1].Items(); got != 2*len(names) {
		t.Errorf("batch says %d items, holds %d series of 2 samples", got, len(names))
	}
	return names
}

func names(idx ...int) []string {
	var s []string
	for _, i := range idx {
		s = append(s, fmt.Sprintf("s_%d", i))
	}
	return s
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestLimit checks that exactly max_series distinct series pass, the next one is dropped and
// counted, and known series keep passing.
func TestLimit(t *testing.T) {
	fx := newFixture(t, 100, time.Hour)
	if got := fx.send(t, span(0, 150)...); !equal(got, names(span(0, 100)...)) {
		t.Fatalf("first batch: %d series passed (%v…), want s_0..s_99", len(got), got[:min(3, len(got))])
	}
	if d := fx.counters.Get(component.Dropped); d != 100 {
		t.Errorf("dropped %d items, want 100 (50 series × 2 samples)", d)
	}
	if v := testutil.ToFloat64(fx.l.droppedSeries); v != 50 {
		t.Errorf("dropped series metric %v, want 50", v)
	}
	// Known series pass, new ones do not, whatever the order.
	if got := fx.send(t, 150, 99, 0, 100); !equal(got, names(99, 0)) {
		t.Errorf("mixed batch: %v", got)
	}
	// A batch of known series only goes on as it came.
	b := batch.FromPromRWTrusted(rwBody(5, 6, 7), 6)
	if err := fx.l.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if bs := fx.sink.Batches(); bs[len(bs)-1] != b {
		t.Error("a batch with nothing to drop was copied")
	}
	// A batch of new series only is not passed on at all.
	before := len(fx.sink.Batches())
	if got := fx.send(t, 200, 201); got != nil || len(fx.sink.Batches()) != before {
		t.Errorf("a batch with every series dropped was passed on: %v", got)
	}
	if v := testutil.ToFloat64(fx.l.droppedSeries); v != 54 {
		t.Errorf("dropped series metric %v, want 54", v)
	}
	if n := fx.l.series(); n != 100 {
		t.Errorf("%d series known, want 100", n)
	}
}

// TestLimitOfOne is the edge: the first series in wins, a second is refused.
func TestLimitOfOne(t *testing.T) {
	fx := newFixture(t, 1, time.Hour)
	if got := fx.send(t, 7, 8, 7); !equal(got, names(7, 7)) {
		t.Errorf("got %v", got)
	}
}

// TestRotation checks the windows: series that keep coming keep their slots across rotations,
// series that stop free theirs one to two windows after they were last seen.
func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fx := newFixture(t, 100, time.Hour)
		fx.send(t, span(0, 100)...)
		if got := fx.send(t, 100); got != nil {
			t.Fatal("s_100 passed over the limit")
		}

		// Window 2: only s_50..s_99 come back; all 100 still count (they are in prev).
		time.Sleep(time.Hour)
		if got := fx.send(t, span(50, 100)...); len(got) != 50 {
			t.Fatalf("window 2: %d of 50 known series passed", len(got))
		}
		if got := fx.send(t, 100); got != nil {
			t.Fatal("window 2: s_100 passed while s_0..s_49 still hold their slots")
		}
		if got := fx.send(t, 0); !equal(got, names(0)) {
			t.Fatal("window 2: s_0, known from window 1, was dropped")
		}

		// Window 3: s_1..s_49 were last seen in window 1 and are forgotten; 49 slots are free.
		time.Sleep(time.Hour)
		if n := fx.l.series(); n != 51 {
			t.Errorf("window 3: %d series known, want 51 (s_0, s_50..s_99)", n)
		}
		if got := fx.send(t, span(100, 160)...); !equal(got, names(span(100, 149)...)) {
			t.Errorf("window 3: new series passed %d, want 49 (s_100..s_148)", len(got))
		}
		if got := fx.send(t, span(50, 100)...); len(got) != 50 {
			t.Errorf("window 3: %d of the 50 live series passed", len(got))
		}
	})
}

// TestIdle checks that after two windows without data every slot is free again.
func TestIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fx := newFixture(t, 10, time.Minute)
		fx.send(t, span(0, 10)...)
		time.Sleep(2*time.Minute + time.Second)
		if got := fx.send(t, span(10, 25)...); !equal(got, names(span(10, 20)...)) {
			t.Errorf("after two idle windows: %v", got)
		}
		// Just before the end of the window nothing rotates.
		time.Sleep(58 * time.Second)
		if got := fx.send(t, 0); got != nil {
			t.Errorf("s_0 passed before the window ended")
		}
	})
}

// TestPData checks OTLP data: a series is resource attributes + metric name + point
// attributes, in any attribute order; refused points are removed.
func TestPData(t *testing.T) {
	fx := newFixture(t, 3, time.Hour)
	build := func(service string, points ...map[string]any) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", service)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("requests")
		dps := m.SetEmptyGauge().DataPoints()
		for _, p := range points {
			dp := dps.AppendEmpty()
			_ = dp.Attributes().FromRaw(p)
		}
		return md
	}
	consume := func(md pmetric.Metrics) (passed int) {
		t.Helper()
		before := len(fx.sink.Batches())
		if err := fx.l.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
			t.Fatal(err)
		}
		bs := fx.sink.Batches()
		if len(bs) == before {
			return 0
		}
		b := bs[len(bs)-1]
		out, _ := b.Metrics()
		if out.DataPointCount() != b.Items() {
			t.Errorf("batch says %d items, holds %d", b.Items(), out.DataPointCount())
		}
		return out.DataPointCount()
	}
	two := map[string]any{"route": "/a", "code": int64(200)}
	if n := consume(build("a", two, map[string]any{"route": "/b"})); n != 2 {
		t.Fatalf("%d of 2 new series passed", n)
	}
	// The same attributes in another order are the same series.
	md := build("a")
	dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().AppendEmpty()
	dp.Attributes().PutInt("code", 200)
	dp.Attributes().PutStr("route", "/a")
	if n := consume(md); n != 1 {
		t.Error("attribute order made a new series")
	}
	// Another resource makes another series: one slot left, then full.
	if n := consume(build("b", two, map[string]any{"route": "/c"})); n != 1 {
		t.Errorf("%d passed, want 1 (the third series)", n)
	}
	if d := fx.counters.Get(component.Dropped); d != 1 {
		t.Errorf("dropped %d points, want 1", d)
	}
	if n := consume(build("c", two)); n != 0 {
		t.Error("a fourth series passed")
	}
	// Known series pass in an encoded batch, which keeps its encoding.
	raw, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(build("a", two))
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Metrics, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.l.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if bs := fx.sink.Batches(); bs[len(bs)-1] != b || !b.IsEncoded() {
		t.Error("an encoded batch of known series did not go on as it came")
	}
}

// TestPDataShared checks that dropping from a batch shared with another branch copies first.
func TestPDataShared(t *testing.T) {
	fx := newFixture(t, 1, time.Hour)
	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum().DataPoints()
	dps.AppendEmpty().Attributes().PutStr("a", "1")
	dps.AppendEmpty().Attributes().PutStr("a", "2")
	b := batch.FromMetrics(md)
	other := b.Share()
	if err := fx.l.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Metrics(); got.DataPointCount() != 2 {
		t.Error("the shared batch lost a point")
	}
	if fx.sink.Items() != 1 {
		t.Errorf("%d items passed, want 1", fx.sink.Items())
	}
}

// TestConcurrent sends overlapping series from several goroutines: exactly max_series distinct
// series get through, and once a series got through it always does. Run with -race.
func TestConcurrent(t *testing.T) {
	const maxSeries, workers, rounds = 200, 4, 20
	fx := newFixture(t, maxSeries, time.Hour)
	var mu sync.Mutex
	passed := map[string]bool{}
	fx.l.next = component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error {
		body, _ := b.PromRW()
		return promrw.ScanV1(body, func(s promrw.SeriesV1) error {
			mu.Lock()
			passed[string(s.MetricName())] = true
			mu.Unlock()
			return nil
		})
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// Each worker walks its own stride through 3×max series, so they race on new ones.
				var idx []int
				for i := range 30 {
					idx = append(idx, (w*37+r*30+i)%(3*maxSeries))
				}
				if err := fx.l.Consume(context.Background(), batch.FromPromRWTrusted(rwBody(idx...), 2*len(idx))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(passed) != maxSeries {
		t.Errorf("%d distinct series passed, want exactly %d", len(passed), maxSeries)
	}
	// Every series that passed is known and passes again.
	var idx []int
	for i := range 3 * maxSeries {
		if passed[fmt.Sprintf("s_%d", i)] {
			idx = append(idx, i)
		}
	}
	clear(passed)
	if err := fx.l.Consume(context.Background(), batch.FromPromRWTrusted(rwBody(idx...), 2*len(idx))); err != nil {
		t.Fatal(err)
	}
	if len(passed) != maxSeries {
		t.Errorf("%d of %d known series passed again", len(passed), maxSeries)
	}
}

// TestMetricsAndLog checks the extra metrics and that the limit is logged at most once per
// logEvery, with the count of what was left out.
func TestMetricsAndLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fx := newFixture(t, 2, time.Hour)
		fx.send(t, 1, 2, 3)
		fx.send(t, 4)
		fx.send(t, 5)
		if n := strings.Count(fx.log.String(), "series limit reached"); n != 1 {
			t.Errorf("%d log lines within %s, want 1:\n%s", n, logEvery, fx.log.String())
		}
		time.Sleep(logEvery)
		fx.send(t, 6)
		logs := fx.log.String()
		if n := strings.Count(logs, "series limit reached"); n != 2 || !strings.Contains(logs, "suppressed_since_last=2") ||
			!strings.Contains(logs, "example=s_3") {
			t.Errorf("log after %s:\n%s", logEvery, logs)
		}
		want := `
# HELP vigil_series_limit_dropped_series_total Series refused because the limit was reached, counted once per batch they were in.
# TYPE vigil_series_limit_dropped_series_total counter
vigil_series_limit_dropped_series_total 4
# HELP vigil_series_limit_max_series The configured limit on distinct series.
# TYPE vigil_series_limit_max_series gauge
vigil_series_limit_max_series 2
# HELP vigil_series_limit_series Distinct series known: seen in the current or the previous window.
# TYPE vigil_series_limit_series gauge
vigil_series_limit_series 2
`
		if err := testutil.GatherAndCompare(fx.reg, strings.NewReader(want)); err != nil {
			t.Error(err)
		}
		if err := fx.l.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, _ := testutil.GatherAndCount(fx.reg); n != 0 {
			t.Errorf("%d metrics left registered after Shutdown", n)
		}
	})
}
