package promconv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/promrw"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt")

type seed struct {
	name string
	body []byte
}

// seeds are bodies of every kind ToMetrics meets: written by the upstream OTLP translator
// (FromMetrics), by the scrape appender, and by hand (no metadata, native histograms).
func seeds(t testing.TB) []seed {
	md, ms := newMetrics("host.name", "n1", "k8s.pod.name", "p-1")
	m := ms.AppendEmpty()
	m.SetName("requests")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetTimestamp(t0)
	dp.SetIntValue(3)
	dp.Attributes().PutStr("code", "200")
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTimestamp(t0)
	ex.SetDoubleValue(1)
	ex.SetTraceID(pcommon.TraceID{1, 15: 2})
	m = ms.AppendEmpty()
	m.SetName("temperature")
	m.SetUnit("Cel")
	gp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(t0)
	gp.SetDoubleValue(-4.5)
	m = ms.AppendEmpty()
	m.SetName("latency")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(t0)
	hp.ExplicitBounds().FromRaw([]float64{0.01, 0.1, 1})
	hp.BucketCounts().FromRaw([]uint64{5, 4, 3, 2})
	hp.SetCount(14)
	hp.SetSum(3.25)
	m = ms.AppendEmpty()
	m.SetName("rpc")
	sp := m.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(t0)
	sp.SetCount(4)
	sp.SetSum(8)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(2)
	m = ms.AppendEmpty()
	m.SetName("sizes")
	m.SetUnit("By")
	e := m.SetEmptyExponentialHistogram()
	e.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := e.DataPoints().AppendEmpty()
	ep.SetTimestamp(t0)
	ep.SetScale(1)
	ep.SetCount(9)
	ep.SetZeroCount(1)
	ep.SetSum(100)
	ep.Positive().SetOffset(3)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 0, 0, 0, 0, 3})
	ep.Negative().SetOffset(-2)
	ep.Negative().BucketCounts().FromRaw([]uint64{3})
	translated, _, err := FromMetrics(context.Background(), md, Settings{AddMetricSuffixes: true})
	if err != nil {
		t.Fatal(err)
	}

	app := NewAppender(context.Background(), nil)
	counter := storage.AOptions{MetricFamilyName: "http_requests", Metadata: metadata.Metadata{Type: model.MetricTypeCounter, Help: "Requests."}}
	histo := storage.AOptions{MetricFamilyName: "rtt_seconds", Metadata: metadata.Metadata{Type: model.MetricTypeHistogram, Unit: "seconds"}}
	withEx := counter
	withEx.Exemplars = []exemplar.Exemplar{{Labels: labels.FromStrings("span_id", "00f067aa0ba902b7", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), Value: 1, Ts: ms0, HasTs: true}}
	for _, a := range []struct {
		ls   []string
		v    float64
		opts storage.AOptions
	}{
		{[]string{"__name__", "http_requests_total", "code", "200", "instance", "h:9100", "job", "node"}, 7, withEx},
		{[]string{"__name__", "http_requests_total", "code", "404", "instance", "h:9100", "job", "node"}, 1, counter},
		{[]string{"__name__", "rtt_seconds_bucket", "instance", "h:9100", "job", "node", "le", "0.5"}, 2, histo},
		{[]string{"__name__", "rtt_seconds_bucket", "instance", "h:9100", "job", "node", "le", "+Inf"}, 3, histo},
		{[]string{"__name__", "rtt_seconds_count", "instance", "h:9100", "job", "node"}, 3, histo},
		{[]string{"__name__", "rtt_seconds_sum", "instance", "h:9100", "job", "node"}, 1.25, histo},
		{[]string{"__name__", "up", "instance", "h:9100", "job", "node"}, 1, storage.AOptions{}},
		{[]string{"__name__", "gone", "instance", "h:9100", "job", "node"}, stale, storage.AOptions{}},
	} {
		if _, err := app.Append(0, labels.FromStrings(a.ls...), 0, ms0, a.v, nil, nil, a.opts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.Append(0, labels.FromStrings("__name__", "native", "job", "node"), 0, ms0, 0, testHistogram(), nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	scraped := app.Take()

	return []seed{
		{"translated", translated.Bytes},
		{"scraped", scraped.Bytes},
		{"no_metadata", body(t,
			series("__name__", "node_cpu_seconds_total", "cpu", "0", "instance", "h:9100", "job", "node", "mode", "idle").sample(100.5, ms0).sample(115.5, ms1),
			series("__name__", "node_load1", "instance", "h:9100", "job", "node").sample(0.7, ms0),
			series("__name__", "target_info", "instance", "h:9100", "job", "node", "os", "linux").sample(1, ms0),
		)},
		{"native", body(t,
			series("__name__", "nh", "job", "j").hist(intHist(3, ms0, 7, 1, 10.5, []prompb.BucketSpan{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, []int64{1, 2, -1})),
			series("__name__", "cb", "job", "j").hist(prompb.Histogram{
				Schema: histogramCustomSchema, Timestamp: ms0, Sum: 2,
				Count:         &prompb.Histogram_CountFloat{CountFloat: 2},
				ZeroCount:     &prompb.Histogram_ZeroCountFloat{},
				PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 1}}, PositiveCounts: []float64{2},
				CustomValues: []float64{1, 2},
			}),
			meta{promrw.MetadataHistogram, "nh", "", ""},
		)},
	}
}

// TestToMetricsGolden converts the seed bodies and compares with testdata/<seed>.txt: a readable
// record of the conversion of typical bodies. go test -run Golden -update rewrites them.
func TestToMetricsGolden(t *testing.T) {
	for _, s := range seeds(t) {
		t.Run(s.name, func(t *testing.T) {
			out, dropped := convert(t, s.body)
			got := fmt.Sprintf("# %d bytes, %d samples dropped\n%s", len(s.body), dropped, out)
			path := filepath.Join("testdata", s.name+".txt")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			diff(t, path, got, string(want))
		})
	}
}

// FuzzToMetrics: never panic; an error wraps promrw.ErrMalformed and comes with empty metrics;
// otherwise the conversion is deterministic, its result encodes as OTLP, and every sample and
// native histogram became at most one data point or was counted as dropped.
func FuzzToMetrics(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s.body)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		md, dropped, err := ToMetricsDropped(b)
		if err != nil {
			if !errors.Is(err, promrw.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if md.ResourceMetrics().Len() != 0 {
				t.Fatal("metrics returned with an error")
			}
			return
		}
		sc := promrw.Scanner{Trusted: true}
		samples, hists, _, err := sc.CountV1(b)
		if err != nil {
			t.Fatalf("converted a body the trusted scan refuses: %v", err)
		}
		if n := md.DataPointCount(); dropped < 0 || n+dropped > samples+hists {
			t.Fatalf("%d points and %d dropped from %d samples and %d histograms", n, dropped, samples, hists)
		}
		first := dump(md)
		again, _, _ := ToMetricsDropped(b)
		if second := dump(again); second != first {
			t.Fatalf("two conversions differ:\n%s\n%s", first, second)
		}
		enc, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		if err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		back, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(enc)
		if err != nil || back.DataPointCount() != md.DataPointCount() {
			t.Fatalf("result does not decode back: %v", err)
		}
	})
}
