package promconv

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// t0 is the time of the test points: 1700000000000 ms, 1700000000000000000 ns.
const t0 = pcommon.Timestamp(1_700_000_000_000_000_000)

// newMetrics returns metrics with one resource (service shop/api, instance pod-1:8080, plus the
// given attribute pairs) and one scope, and that scope's metric slice.
func newMetrics(resAttrs ...string) (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	a := rm.Resource().Attributes()
	a.PutStr("service.name", "api")
	a.PutStr("service.namespace", "shop")
	a.PutStr("service.instance.id", "pod-1:8080")
	for i := 0; i+1 < len(resAttrs); i += 2 {
		a.PutStr(resAttrs[i], resAttrs[i+1])
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("some.library")
	return md, sm.Metrics()
}

// TestRoundTrip converts pdata to remote write with the upstream translator (FromMetrics, with
// the specification's suffixes) and back with ToMetrics: values, bounds, buckets, attributes
// and exemplars come back exactly; names keep the unit suffix the translator added but lose
// `_total`; resource attributes come back as target_info made them (dots as underscores); the
// scope is ToMetrics's own, since the translator does not write scope labels by default.
func TestRoundTrip(t *testing.T) {
	f := func(name string, build func(ms pmetric.MetricSlice), want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			md, ms := newMetrics("host.name", "node1")
			build(ms)
			b, rejected, err := FromMetrics(context.Background(), md, Settings{AddMetricSuffixes: true})
			if err != nil || rejected != 0 {
				t.Fatalf("FromMetrics: %d rejected, %v", rejected, err)
			}
			got, dropped := convert(t, b.Bytes)
			if dropped != 0 {
				t.Errorf("dropped %d", dropped)
			}
			diff(t, "round trip", got, want)
		})
	}
	const res = "resource {service.name=api, service.namespace=shop, service.instance.id=pod-1:8080, host_name=node1}\n" +
		"  scope github.com/vigilhq/vigil/internal/promconv\n"

	f("gauge", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("room.temperature")
		m.SetUnit("Cel")
		m.SetDescription("Temperature of the room")
		dps := m.SetEmptyGauge().DataPoints()
		dp := dps.AppendEmpty()
		dp.SetTimestamp(t0)
		dp.SetDoubleValue(21.5)
		dp.Attributes().PutStr("room", "kitchen")
		dp.Attributes().PutStr("floor", "1")
		dp = dps.AppendEmpty()
		dp.SetTimestamp(t0 + 15e9)
		dp.SetIntValue(-3)
		dp.Attributes().PutStr("room", "cellar")
	}, res+
		`    gauge room_temperature_celsius unit="Cel" desc="Temperature of the room" {prometheus.type=gauge}
       {floor=1, room=kitchen} t=1700000000000000000 v=21.5
       {room=cellar} t=1700000015000000000 v=-3
`)

	f("cumulative sums", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("http.requests")
		m.SetUnit("{request}")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.SetIntValue(1234)
		dp.Attributes().PutStr("code", "200")
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTimestamp(t0 - 1e6)
		ex.SetDoubleValue(1)
		ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		ex.SetSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0, 1})
		ex.FilteredAttributes().PutStr("user", "u1")

		// A non-monotonic sum is a Prometheus gauge, so it comes back as one.
		m = ms.AppendEmpty()
		m.SetName("queue.length")
		s = m.SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp = s.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.SetDoubleValue(7)
	}, res+
		`    sum http_requests monotonic cumulative {prometheus.type=counter}
       {code=200} t=1700000000000000000 v=1234
        exemplar t=1699999999999000000 v=1 trace=0102030405060708090a0b0c0d0e0f10 span=0a0b0c0d0e0f0001 {user=u1}
    gauge queue_length {prometheus.type=gauge}
       t=1700000000000000000 v=7
`)

	f("histogram", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("http.server.duration")
		m.SetUnit("s")
		m.SetDescription("Request latency")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.Attributes().PutStr("route", "/a")
		dp.ExplicitBounds().FromRaw([]float64{0.1, 2.5, 10})
		dp.BucketCounts().FromRaw([]uint64{1, 2, 0, 4})
		dp.SetCount(7)
		dp.SetSum(42.5)
		ex := dp.Exemplars().AppendEmpty() // the translator puts it on le="2.5"
		ex.SetTimestamp(t0)
		ex.SetDoubleValue(0.5)
		ex.SetTraceID(pcommon.TraceID{0xff, 15: 1})
		// No sum: the translator writes no _sum series, and the point comes back without one.
		dp = h.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.Attributes().PutStr("route", "/b")
		dp.ExplicitBounds().FromRaw([]float64{0.1, 2.5, 10})
		dp.BucketCounts().FromRaw([]uint64{0, 0, 0, 3})
		dp.SetCount(3)
	}, res+
		`    histogram http_server_duration_seconds cumulative unit="s" desc="Request latency" {prometheus.type=histogram}
       {route=/a} t=1700000000000000000 count=7 sum=42.5 bounds=[0.1 2.5 10] counts=[1 2 0 4]
        exemplar t=1700000000000000000 v=0.5 trace=ff000000000000000000000000000001
       {route=/b} t=1700000000000000000 count=3 bounds=[0.1 2.5 10] counts=[0 0 0 3]
`)

	f("summary", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("rpc.duration")
		m.SetUnit("ms")
		dp := m.SetEmptySummary().DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.Attributes().PutStr("method", "Get")
		dp.SetCount(10)
		dp.SetSum(20.25)
		for _, q := range [][2]float64{{0, 0.5}, {0.5, 1.5}, {0.99, 5}, {1, 6}} {
			qv := dp.QuantileValues().AppendEmpty()
			qv.SetQuantile(q[0])
			qv.SetValue(q[1])
		}
	}, res+
		`    summary rpc_duration_milliseconds unit="ms" {prometheus.type=summary}
       {method=Get} t=1700000000000000000 count=10 sum=20.25 q=[0:0.5 0.5:1.5 0.99:5 1:6]
`)

	f("exponential histogram", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("payload.size")
		m.SetUnit("By")
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.Attributes().PutStr("dir", "in")
		dp.SetScale(2)
		dp.SetZeroCount(1)
		dp.SetCount(17)
		dp.SetSum(1234.5)
		// A long run of empty buckets makes the translator start a second span: the gap
		// must come back as zero buckets.
		dp.Positive().SetOffset(-1)
		dp.Positive().BucketCounts().FromRaw([]uint64{1, 0, 2, 0, 0, 0, 0, 5})
		dp.Negative().SetOffset(3)
		dp.Negative().BucketCounts().FromRaw([]uint64{4, 4})
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTimestamp(t0)
		ex.SetDoubleValue(300)
		ex.FilteredAttributes().PutStr("trace_id", "not-hex")
	}, res+
		// The translator writes Prometheus's default zero threshold, not OTLP's.
		`    exponentialhistogram payload_size_bytes cumulative unit="By" {prometheus.type=histogram}
       {dir=in} t=1700000000000000000 count=17 sum=1234.5 scale=2 zero=1@1e-128 pos=-1:[1 0 2 0 0 0 0 5] neg=3:[4 4]
        exemplar t=1700000000000000000 v=300 {trace_id=not-hex}
`)

	f("no recorded value", func(ms pmetric.MetricSlice) {
		m := ms.AppendEmpty()
		m.SetName("up")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		m = ms.AppendEmpty()
		m.SetName("latency")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hp := h.DataPoints().AppendEmpty()
		hp.SetTimestamp(t0)
		hp.ExplicitBounds().FromRaw([]float64{1})
		hp.BucketCounts().FromRaw([]uint64{1, 1})
		hp.SetCount(2)
		hp.SetSum(3)
		hp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		m = ms.AppendEmpty()
		m.SetName("sizes")
		e := m.SetEmptyExponentialHistogram()
		e.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		ep := e.DataPoints().AppendEmpty()
		ep.SetTimestamp(t0)
		ep.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	}, res+
		`    gauge up {prometheus.type=gauge}
       t=1700000000000000000 v=StaleNaN no-recorded-value
    histogram latency cumulative {prometheus.type=histogram}
       t=1700000000000000000 count=0 bounds=[] counts=[] no-recorded-value
    exponentialhistogram sizes cumulative {prometheus.type=histogram}
       t=1700000000000000000 count=0 scale=0 zero=0@0 pos=0:[] neg=0:[] no-recorded-value
`)
}

