package relabel

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/promrw"
)

// newTest builds a relabel processor from YAML rules (the body of a processor's config section)
// in front of a sink, with counters to check drops.
func newTest(t testing.TB, rules string) (component.Processor, *componenttest.Sink, *componenttest.Counters) {
	t.Helper()
	cfg := NewConfig()
	if err := componenttest.DecodeConfig([]byte(rules), cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	counters := &componenttest.Counters{}
	set.Counters = counters
	sink := &componenttest.Sink{}
	p, err := NewFactory().Create(set, cfg, batch.Metrics, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p, sink, counters
}

// testSeries is a remote-write series for tests: labels as name, value pairs (sorted), and
// what to put beside them.
type testSeries struct {
	labels    []string
	samples   int
	exemplar  bool
	histogram bool
}

// rwBody encodes series (with n samples each, exemplars and histograms as asked) and metadata
// entries before and after them.
func rwBody(t testing.TB, ss ...testSeries) []byte {
	t.Helper()
	body := promrw.AppendMetadata(nil, promrw.MetadataCounter, "http_requests_total", "Requests served.", "")
	var enc promrw.SeriesEncoder
	for i, s := range ss {
		for j := 0; j+1 < len(s.labels); j += 2 {
			enc.Label(s.labels[j], s.labels[j+1])
		}
		for k := range s.samples {
			enc.Sample(float64(i*10+k), int64(1000+k))
		}
		if s.exemplar {
			enc.Exemplar([]string{"trace_id", fmt.Sprintf("%032x", i+1)}, 0.25, 1000)
		}
		if s.histogram {
			h := prompb.FromIntHistogram(1000, &histogram.Histogram{
				Count: 5, Sum: 12.5, Schema: 0,
				PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
				PositiveBuckets: []int64{2, 1},
			})
			msg, err := h.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			enc.Histogram(msg)
		}
		body = enc.AppendTo(body)
	}
	return promrw.AppendMetadata(body, promrw.MetadataGauge, "up", "", "")
}

// rwLabels lists the label sets of a body's series in order, after checking the body is valid
// remote write (sorted, unique, named labels; well-formed samples).
func rwLabels(t testing.TB, body []byte) []string {
	t.Helper()
	var out []string
	err := promrw.ScanV1(body, func(s promrw.SeriesV1) error {
		var sb labels.ScratchBuilder
		it := s.Labels()
		for n, v, ok := it.Next(); ok; n, v, ok = it.Next() {
			sb.Add(string(n), string(v))
		}
		out = append(out, sb.Labels().String())
		return it.Err()
	})
	if err != nil {
		t.Fatalf("output is not valid remote write: %v", err)
	}
	return out
}

// received returns the one batch the sink got (nil when none), failing on more.
func received(t testing.TB, sink *componenttest.Sink) *batch.Batch {
	t.Helper()
	switch bs := sink.Batches(); len(bs) {
	case 0:
		return nil
	case 1:
		return bs[0]
	default:
		t.Fatalf("sink got %d batches, want at most 1", len(bs))
		return nil
	}
}

// testPoint is one OTLP data point for tests: its metric, attributes and the metric's type.
type testPoint struct {
	metric string
	attrs  map[string]any
	typ    pmetric.MetricType // 0: gauge
}

// otlpMetrics builds one resource (with a service.name the rules must not see) and one scope
// holding points, grouped into metrics by name in order of first appearance.
func otlpMetrics(pts ...testPoint) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("test")
	byName := map[string]pmetric.Metric{}
	for i, p := range pts {
		m, ok := byName[p.metric]
		if !ok {
			m = sm.Metrics().AppendEmpty()
			m.SetName(p.metric)
			m.SetUnit("1")
			switch p.typ {
			case pmetric.MetricTypeSum:
				m.SetEmptySum().SetIsMonotonic(true)
				m.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			case pmetric.MetricTypeHistogram:
				m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			default:
				m.SetEmptyGauge()
			}
			byName[p.metric] = m
		}
		var attrs pcommon.Map
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dp := m.Sum().DataPoints().AppendEmpty()
			dp.SetIntValue(int64(i))
			attrs = dp.Attributes()
		case pmetric.MetricTypeHistogram:
			dp := m.Histogram().DataPoints().AppendEmpty()
			dp.SetCount(uint64(i))
			attrs = dp.Attributes()
		default:
			dp := m.Gauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(float64(i))
			attrs = dp.Attributes()
		}
		if err := attrs.FromRaw(p.attrs); err != nil {
			panic(err)
		}
	}
	return md
}

// otlpPoints lists every data point as `metric{attr="string", attr=typed}` with attributes
// sorted, strings quoted and other types bare, so that a test sees types kept or changed.
func otlpPoints(md pmetric.Metrics) []string {
	var out []string
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				forEachAttrs(m, func(attrs pcommon.Map) bool {
					var kv []string
					attrs.Range(func(k string, v pcommon.Value) bool {
						if v.Type() == pcommon.ValueTypeStr {
							kv = append(kv, fmt.Sprintf("%s=%q", k, v.Str()))
						} else {
							kv = append(kv, fmt.Sprintf("%s=%s", k, v.AsString()))
						}
						return true
					})
					slices.Sort(kv)
					out = append(out, fmt.Sprintf("%s{%s}", m.Name(), strings.Join(kv, ", ")))
					return false
				})
			}
		}
	}
	return out
}
