package promconv

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/promrw"
)

// dump renders metrics as text, one line per resource, scope, metric, point and exemplar, in
// their order, with every field the conversion sets: tests compare it exactly.
func dump(md pmetric.Metrics) string {
	var b strings.Builder
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		fmt.Fprintf(&b, "resource%s\n", attrs(rm.Resource().Attributes()))
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			sm := sms.At(j)
			fmt.Fprintf(&b, "  scope %s", sm.Scope().Name())
			if v := sm.Scope().Version(); v != "" {
				fmt.Fprintf(&b, " %s", v)
			}
			fmt.Fprintf(&b, "%s\n", attrs(sm.Scope().Attributes()))
			ms := sm.Metrics()
			for k := range ms.Len() {
				dumpMetric(&b, ms.At(k))
			}
		}
	}
	return b.String()
}

func dumpMetric(b *strings.Builder, m pmetric.Metric) {
	fmt.Fprintf(b, "    %s %s", strings.ToLower(m.Type().String()), m.Name())
	switch m.Type() {
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			b.WriteString(" monotonic")
		}
		fmt.Fprintf(b, " %s", strings.ToLower(m.Sum().AggregationTemporality().String()))
	case pmetric.MetricTypeHistogram:
		fmt.Fprintf(b, " %s", strings.ToLower(m.Histogram().AggregationTemporality().String()))
	case pmetric.MetricTypeExponentialHistogram:
		fmt.Fprintf(b, " %s", strings.ToLower(m.ExponentialHistogram().AggregationTemporality().String()))
	}
	if m.Unit() != "" {
		fmt.Fprintf(b, " unit=%q", m.Unit())
	}
	if m.Description() != "" {
		fmt.Fprintf(b, " desc=%q", m.Description())
	}
	fmt.Fprintf(b, "%s\n", attrs(m.Metadata()))
	const ind = "      "
	switch m.Type() {
	case pmetric.MetricTypeGauge, pmetric.MetricTypeSum:
		var dps pmetric.NumberDataPointSlice
		if m.Type() == pmetric.MetricTypeSum {
			dps = m.Sum().DataPoints()
		} else {
			dps = m.Gauge().DataPoints()
		}
		for i := range dps.Len() {
			dp := dps.At(i)
			fmt.Fprintf(b, "%s%s t=%d v=%s%s\n", ind, attrs(dp.Attributes()), dp.Timestamp(), num(dp.DoubleValue()), flags(dp.Flags()))
			exemplars(b, dp.Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			fmt.Fprintf(b, "%s%s t=%d count=%d", ind, attrs(dp.Attributes()), dp.Timestamp(), dp.Count())
			if dp.HasSum() {
				fmt.Fprintf(b, " sum=%s", num(dp.Sum()))
			}
			fmt.Fprintf(b, " bounds=%v counts=%v%s\n", floats(dp.ExplicitBounds().AsRaw()), dp.BucketCounts().AsRaw(), flags(dp.Flags()))
			exemplars(b, dp.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			fmt.Fprintf(b, "%s%s t=%d count=%d", ind, attrs(dp.Attributes()), dp.Timestamp(), dp.Count())
			if dp.HasSum() {
				fmt.Fprintf(b, " sum=%s", num(dp.Sum()))
			}
			fmt.Fprintf(b, " scale=%d zero=%d@%s pos=%d:%v neg=%d:%v%s\n", dp.Scale(), dp.ZeroCount(), num(dp.ZeroThreshold()),
				dp.Positive().Offset(), dp.Positive().BucketCounts().AsRaw(),
				dp.Negative().Offset(), dp.Negative().BucketCounts().AsRaw(), flags(dp.Flags()))
			exemplars(b, dp.Exemplars())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			fmt.Fprintf(b, "%s%s t=%d count=%d sum=%s q=[", ind, attrs(dp.Attributes()), dp.Timestamp(), dp.Count(), num(dp.Sum()))
			for j := range dp.QuantileValues().Len() {
				q := dp.QuantileValues().At(j)
				if j > 0 {
					b.WriteString(" ")
				}
				fmt.Fprintf(b, "%s:%s", num(q.Quantile()), num(q.Value()))
			}
			fmt.Fprintf(b, "]%s\n", flags(dp.Flags()))
		}
	}
}

func exemplars(b *strings.Builder, es pmetric.ExemplarSlice) {
	for i := range es.Len() {
		e := es.At(i)
		fmt.Fprintf(b, "        exemplar t=%d v=%s", e.Timestamp(), num(e.DoubleValue()))
		if !e.TraceID().IsEmpty() {
			fmt.Fprintf(b, " trace=%s", e.TraceID())
		}
		if !e.SpanID().IsEmpty() {
			fmt.Fprintf(b, " span=%s", e.SpanID())
		}
		fmt.Fprintf(b, "%s\n", attrs(e.FilteredAttributes()))
	}
}

func attrs(m pcommon.Map) string {
	if m.Len() == 0 {
		return ""
	}
	var parts []string
	m.Range(func(k string, v pcommon.Value) bool {
		parts = append(parts, k+"="+v.AsString())
		return true
	})
	return " {" + strings.Join(parts, ", ") + "}"
}

func num(v float64) string {
	if math.Float64bits(v) == staleNaN {
		return "StaleNaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func floats(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = num(v)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func flags(f pmetric.DataPointFlags) string {
	if f.NoRecordedValue() {
		return " no-recorded-value"
	}
	return ""
}

// ser builds one remote-write 1.0 series for hand-made bodies.
type ser struct {
	labels    []string
	samples   []prompb.Sample
	hists     []prompb.Histogram
	exemplars []prompb.Exemplar
}

// series starts a series with name/value label pairs, which must be sorted.
func series(labels ...string) *ser { return &ser{labels: labels} }

func (s *ser) sample(v float64, t int64) *ser {
	s.samples = append(s.samples, prompb.Sample{Value: v, Timestamp: t})
	return s
}

func (s *ser) hist(h prompb.Histogram) *ser {
	s.hists = append(s.hists, h)
	return s
}

func (s *ser) exemplar(v float64, t int64, labels ...string) *ser {
	e := prompb.Exemplar{Value: v, Timestamp: t}
	for i := 0; i+1 < len(labels); i += 2 {
		e.Labels = append(e.Labels, prompb.Label{Name: labels[i], Value: labels[i+1]})
	}
	s.exemplars = append(s.exemplars, e)
	return s
}

// meta is a MetricMetadata entry of a hand-made body.
type meta struct {
	typ                int
	family, help, unit string
}

// body encodes *ser and meta items, in order, as a remote-write 1.0 body.
func body(t testing.TB, items ...any) []byte {
	t.Helper()
	var (
		out []byte
		enc promrw.SeriesEncoder
	)
	for _, it := range items {
		switch it := it.(type) {
		case *ser:
			enc.Reset()
			for i := 0; i+1 < len(it.labels); i += 2 {
				enc.Label(it.labels[i], it.labels[i+1])
			}
			for _, s := range it.samples {
				enc.Sample(s.Value, s.Timestamp)
			}
			for _, e := range it.exemplars {
				var ls []string
				for _, l := range e.Labels {
					ls = append(ls, l.Name, l.Value)
				}
				enc.Exemplar(ls, e.Value, e.Timestamp)
			}
			for _, h := range it.hists {
				b, err := h.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				enc.Histogram(b)
			}
			out = enc.AppendTo(out)
		case meta:
			out = promrw.AppendMetadata(out, it.typ, it.family, it.help, it.unit)
		default:
			t.Fatalf("body: unexpected %T", it)
		}
	}
	return out
}

// convert is ToMetricsDropped for tests that expect no error.
func convert(t testing.TB, b []byte) (string, int) {
	t.Helper()
	md, dropped, err := ToMetricsDropped(b)
	if err != nil {
		t.Fatalf("ToMetricsDropped: %v", err)
	}
	return dump(md), dropped
}

// diff fails with both texts when they differ.
func diff(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n--- got\n%s--- want\n%s", what, got, want)
	}
}
