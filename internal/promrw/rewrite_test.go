package promrw_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/vigilhq/vigil/internal/promrw"
)

// These tests check what the encoders write against the upstream prompb types, which decode it.

func marshalV1(t *testing.T, req *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func lblString(ls []prompb.Label) string {
	var sb labels.ScratchBuilder
	for _, l := range ls {
		sb.Add(l.Name, l.Value)
	}
	sb.Sort()
	return sb.Labels().String()
}

func sameSamples(a, b []prompb.Sample) bool {
	return slices.EqualFunc(a, b, func(x, y prompb.Sample) bool { return x.Value == y.Value && x.Timestamp == y.Timestamp })
}

func firstSeriesRaw(t *testing.T, body []byte) []byte {
	t.Helper()
	var raw []byte
	if err := promrw.ScanV1(body, func(s promrw.SeriesV1) error {
		if raw == nil {
			raw = s.Raw
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAppendWithLabels(t *testing.T) {
	f := func(series []prompb.Label, extra []promrw.Label, want string) {
		t.Helper()
		ts := prompb.TimeSeries{
			Labels:    series,
			Samples:   []prompb.Sample{{Value: 1, Timestamp: 2}},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 3, Timestamp: 2}},
		}
		raw := firstSeriesRaw(t, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}))
		out := promrw.AppendSeriesV1(nil, promrw.AppendWithLabels(nil, raw, extra))
		var req prompb.WriteRequest
		if err := req.Unmarshal(out); err != nil {
			t.Fatal(err)
		}
		got := req.Timeseries[0]
		if s := lblString(got.Labels); s != want {
			t.Errorf("labels %s, want %s", s, want)
		}
		if !slices.IsSortedFunc(got.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("labels not sorted: %v", got.Labels)
		}
		if len(got.Samples) != 1 || !sameSamples(got.Samples, ts.Samples) || len(got.Exemplars) != 1 || got.Exemplars[0].Value != 3 {
			t.Errorf("samples %v exemplars %v changed", got.Samples, got.Exemplars)
		}
		// The result must pass the validation a client body gets (sorted, unique names).
		if _, _, _, err := promrw.CountV1(out); err != nil {
			t.Errorf("result does not validate: %v", err)
		}
	}
	up := []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "node"}}
	f(up, nil, `{__name__="up", job="node"}`)
	f(up, []promrw.Label{{Name: "cluster", Value: "eu1"}}, `{__name__="up", cluster="eu1", job="node"}`)
	f(up, []promrw.Label{{Name: "job", Value: "ext"}}, `{__name__="up", job="node"}`) // the series wins
	f(up, []promrw.Label{{Name: "A", Value: "1"}, {Name: "zone", Value: "z"}}, `{A="1", __name__="up", job="node", zone="z"}`)
	f(up, []promrw.Label{{Name: "a", Value: "1"}, {Name: "job", Value: "x"}, {Name: "k", Value: "2"}}, `{__name__="up", a="1", job="node", k="2"}`)
}

func TestSeriesEncoderAndMetadata(t *testing.T) {
	var enc promrw.SeriesEncoder
	enc.Label("__name__", "http_requests_total")
	enc.Label("code", "200")
	enc.Sample(1.5, 1000)
	enc.Sample(-2, -5) // negative timestamps are valid int64 varints
	enc.Exemplar([]string{"trace_id", "abc", "span_id", "def"}, 1, 900)
	body := enc.AppendTo(nil)
	body = promrw.AppendMetadata(body, promrw.MetadataCounter, "http_requests", "Requests.", "")
	body = promrw.AppendMetadata(body, promrw.MetadataUnknown, "x", "", "seconds")
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	if len(req.Timeseries) != 1 {
		t.Fatalf("%d series", len(req.Timeseries))
	}
	s := req.Timeseries[0]
	if lblString(s.Labels) != `{__name__="http_requests_total", code="200"}` ||
		!sameSamples(s.Samples, []prompb.Sample{{Value: 1.5, Timestamp: 1000}, {Value: -2, Timestamp: -5}}) ||
		len(s.Exemplars) != 1 || lblString(s.Exemplars[0].Labels) != `{span_id="def", trace_id="abc"}` || s.Exemplars[0].Timestamp != 900 {
		t.Errorf("series %+v", s)
	}
	m := req.Metadata
	if len(m) != 2 || m[0].Type != prompb.MetricMetadata_COUNTER || m[0].MetricFamilyName != "http_requests" || m[0].Help != "Requests." ||
		m[1].Type != prompb.MetricMetadata_UNKNOWN || m[1].Unit != "seconds" {
		t.Errorf("metadata %+v", m)
	}
}

