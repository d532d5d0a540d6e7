package promconv

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/promrw"
)

const (
	ms0 = int64(1_700_000_000_000) // t0 in milliseconds
	ms1 = ms0 + 15_000

	defScope = "  scope github.com/vigilhq/vigil/internal/promconv\n"
)

var stale = math.Float64frombits(staleNaN)

// TestToMetrics converts hand-made bodies: each case gives the body's series and metadata, the
// expected dump and the number of samples dropped.
func TestToMetrics(t *testing.T) {
	f := func(name string, items []any, want string, wantDropped int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, dropped := convert(t, body(t, items...))
			diff(t, name, got, want)
			if dropped != wantDropped {
				t.Errorf("dropped %d samples, want %d", dropped, wantDropped)
			}
		})
	}

	f("empty body", nil, "", 0)
	f("metadata only", []any{meta{promrw.MetadataCounter, "x_total", "X.", ""}}, "", 0)

	// Without metadata, `_total` means a counter and everything else a gauge: histogram series
	// are not guessed from their names.
	f("no metadata", []any{
		series("__name__", "http_requests_total", "code", "200", "instance", "h:1", "job", "api").sample(10, ms0),
		series("__name__", "latency_bucket", "instance", "h:1", "job", "api", "le", "0.5").sample(3, ms0),
		series("__name__", "latency_count", "instance", "h:1", "job", "api").sample(4, ms0),
		series("__name__", "temperature", "instance", "h:1", "job", "api").sample(21.5, ms0),
		series("__name__", "_total", "instance", "h:1", "job", "api").sample(1, ms0),
	}, `resource {service.name=api, service.instance.id=h:1}
`+defScope+`    sum http_requests monotonic cumulative {prometheus.type=unknown}
       {code=200} t=1700000000000000000 v=10
    gauge latency_bucket {prometheus.type=unknown}
       {le=0.5} t=1700000000000000000 v=3
    gauge latency_count {prometheus.type=unknown}
       t=1700000000000000000 v=4
    gauge temperature {prometheus.type=unknown}
       t=1700000000000000000 v=21.5
    gauge _total {prometheus.type=unknown}
       t=1700000000000000000 v=1
`, 0)

	// target_info gives its labels to the resource of the same job and instance, wherever it
	// is in the body, and is not a metric; one without metrics leaves no resource.
	f("target_info", []any{
		series("__name__", "up", "instance", "h:1", "job", "prod/api").sample(1, ms0),
		series("__name__", "target_info", "env", "prod", "host_name", "n1", "instance", "h:1", "job", "prod/api").sample(1, ms0),
		series("__name__", "target_info", "env", "dev", "instance", "h:2", "job", "lonely").sample(1, ms0),
		series("__name__", "up", "instance", "h:3", "job", "plain").sample(0, ms0),
		series("__name__", "up").sample(1, ms0),
		series("__name__", "target_info", "zone", "z").sample(1, ms0),
		series("__name__", "up", "job", "/odd/").sample(1, ms0),
	}, `resource {service.name=api, service.namespace=prod, service.instance.id=h:1, env=prod, host_name=n1}
`+defScope+`    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=1
resource {service.name=plain, service.instance.id=h:3}
`+defScope+`    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=0
resource {zone=z}
`+defScope+`    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=1
resource {service.name=/odd/}
`+defScope+`    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=1
`, 0)

	f("staleness", []any{
		meta{promrw.MetadataCounter, "c", "", ""},
		meta{promrw.MetadataHistogram, "h", "", ""},
		meta{promrw.MetadataSummary, "s", "", ""},
		series("__name__", "c_total").sample(5, ms0).sample(stale, ms1),
		series("__name__", "g").sample(stale, ms0),
		series("__name__", "h_bucket", "le", "+Inf").sample(stale, ms0),
		series("__name__", "h_count").sample(stale, ms0),
		series("__name__", "h_sum").sample(stale, ms0),
		series("__name__", "s", "quantile", "0.5").sample(stale, ms0),
		series("__name__", "s_count").sample(stale, ms0),
		series("__name__", "nh").hist(prompb.Histogram{Sum: stale, Count: &prompb.Histogram_CountInt{CountInt: staleNaN}, Timestamp: ms0}),
	}, `resource
`+defScope+`    sum c monotonic cumulative {prometheus.type=counter}
       t=1700000000000000000 v=5
       t=1700000015000000000 v=StaleNaN no-recorded-value
    gauge g {prometheus.type=unknown}
       t=1700000000000000000 v=StaleNaN no-recorded-value
    histogram h cumulative {prometheus.type=histogram}
       t=1700000000000000000 count=0 bounds=[] counts=[] no-recorded-value
    summary s {prometheus.type=summary}
       t=1700000000000000000 count=0 sum=0 q=[] no-recorded-value
    exponentialhistogram nh cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=0 scale=0 zero=0@0 pos=0:[] neg=0:[] no-recorded-value
`, 0)

	// trace_id and span_id become ids when they are hex of the right length, attributes
	// otherwise; an exemplar goes to the first point at or after its time.
	f("exemplars", []any{
		series("__name__", "requests_total", "job", "api").
			sample(1, ms0).sample(2, ms1).
			exemplar(1, ms0-5, "span_id", "00f067aa0ba902b7", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", "user", "u1").
			exemplar(1, ms0+5, "span_id", "short", "trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736").
			exemplar(2, ms1+5, "trace_id", "zz"),
		series("__name__", "temp").sample(3, ms0).exemplar(3, ms0),
	}, `resource {service.name=api}
`+defScope+`    sum requests monotonic cumulative {prometheus.type=unknown}
       t=1700000000000000000 v=1
        exemplar t=1699999999995000000 v=1 trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 {user=u1}
       t=1700000015000000000 v=2
        exemplar t=1700000000005000000 v=1 trace=4bf92f3577b34da6a3ce929d0e0e4736 {span_id=short}
        exemplar t=1700000015005000000 v=2 {trace_id=zz}
resource
`+defScope+`    gauge temp {prometheus.type=unknown}
       t=1700000000000000000 v=3
        exemplar t=1700000000000000000 v=3
`, 0)

	// Every metadata type, with help and unit; families named with and without `_total`.
	f("mixed families", []any{
		series("__name__", "a_total", "job", "j").sample(1, ms0),
		series("__name__", "b_total", "job", "j").sample(2, ms0),
		series("__name__", "mem_bytes", "job", "j").sample(3, ms0),
		series("__name__", "build_info", "job", "j", "version", "1.2").sample(1, ms0),
		series("__name__", "feature", "feature", "x", "job", "j").sample(0, ms0),
		series("__name__", "misc", "job", "j").sample(4, ms0),
		series("__name__", "gh_bucket", "job", "j", "le", "1").sample(1, ms0),
		series("__name__", "gh_gcount", "job", "j").sample(1, ms0),
		series("__name__", "gh_gsum", "job", "j").sample(1, ms0),
		series("__name__", "rate", "job", "j").sample(0.5, ms0),
		series("__name__", "rtt_seconds", "job", "j", "quantile", "0.9").sample(0.2, ms0),
		series("__name__", "rtt_seconds_count", "job", "j").sample(9, ms0),
		series("__name__", "rtt_seconds_sum", "job", "j").sample(1.5, ms0),
		series("__name__", "up", "job", "j").sample(1, ms0),
		meta{promrw.MetadataCounter, "a", "A counter, OpenMetrics style.", "requests"},
		meta{promrw.MetadataCounter, "b_total", "A counter, text format style.", ""},
		meta{promrw.MetadataGauge, "mem_bytes", "Memory.", "bytes"},
		meta{promrw.MetadataInfo, "build", "Build.", ""},
		meta{promrw.MetadataStateset, "feature", "", ""},
		meta{promrw.MetadataUnknown, "misc", "Unknown.", ""},
		meta{promrw.MetadataGaugeHistogram, "gh", "", ""},
		meta{promrw.MetadataGauge, "rate", "", "ratio"},
		meta{promrw.MetadataSummary, "rtt_seconds", "Round trips.", "seconds"},
	}, `resource {service.name=j}
`+defScope+`    sum a monotonic cumulative unit="requests" desc="A counter, OpenMetrics style." {prometheus.type=counter}
       t=1700000000000000000 v=1
    sum b monotonic cumulative desc="A counter, text format style." {prometheus.type=counter}
       t=1700000000000000000 v=2
    gauge mem_bytes unit="By" desc="Memory." {prometheus.type=gauge}
       t=1700000000000000000 v=3
    sum build_info cumulative desc="Build." {prometheus.type=info}
       {version=1.2} t=1700000000000000000 v=1
    sum feature cumulative {prometheus.type=stateset}
       {feature=x} t=1700000000000000000 v=0
    gauge misc desc="Unknown." {prometheus.type=unknown}
       t=1700000000000000000 v=4
    gauge rate unit="1" {prometheus.type=gauge}
       t=1700000000000000000 v=0.5
    summary rtt_seconds unit="s" desc="Round trips." {prometheus.type=summary}
       t=1700000000000000000 count=9 sum=1.5 q=[0.9:0.2]
    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=1
`, 3)

	// Buckets arrive in label order ("+Inf" < "0.25" < "10" < "2.5"); series of one point
	// may be interleaved with other points' and metrics'; cumulative counts become per bucket.
	f("classic histogram", []any{
		meta{promrw.MetadataHistogram, "lat_seconds", "Latency.", "seconds"},
		series("__name__", "lat_seconds_bucket", "le", "+Inf", "path", "/a").sample(10, ms0).sample(12, ms1),
		series("__name__", "lat_seconds_bucket", "le", "0.25", "path", "/a").sample(2, ms0).sample(2, ms1),
		series("__name__", "other").sample(1, ms0),
		series("__name__", "lat_seconds_bucket", "le", "+Inf", "path", "/b").sample(1, ms0),
		series("__name__", "lat_seconds_bucket", "le", "10", "path", "/a").sample(9, ms0).sample(11, ms1).
			exemplar(7.5, ms0, "trace_id", "0102030405060708090a0b0c0d0e0f10"),
		series("__name__", "lat_seconds_bucket", "le", "2.5", "path", "/a").sample(5, ms0).sample(6, ms1),
		series("__name__", "lat_seconds_count", "path", "/a").sample(10, ms0).sample(12, ms1),
		series("__name__", "lat_seconds_count", "path", "/b").sample(1, ms0),
		series("__name__", "lat_seconds_sum", "path", "/a").sample(31.5, ms0).sample(40, ms1),
	}, `resource
`+defScope+`    histogram lat_seconds cumulative unit="s" desc="Latency." {prometheus.type=histogram}
       {path=/a} t=1700000000000000000 count=10 sum=31.5 bounds=[0.25 2.5 10] counts=[2 3 4 1]
        exemplar t=1700000000000000000 v=7.5 trace=0102030405060708090a0b0c0d0e0f10
       {path=/a} t=1700000015000000000 count=12 sum=40 bounds=[0.25 2.5 10] counts=[2 4 5 1]
       {path=/b} t=1700000000000000000 count=1 bounds=[] counts=[1]
    gauge other {prometheus.type=unknown}
       t=1700000000000000000 v=1
`, 0)

	// The specification drops histograms and summaries without _count; a summary without
	// _sum has a sum of 0. Buckets and quantiles without a usable label are dropped.
	f("incomplete histograms and summaries", []any{
		meta{promrw.MetadataHistogram, "h", "", ""},
		meta{promrw.MetadataSummary, "s", "", ""},
		series("__name__", "h_bucket", "le", "1", "x", "nocount").sample(1, ms0),
		series("__name__", "h_sum", "x", "nocount").sample(1, ms0),
		series("__name__", "h_bucket", "le", "1", "x", "ok").sample(1, ms0),
		series("__name__", "h_bucket", "le", "NaN", "x", "ok").sample(1, ms0),
		series("__name__", "h_bucket", "x", "ok").sample(1, ms0),
		series("__name__", "h_count", "x", "ok").sample(2, ms0),
		series("__name__", "s", "quantile", "0.5", "x", "nocount").sample(1, ms0),
		series("__name__", "s", "quantile", "half", "x", "ok").sample(1, ms0),
		series("__name__", "s_count", "x", "ok").sample(3, ms0),
		series("__name__", "only_count_count").sample(3, ms0),
		meta{promrw.MetadataSummary, "only_count", "", ""},
		meta{promrw.MetadataHistogram, "nothing", "", ""},
		series("__name__", "nothing_bucket", "le", "1").sample(1, ms0),
	}, `resource
`+defScope+`    histogram h cumulative {prometheus.type=histogram}
       {x=ok} t=1700000000000000000 count=2 bounds=[1] counts=[1 1]
    summary s {prometheus.type=summary}
       {x=ok} t=1700000000000000000 count=3 sum=0 q=[]
    summary only_count {prometheus.type=summary}
       t=1700000000000000000 count=3 sum=0 q=[]
`, 7)

	// Resources, metrics and points keep the order in which they first appear.
	f("series order", []any{
		series("__name__", "b", "instance", "2", "job", "j").sample(1, ms0),
		series("__name__", "a", "instance", "1", "job", "j").sample(2, ms0),
		series("__name__", "b", "instance", "1", "job", "j", "k", "v").sample(3, ms0),
		series("__name__", "a", "instance", "2", "job", "j").sample(4, ms0),
		series("__name__", "b", "instance", "1", "job", "j").sample(5, ms0),
		series("__name__", "c_total", "instance", "2", "job", "j").sample(6, ms0),
		series("__name__", "b", "instance", "2", "job", "j", "k", "w").sample(7, ms0),
	}, `resource {service.name=j, service.instance.id=2}
`+defScope+`    gauge b {prometheus.type=unknown}
       t=1700000000000000000 v=1
       {k=w} t=1700000000000000000 v=7
    gauge a {prometheus.type=unknown}
       t=1700000000000000000 v=4
    sum c monotonic cumulative {prometheus.type=unknown}
       t=1700000000000000000 v=6
resource {service.name=j, service.instance.id=1}
`+defScope+`    gauge a {prometheus.type=unknown}
       t=1700000000000000000 v=2
    gauge b {prometheus.type=unknown}
       {k=v} t=1700000000000000000 v=3
       t=1700000000000000000 v=5
`, 0)

	// otel_scope_name and otel_scope_version choose the scope; otel_scope_info gives it
	// attributes and is not a metric.
	f("scopes", []any{
		series("__name__", "a", "job", "j", "otel_scope_name", "lib", "otel_scope_version", "1.0").sample(1, ms0),
		series("__name__", "a", "job", "j").sample(2, ms0),
		series("__name__", "otel_scope_info", "job", "j", "mascot", "bear", "otel_scope_name", "lib", "otel_scope_version", "1.0").sample(1, ms0),
		series("__name__", "b", "job", "j", "otel_scope_name", "lib", "otel_scope_version", "2.0").sample(3, ms0),
	}, `resource {service.name=j}
  scope lib 1.0 {mascot=bear}
    gauge a {prometheus.type=unknown}
       t=1700000000000000000 v=1
`+defScope+`    gauge a {prometheus.type=unknown}
       t=1700000000000000000 v=2
  scope lib 2.0
    gauge b {prometheus.type=unknown}
       t=1700000000000000000 v=3
`, 0)

	f("odd series", []any{
		series("job", "nameless").sample(1, ms0).sample(2, ms1),
		series("__name__", "no_samples").exemplar(1, ms0),
		series("__name__", "pre_epoch").sample(1, -5),
	}, `resource
`+defScope+`    gauge pre_epoch {prometheus.type=unknown}
       t=0 v=1
`, 2)
}

