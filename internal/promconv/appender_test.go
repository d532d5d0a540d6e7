package promconv

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/promrw"
)

// decode parses a body with the upstream protobuf code, independent of promrw.
func decode(t *testing.T, b []byte) prompb.WriteRequest {
	t.Helper()
	var req prompb.WriteRequest
	if err := req.Unmarshal(b); err != nil {
		t.Fatalf("body does not decode: %v", err)
	}
	return req
}

func testHistogram() *histogram.Histogram {
	return &histogram.Histogram{
		Schema: 1, Count: 6, Sum: 7.5, ZeroThreshold: 1e-128, ZeroCount: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 2, Length: 1}}, PositiveBuckets: []int64{1, 1, -1},
		NegativeSpans: []histogram.Span{{Offset: 1, Length: 1}}, NegativeBuckets: []int64{1},
	}
}

// TestAppenderScrape appends what a scrape appends (a counter family of two series, a classic
// histogram family, native histograms, a series without metadata, exemplars with and without
// their own time) and checks the committed body field by field with the upstream decoder:
// one TimeSeries per append, in order, and metadata once per family.
func TestAppenderScrape(t *testing.T) {
	var (
		calls int
		got   Body
	)
	app := Appendable{Commit: func(_ context.Context, b Body) error {
		calls++
		got = b
		return nil
	}}.AppenderV2(context.Background())

	counter := storage.AOptions{MetricFamilyName: "http_requests", Metadata: metadata.Metadata{Type: model.MetricTypeCounter, Help: "Requests."}}
	hist := storage.AOptions{MetricFamilyName: "lat_seconds", Metadata: metadata.Metadata{Type: model.MetricTypeHistogram, Help: "Latency.", Unit: "seconds"}}
	withEx := counter
	withEx.Exemplars = []exemplar.Exemplar{
		{Labels: labels.FromStrings("trace_id", "abc"), Value: 1, Ts: ms0 - 10, HasTs: true},
		{Labels: labels.FromStrings("span_id", "def"), Value: 2},
	}
	appends := []struct {
		ls   labels.Labels
		v    float64
		h    *histogram.Histogram
		fh   *histogram.FloatHistogram
		opts storage.AOptions
	}{
		{ls: labels.FromStrings("__name__", "http_requests_total", "code", "200", "job", "api"), v: 10, opts: withEx},
		{ls: labels.FromStrings("__name__", "http_requests_total", "code", "500", "job", "api"), v: 1, opts: counter},
		{ls: labels.FromStrings("__name__", "lat_seconds_bucket", "le", "1", "job", "api"), v: 3, opts: hist},
		{ls: labels.FromStrings("__name__", "lat_seconds_bucket", "le", "+Inf", "job", "api"), v: 4, opts: hist},
		{ls: labels.FromStrings("__name__", "lat_seconds_count", "job", "api"), v: 4, opts: hist},
		{ls: labels.FromStrings("__name__", "lat_seconds_sum", "job", "api"), v: 2.5, opts: hist},
		{ls: labels.FromStrings("__name__", "up", "job", "api"), v: 1},
		{ls: labels.FromStrings("__name__", "native", "job", "api"), h: testHistogram()},
		{ls: labels.FromStrings("__name__", "native_float", "job", "api"), fh: testHistogram().ToFloat(nil)},
	}
	for _, a := range appends {
		ref, err := app.Append(0, a.ls, 0, ms0, a.v, a.h, a.fh, a.opts)
		if err != nil || ref == 0 {
			t.Fatalf("Append(%s) = %d, %v", a.ls, ref, err)
		}
	}
	if calls != 0 {
		t.Fatal("commit called before Commit")
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("commit called %d times, want 1", calls)
	}
	if want := (promrw.Counts{Series: 9, Samples: 7, Histograms: 2, Exemplars: 2}); got.Counts != want || got.Items() != 9 {
		t.Errorf("counts %+v (items %d), want %+v", got.Counts, got.Items(), want)
	}

	req := decode(t, got.Bytes)
	if len(req.Timeseries) != len(appends) {
		t.Fatalf("%d series, want %d", len(req.Timeseries), len(appends))
	}
	for i, a := range appends {
		ts := req.Timeseries[i]
		if want := prompb.FromLabels(a.ls, nil); !reflect.DeepEqual(ts.Labels, want) {
			t.Errorf("series %d labels %v, want %v", i, ts.Labels, want)
		}
		switch {
		case a.h != nil:
			want := prompb.FromIntHistogram(ms0, a.h)
			if len(ts.Histograms) != 1 || !reflect.DeepEqual(ts.Histograms[0].ToIntHistogram(), want.ToIntHistogram()) || ts.Histograms[0].Timestamp != ms0 {
				t.Errorf("series %d histograms %+v, want %+v", i, ts.Histograms, want)
			}
		case a.fh != nil:
			want := prompb.FromFloatHistogram(ms0, a.fh)
			if len(ts.Histograms) != 1 || !ts.Histograms[0].IsFloatHistogram() || !reflect.DeepEqual(ts.Histograms[0].ToFloatHistogram(), want.ToFloatHistogram()) {
				t.Errorf("series %d histograms %+v, want %+v", i, ts.Histograms, want)
			}
		default:
			if want := []prompb.Sample{{Value: a.v, Timestamp: ms0}}; !reflect.DeepEqual(ts.Samples, want) || len(ts.Histograms) != 0 {
				t.Errorf("series %d samples %v, want %v", i, ts.Samples, want)
			}
		}
	}
	// An exemplar without a time of its own takes the sample's.
	wantEx := []prompb.Exemplar{
		{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: ms0 - 10},
		{Labels: []prompb.Label{{Name: "span_id", Value: "def"}}, Value: 2, Timestamp: ms0},
	}
	if !reflect.DeepEqual(req.Timeseries[0].Exemplars, wantEx) {
		t.Errorf("exemplars %v, want %v", req.Timeseries[0].Exemplars, wantEx)
	}
	wantMeta := []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests", Help: "Requests."},
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat_seconds", Help: "Latency.", Unit: "seconds"},
	}
	if !reflect.DeepEqual(req.Metadata, wantMeta) {
		t.Errorf("metadata %+v, want %+v", req.Metadata, wantMeta)
	}

	// The body converts: the families become one Sum and one Histogram.
	out, dropped := convert(t, got.Bytes)
	diff(t, "converted", out, `resource {service.name=api}
`+defScope+`    sum http_requests monotonic cumulative desc="Requests." {prometheus.type=counter}
       {code=200} t=1700000000000000000 v=10
        exemplar t=1699999999990000000 v=1 {trace_id=abc}
        exemplar t=1700000000000000000 v=2 {span_id=def}
       {code=500} t=1700000000000000000 v=1
    histogram lat_seconds cumulative unit="s" desc="Latency." {prometheus.type=histogram}
       t=1700000000000000000 count=4 sum=2.5 bounds=[1] counts=[3 1]
    gauge up {prometheus.type=unknown}
       t=1700000000000000000 v=1
    exponentialhistogram native cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=6 sum=7.5 scale=1 zero=1@1e-128 pos=-1:[1 2 0 0 1] neg=0:[1]
    exponentialhistogram native_float cumulative {prometheus.type=unknown}
       t=1700000000000000000 count=6 sum=7.5 scale=1 zero=1@1e-128 pos=-1:[1 2 0 0 1] neg=0:[1]
`)
	if dropped != 0 {
		t.Errorf("dropped %d", dropped)
	}
}