// V2Encoder's output, decoded by the upstream 2.0 types, holds the same series, samples,
// exemplars and histograms as the 1.0 body, and each series the metadata of its family.
func TestV2EncoderAgainstUpstream(t *testing.T) {
	native := prompb.Histogram{
		Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: 7.5, Schema: 2, ZeroThreshold: 0.001,
		ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{1, 1, -1},
		NegativeSpans: []prompb.BucketSpan{{Offset: -1, Length: 1}}, NegativeDeltas: []int64{1},
		ResetHint: prompb.Histogram_GAUGE, Timestamp: 2000,
	}
	floatH := prompb.Histogram{
		Count: &prompb.Histogram_CountFloat{CountFloat: 3.5}, Sum: 1, Schema: -53,
		ZeroCount:     &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveCounts: []float64{1.5, 2},
		CustomValues: []float64{0.1, 1}, Timestamp: 3000,
	}
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:    []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "code", Value: "200"}},
				Samples:   []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 900}, {Value: 2, Timestamp: 950}},
			},
			{Labels: []prompb.Label{{Name: "__name__", Value: "lat_seconds_bucket"}, {Name: "le", Value: "+Inf"}}, Samples: []prompb.Sample{{Value: 4, Timestamp: 1000}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "native_seconds"}}, Histograms: []prompb.Histogram{native, floatH}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "no_meta"}}, Samples: []prompb.Sample{{Value: 0, Timestamp: 1}}},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests", Help: "Requests."},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat_seconds", Unit: "seconds"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "native_seconds", Help: "Native."},
		},
	}
	body := marshalV1(t, req)
	var enc promrw.V2Encoder
	for round := range 2 { // the encoder's tables are reused
		out := enc.Encode(nil, body, promrw.MetadataOf(body))
		if _, err := promrw.CountV2(out); err != nil {
			t.Fatalf("round %d: our own 2.0 validation refuses the output: %v", round, err)
		}
		var got writev2.Request
		if err := got.Unmarshal(out); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(got.Timeseries) != len(req.Timeseries) {
			t.Fatalf("round %d: %d series", round, len(got.Timeseries))
		}
		wantMeta := []struct {
			typ        writev2.Metadata_MetricType
			help, unit string
		}{
			{writev2.Metadata_METRIC_TYPE_COUNTER, "Requests.", ""},
			{writev2.Metadata_METRIC_TYPE_HISTOGRAM, "", "seconds"},
			{writev2.Metadata_METRIC_TYPE_HISTOGRAM, "Native.", ""},
			{writev2.Metadata_METRIC_TYPE_UNSPECIFIED, "", ""},
		}
		var sb labels.ScratchBuilder
		for i, ts := range got.Timeseries {
			want := req.Timeseries[i]
			ls, err := ts.ToLabels(&sb, got.Symbols)
			if err != nil || ls.String() != lblString(want.Labels) {
				t.Errorf("series %d labels %s (%v), want %s", i, ls, err, lblString(want.Labels))
			}
			if len(ts.Samples) != len(want.Samples) {
				t.Errorf("series %d: %d samples, want %d", i, len(ts.Samples), len(want.Samples))
			}
			for j := range min(len(ts.Samples), len(want.Samples)) {
				if ts.Samples[j].Value != want.Samples[j].Value || ts.Samples[j].Timestamp != want.Samples[j].Timestamp {
					t.Errorf("series %d sample %d: %+v, want %+v", i, j, ts.Samples[j], want.Samples[j])
				}
			}
			if len(ts.Exemplars) != len(want.Exemplars) {
				t.Errorf("series %d: %d exemplars, want %d", i, len(ts.Exemplars), len(want.Exemplars))
			}
			for j := range min(len(ts.Exemplars), len(want.Exemplars)) {
				ex, err := ts.Exemplars[j].ToExemplar(&sb, got.Symbols)
				w := want.Exemplars[j]
				if err != nil || ex.Labels.String() != lblString(w.Labels) || ex.Value != w.Value || ex.Ts != w.Timestamp {
					t.Errorf("series %d exemplar %d: %v %v, want %+v", i, j, ex, err, w)
				}
			}
			if len(ts.Histograms) != len(want.Histograms) {
				t.Errorf("series %d: %d histograms, want %d", i, len(ts.Histograms), len(want.Histograms))
			}
			for j := range min(len(ts.Histograms), len(want.Histograms)) {
				// Same field numbers in both versions: the upstream encoders agree byte for byte.
				g, _ := ts.Histograms[j].Marshal()
				w, _ := want.Histograms[j].Marshal()
				if !bytes.Equal(g, w) {
					t.Errorf("series %d histogram %d: %+v, want %+v", i, j, ts.Histograms[j], want.Histograms[j])
				}
			}
			m, wm := ts.Metadata, wantMeta[i]
			help, unit := got.Symbols[m.HelpRef], got.Symbols[m.UnitRef]
			if m.Type != wm.typ || help != wm.help || unit != wm.unit {
				t.Errorf("series %d metadata %v help %q unit %q, want %v %q %q", i, m.Type, help, unit, wm.typ, wm.help, wm.unit)
			}
		}
	}
}