func intHist(schema int32, t int64, count, zero uint64, sum float64, pos []prompb.BucketSpan, deltas []int64) prompb.Histogram {
	return prompb.Histogram{
		Schema: schema, Timestamp: t, Sum: sum, ZeroThreshold: 1e-128,
		Count:         &prompb.Histogram_CountInt{CountInt: count},
		ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: zero},
		PositiveSpans: pos, PositiveDeltas: deltas,
	}
}

func TestToMetricsNativeHistograms(t *testing.T) {
	f := func(name string, items []any, want string, wantDropped int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, dropped := convert(t, body(t, items...))
			diff(t, name, got, want)
			if dropped != wantDropped {
				t.Errorf("dropped %d samples, want %d", dropped, wantDropped)
			}
		})
	}
	const res = "resource {service.name=j}\n" + defScope

	// Spans [0,2) and [5,6) with deltas: counts 1, 3, then 2 after a gap of three buckets.
	f("integer", []any{
		series("__name__", "nh", "job", "j", "k", "v").
			hist(intHist(3, ms0, 7, 1, 10.5, []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}}, []int64{1, 2, -1})).
			exemplar(1.5, ms0, "trace_id", "0102030405060708090a0b0c0d0e0f10"),
		meta{promrw.MetadataHistogram, "nh", "Native.", "seconds"},
	}, res+`    exponentialhistogram nh cumulative unit="s" desc="Native." {prometheus.type=histogram}
       {k=v} t=1700000000000000000 count=7 sum=10.5 scale=3 zero=1@1e-128 pos=-1:[1 3 0 0 0 2] neg=0:[]
        exemplar t=1700000000000000000 v=1.5 trace=0102030405060708090a0b0c0d0e0f10
`, 0)

	f("float with negative buckets", []any{
		series("__name__", "fh", "job", "j").hist(prompb.Histogram{
			Schema: 0, Timestamp: ms0, Sum: -3, ZeroThreshold: 0.001,
			Count:         &prompb.Histogram_CountFloat{CountFloat: 6.0},
			ZeroCount:     &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 1},
			NegativeSpans: []prompb.BucketSpan{{Offset: -2, Length: 3}}, NegativeCounts: []float64{2, 0, 3},
		}),
	}, res+`    exponentialhistogram fh cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=6 sum=-3 scale=0 zero=1@0.001 pos=0:[] neg=-3:[2 0 3]
`, 0)

	// Custom buckets (NHCB) are a classic histogram: custom values are the bounds.
	f("custom buckets", []any{
		series("__name__", "cb", "job", "j").hist(prompb.Histogram{
			Schema: histogramCustomSchema, Timestamp: ms0, Sum: 12,
			Count:         &prompb.Histogram_CountInt{CountInt: 6},
			ZeroCount:     &prompb.Histogram_ZeroCountInt{},
			PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}}, PositiveDeltas: []int64{1, 1, 1},
			CustomValues: []float64{0.5, 1, 5},
		}),
	}, res+`    histogram cb cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=6 sum=12 bounds=[0.5 1 5] counts=[1 2 0 3]
`, 0)

	// Schemas above 8 are reduced to 8, as Prometheus does: buckets 1 and 2 of schema 9 are
	// bucket 1 of schema 8.
	f("reserved schema", []any{
		series("__name__", "hi", "job", "j").hist(intHist(9, ms0, 3, 0, 3, []prompb.BucketSpan{{Offset: 1, Length: 2}}, []int64{1, 1})),
	}, res+`    exponentialhistogram hi cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=3 sum=3 scale=8 zero=0@1e-128 pos=0:[3] neg=0:[]
`, 0)

	// Two buckets 1000 indexes apart would be 1001 dense buckets: the resolution is reduced
	// until they are no more than 160 apart (schema 0 → -3: indexes 1 and 1001 → 1 and 126).
	f("sparse buckets", []any{
		series("__name__", "sparse", "job", "j").hist(intHist(0, ms0, 2, 0, 1, []prompb.BucketSpan{{Offset: 1, Length: 1}, {Offset: 999, Length: 1}}, []int64{1, 0})),
	}, res+`    exponentialhistogram sparse cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=2 sum=1 scale=-3 zero=0@1e-128 pos=0:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] neg=0:[]
`, 0)

	f("invalid and dropped", []any{
		meta{promrw.MetadataGaugeHistogram, "gh", "", ""},
		series("__name__", "gh").hist(intHist(0, ms0, 1, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 1}}, []int64{1})),
		// Spans asking for more buckets than there are.
		series("__name__", "bad").hist(intHist(0, ms0, 1, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 5}}, []int64{1})),
		// Count not matching the buckets.
		series("__name__", "bad").hist(intHist(0, ms0, 9, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 1}}, []int64{1})),
		// An unknown schema.
		series("__name__", "bad").hist(intHist(60, ms0, 1, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 1}}, []int64{1})),
		// Buckets beyond float64's range even at the lowest schema.
		series("__name__", "bad").hist(intHist(-4, ms0, 2, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 1}, {Offset: 1 << 30, Length: 1}}, []int64{1, 0})),
		series("__name__", "good").hist(intHist(0, ms0, 1, 0, 1, []prompb.BucketSpan{{Offset: 0, Length: 1}}, []int64{1})),
	}, `resource
`+defScope+`    exponentialhistogram good cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=1 sum=1 scale=0 zero=0@1e-128 pos=-1:[1] neg=0:[]
`, 5)

	// A series may carry both float samples and native histograms (1.0 allows it).
	f("floats and histograms in one series", []any{
		series("__name__", "both", "job", "j").sample(1, ms0).hist(intHist(0, ms1, 1, 1, 0, nil, nil)),
	}, res+`    gauge both {prometheus.type=unknown}
       t=1700000000000000000 v=1
    exponentialhistogram both cumulative {prometheus.type=unknown}
       t=1700000015000000000 count=1 sum=0 scale=0 zero=1@1e-128 pos=0:[] neg=0:[]
`, 0)
}