// TestAppenderFamilyNameReused: the scrape loop passes the family name as a string over its
// parse buffer, which it then reuses; the appender must not keep it.
func TestAppenderFamilyNameReused(t *testing.T) {
	app := NewAppender(context.Background(), nil)
	gauge := metadata.Metadata{Type: model.MetricTypeGauge}
	buf := []byte("fam_a")
	yolo := unsafe.String(&buf[0], len(buf))
	if _, err := app.Append(0, labels.FromStrings("__name__", "fam_a"), 0, ms0, 1, nil, nil, storage.AOptions{MetricFamilyName: yolo, Metadata: gauge}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "fam_b")
	if _, err := app.Append(0, labels.FromStrings("__name__", "fam_b"), 0, ms0, 1, nil, nil, storage.AOptions{MetricFamilyName: "fam_b", Metadata: gauge}); err != nil {
		t.Fatal(err)
	}
	req := decode(t, app.Take().Bytes)
	if len(req.Metadata) != 2 || req.Metadata[0].MetricFamilyName != "fam_a" || req.Metadata[1].MetricFamilyName != "fam_b" {
		t.Fatalf("metadata %+v, want fam_a and fam_b", req.Metadata)
	}
}

// TestAppenderScrapeCacheFamilyName: the scrape loop names the families of its own series with
// its cache key, the name plus 0xff; the metadata must carry the name alone (valid UTF-8).
func TestAppenderScrapeCacheFamilyName(t *testing.T) {
	app := NewAppender(context.Background(), nil)
	if _, err := app.Append(0, labels.FromStrings("__name__", "up"), 0, ms0, 1, nil, nil,
		storage.AOptions{MetricFamilyName: "up\xff", Metadata: metadata.Metadata{Type: model.MetricTypeGauge}}); err != nil {
		t.Fatal(err)
	}
	req := decode(t, app.Take().Bytes)
	if len(req.Metadata) != 1 || req.Metadata[0].MetricFamilyName != "up" {
		t.Fatalf("metadata %+v, want one entry for family up", req.Metadata)
	}
}

// TestAppenderTransactions: Commit hands what was appended to the commit func once and starts
// afresh; Rollback and an empty Commit do not call it; the func's error is Commit's.
func TestAppenderTransactions(t *testing.T) {
	var bodies []Body
	refuse := errors.New("pipeline refused")
	var fail bool
	commit := func(_ context.Context, b Body) error {
		if fail {
			return refuse
		}
		bodies = append(bodies, b)
		return nil
	}
	app := NewAppender(context.Background(), commit)
	add := func(name string) {
		t.Helper()
		if _, err := app.Append(0, labels.FromStrings("__name__", name), 0, ms0, 1, nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	add("rolled_back")
	if err := app.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil || len(bodies) != 0 {
		t.Fatalf("after Rollback, Commit called the func with %d bodies (%v)", len(bodies), err)
	}

	add("one")
	add("two")
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	add("three")
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || bodies[0].Counts.Series != 2 || bodies[1].Counts.Series != 1 {
		t.Fatalf("bodies %+v, want 2 series then 1", bodies)
	}
	if n := decode(t, bodies[1].Bytes).Timeseries[0].Labels[0].Value; n != "three" {
		t.Fatalf("second commit holds %q", n)
	}

	fail = true
	add("refused")
	if err := app.Commit(); !errors.Is(err, refuse) {
		t.Fatalf("Commit = %v, want the commit func's error", err)
	}

	if _, err := app.Append(0, labels.EmptyLabels(), 0, ms0, 1, nil, nil, storage.AOptions{}); err == nil {
		t.Fatal("Append without labels succeeded")
	}
}