// AppendSeriesPart cuts a series into parts that, decoded and put together, are the series.
func TestAppendSeriesPart(t *testing.T) {
	ts := prompb.TimeSeries{
		Labels:    []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "job", Value: "j"}},
		Exemplars: []prompb.Exemplar{{Value: 9, Timestamp: 3}},
	}
	for i := range 7 {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	raw := firstSeriesRaw(t, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}))
	var all []prompb.Sample
	exemplars := 0
	var buf []byte
	for from := 0; from < 7; from += 3 {
		var part promrw.SeriesV1
		buf, part = promrw.AppendSeriesPart(buf[:0], raw, from, min(from+3, 7))
		var req prompb.WriteRequest
		if err := req.Unmarshal(promrw.AppendSeriesV1(nil, part.Raw)); err != nil {
			t.Fatal(err)
		}
		got := req.Timeseries[0]
		if lblString(got.Labels) != `{__name__="m", job="j"}` {
			t.Errorf("part at %d: labels %v", from, got.Labels)
		}
		if part.Samples != len(got.Samples) || part.Exemplars != len(got.Exemplars) || part.NumLabels != 2 {
			t.Errorf("part at %d: counts %+v, decoded %d samples %d exemplars", from, part, len(got.Samples), len(got.Exemplars))
		}
		all = append(all, got.Samples...)
		exemplars += len(got.Exemplars)
	}
	if !sameSamples(all, ts.Samples) || exemplars != 1 {
		t.Errorf("parts hold %v and %d exemplars, want %v and 1", all, exemplars, ts.Samples)
	}
}

// MetadataOf keeps each distinct entry once: joined batches repeat them.
func TestMetadataOfDropsRepeats(t *testing.T) {
	m := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "g", Help: "G."}
	other := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "g", Help: "Changed."}
	var body []byte
	for i := range 3 {
		body = append(body, marshalV1(t, &prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: fmt.Sprint("g", i)}}}},
			Metadata:   []prompb.MetricMetadata{m},
		})...)
	}
	body = append(body, marshalV1(t, &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{other}})...)
	var req prompb.WriteRequest
	if err := req.Unmarshal(promrw.MetadataOf(body).Raw); err != nil {
		t.Fatal(err)
	}
	if len(req.Metadata) != 2 || req.Metadata[0].Help != "G." || req.Metadata[1].Help != "Changed." {
		t.Errorf("metadata %+v, want the two distinct entries once each", req.Metadata)
	}
}
