package alerting

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/promrw"
)

func newExporter(t *testing.T) (*exporter, *engine.Engine, *componenttest.Counters) {
	t.Helper()
	ec := engine.NewConfig()
	ec.RuleFiles = []string{"testdata/rules.yaml"}
	ec.Store.Path = t.TempDir()
	if err := ec.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ec, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Stop() })
	cfg := NewConfig()
	counters := &componenttest.Counters{}
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	set.Counters = counters
	if _, err := NewFactory().Create(set, cfg); err == nil {
		t.Fatal("created without an engine")
	}
	cfg.Attach(eng)
	c, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*exporter), eng, counters
}

func stored(t *testing.T, eng *engine.Engine, name string) []labels.Labels {
	t.Helper()
	q, err := eng.Store().Queryable().Querier(0, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var out []labels.Labels
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name))
	for ss.Next() {
		out = append(out, ss.At().Labels())
	}
	return out
}

// TestOTLPNamedAsRemoteWrite: OTLP metrics are stored under the names the remote-write
// exporter gives them (unit and _total suffixes, job from service.name), and only the series a
// rule selects.
func TestOTLPNamedAsRemoteWrite(t *testing.T) {
	e, eng, counters := newExporter(t)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	g := sm.Metrics().AppendEmpty()
	g.SetName("rpc.duration")
	g.SetUnit("s")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.7)
	g.Gauge().DataPoints().At(0).SetTimestamp(now)
	s := sm.Metrics().AppendEmpty()
	s.SetName("http.errors")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetIntValue(3)
	dp.SetTimestamp(now)
	o := sm.Metrics().AppendEmpty()
	o.SetName("unrelated")
	o.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(now)
	if err := e.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, eng, "rpc_duration_seconds"); len(got) != 1 || got[0].Get("job") != "checkout" {
		t.Errorf("rpc_duration_seconds: %v", got)
	}
	if got := stored(t, eng, "http_errors_total"); len(got) != 1 {
		t.Errorf("http_errors_total: %v", got)
	}
	if got := stored(t, eng, "unrelated"); len(got) != 0 {
		t.Errorf("unselected series stored: %v", got)
	}
	if counters.Get(component.Sent) != 3 || counters.Get(component.Dropped) != 0 {
		t.Errorf("sent %d dropped %d, want 3 and 0", counters.Get(component.Sent), counters.Get(component.Dropped))
	}
}

// TestRemoteWrite: a remote-write batch (as the Prometheus receivers produce) is stored
// without conversion; unselected series are skipped, out-of-order samples counted dropped.
func TestRemoteWrite(t *testing.T) {
	e, eng, counters := newExporter(t)
	now := time.Now().UnixMilli()
	var enc promrw.SeriesEncoder
	var body []byte
	add := func(name, job string, ts ...int64) {
		enc.Reset()
		enc.Label("__name__", name)
		enc.Label("job", job)
		for _, t := range ts {
			enc.Sample(1, t)
		}
		body = enc.AppendTo(body)
	}
	add("http_errors_total", "api", now-2000, now-1000)
	add("node_cpu_seconds_total", "node", now)
	b, err := batch.FromPromRW(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, eng, "http_errors_total"); len(got) != 1 || got[0].Get("job") != "api" {
		t.Errorf("http_errors_total: %v", got)
	}
	if got := stored(t, eng, "node_cpu_seconds_total"); len(got) != 0 {
		t.Errorf("unselected series stored: %v", got)
	}
	if counters.Get(component.Sent) != 3 {
		t.Errorf("sent %d, want 3 (2 stored, 1 not needed)", counters.Get(component.Sent))
	}
	body = body[:0]
	add("http_errors_total", "api", now-5000) // older than what the head has
	b, _ = batch.FromPromRW(body)
	if err := e.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if counters.Get(component.Dropped) != 1 {
		t.Errorf("out-of-order sample: dropped %d, want 1", counters.Get(component.Dropped))
	}
}

func TestLogsRefused(t *testing.T) {
	e, _, _ := newExporter(t)
	if err := e.Consume(context.Background(), batch.FromTraces(ptraceEmpty())); err == nil {
		t.Error("traces accepted")
	}
}

func ptraceEmpty() ptrace.Traces { return ptrace.NewTraces() }