const histogramCustomSchema = -53

func TestOtelUnit(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := otelUnit(in); got != want {
			t.Errorf("otelUnit(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("seconds", "s")
	f("milliseconds", "ms")
	f("bytes", "By")
	f("ratio", "1")
	f("percent", "%")
	f("celsius", "Cel")
	f("bytes_per_second", "By/s")
	f("requests_per_minute", "requests/min")
	f("per_second", "1/s")
	f("packets", "packets")
}

func TestNanos(t *testing.T) {
	f := func(ms int64, want uint64) {
		t.Helper()
		if got := uint64(nanos(ms)); got != want {
			t.Errorf("nanos(%d) = %d, want %d", ms, got, want)
		}
	}
	f(0, 0)
	f(-1, 0)
	f(1, 1_000_000)
	f(ms0, 1_700_000_000_000_000_000)
	f(math.MaxInt64, math.MaxUint64)
}

func TestToCount(t *testing.T) {
	f := func(v float64, want uint64) {
		t.Helper()
		if got := toCount(v); got != want {
			t.Errorf("toCount(%v) = %d, want %d", v, got, want)
		}
	}
	f(0, 0)
	f(3, 3)
	f(2.5, 3)
	f(2.4, 2)
	f(-1, 0)
	f(math.NaN(), 0)
	f(math.Inf(1), math.MaxUint64)
	f(1<<53, 1<<53)
}

// TestToMetricsMalformed: a body that cannot be parsed is an error that wraps
// promrw.ErrMalformed and says where, and the result is empty but usable.
func TestToMetricsMalformed(t *testing.T) {
	good := body(t, series("__name__", "a").sample(1, ms0).exemplar(1, ms0, "a", "b"), meta{promrw.MetadataGauge, "a", "", ""})
	f := func(name string, b []byte, wantMsg string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			md, _, err := ToMetricsDropped(b)
			if err == nil {
				t.Fatalf("no error; got\n%s", dump(md))
			}
			if !errors.Is(err, promrw.ErrMalformed) {
				t.Errorf("error does not wrap promrw.ErrMalformed: %v", err)
			}
			if !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("error %q does not say %q", err, wantMsg)
			}
			if md.ResourceMetrics().Len() != 0 {
				t.Errorf("got metrics with the error")
			}
		})
	}
	f("truncated", good[:len(good)-3], "request field at byte")
	f("truncated series", good[:5], "request field at byte 0")
	// Sample {value = 1} as a varint.
	f("sample wire type", []byte{0x0a, 0x04, 0x12, 0x02, 0x08, 0x01}, "series 0 at byte 0: sample 0: field 1 has wire type 0")
	// Label {name = 1} as a varint.
	f("label wire type", []byte{0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01}, "label 0: field 1 has wire type 0")
	// Exemplar {value = 2} as a varint.
	f("exemplar wire type", []byte{0x0a, 0x04, 0x1a, 0x02, 0x10, 0x01}, "exemplar 0: field 2 has wire type 0")
	// Histogram with a truncated field.
	f("histogram", append([]byte{0x0a, 0x12, 0x0a, 0x0d, 0x0a, 0x08}, "__name__\x12\x01x\x22\x01\x08"...), "series 0 at byte 0: histogram")
	// Metadata {type = 1} as bytes.
	f("metadata wire type", []byte{0x1a, 0x03, 0x0a, 0x01, 0x00}, "metadata at byte 0: type has wire type 2")
	// A remote write 2.0 body (symbols = 4).
	f("2.0 body", []byte{0x22, 0x00}, "remote write 2.0")

	// Parsing allocates nothing it keeps: a good body converts after all these.
	if _, err := ToMetrics(good); err != nil {
		t.Fatal(err)
	}
}

// TestToMetricsSharesOneCopy: strings in the result survive changes to the body, since they
// are substrings of ToMetrics's own copy.
func TestToMetricsSharesOneCopy(t *testing.T) {
	b := body(t, series("__name__", "a", "k", "v").sample(1, ms0))
	md, err := ToMetrics(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	v, _ := m.Gauge().DataPoints().At(0).Attributes().Get("k")
	if m.Name() != "a" || v.Str() != "v" {
		t.Fatalf("result changed with the body: %q %q", m.Name(), v.Str())
	}
}

// TestDataPointCount: DataPointCount is what a batch converted from remote write counts; for
// float series without histograms it is the number of samples.
func TestDataPointCount(t *testing.T) {
	b := body(t,
		series("__name__", "a").sample(1, ms0).sample(2, ms1),
		series("__name__", "b_total").sample(1, ms0),
	)
	md, err := ToMetrics(b)
	if err != nil {
		t.Fatal(err)
	}
	if n := md.DataPointCount(); n != 3 {
		t.Fatalf("DataPointCount %d, want 3", n)
	}
	_ = pmetric.NewMetrics()
}