// TestRoundTripResources: each resource comes back as its own, found by job and instance, with
// the attributes target_info carried; a service without namespace is a job without a slash.
func TestRoundTripResources(t *testing.T) {
	md := pmetric.NewMetrics()
	for _, r := range []struct{ name, instance, region string }{{"api", "a:1", "eu"}, {"db", "b:2", ""}, {"api", "c:3", "us"}} {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", r.name)
		rm.Resource().Attributes().PutStr("service.instance.id", r.instance)
		if r.region != "" {
			rm.Resource().Attributes().PutStr("cloud.region", r.region)
		}
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("load")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.SetDoubleValue(float64(len(r.instance)))
	}
	b, _, err := FromMetrics(context.Background(), md, Settings{AddMetricSuffixes: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := convert(t, b.Bytes)
	diff(t, "resources", got, `resource {service.name=api, service.instance.id=a:1, cloud_region=eu}
  scope github.com/vigilhq/vigil/internal/promconv
    gauge load {prometheus.type=gauge}
       t=1700000000000000000 v=3
resource {service.name=db, service.instance.id=b:2}
  scope github.com/vigilhq/vigil/internal/promconv
    gauge load {prometheus.type=gauge}
       t=1700000000000000000 v=3
resource {service.name=api, service.instance.id=c:3, cloud_region=us}
  scope github.com/vigilhq/vigil/internal/promconv
    gauge load {prometheus.type=gauge}
       t=1700000000000000000 v=3
`)
}
