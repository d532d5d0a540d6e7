package batch_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promrw"
)

// rwBody encodes n series (m0…) of k samples each, plus one metadata entry, with upstream prompb.
func rwBody(t *testing.T, n, k int, startValue float64) []byte {
	t.Helper()
	req := prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "m0"}}}
	for i := range n {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: fmt.Sprintf("m%d", i)}}}
		for j := range k {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: startValue + float64(i*k+j), Timestamp: int64(j)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// values lists every sample value of a remote-write batch in order.
func values(t *testing.T, b *batch.Batch) []float64 {
	t.Helper()
	rw, ok := b.PromRW()
	if !ok {
		t.Fatal("batch has no remote-write form")
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(rw); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, ts := range req.Timeseries {
		for _, s := range ts.Samples {
			out = append(out, s.Value)
		}
	}
	return out
}

func TestPromRWBatch(t *testing.T) {
	body := rwBody(t, 3, 2, 0)
	b, err := batch.FromPromRW(body)
	if err != nil {
		t.Fatal(err)
	}
	if b.Items() != 6 || b.Signal() != batch.Metrics || b.Form() != batch.FormPromRW || b.IsEncoded() || b.IsDecoded() {
		t.Fatalf("items %d signal %s form %d encoded %v decoded %v", b.Items(), b.Signal(), b.Form(), b.IsEncoded(), b.IsDecoded())
	}
	if b.EncodedSize() != len(body) {
		t.Errorf("EncodedSize %d, want %d", b.EncodedSize(), len(body))
	}
	// Clones and shares keep the bytes, without copying or converting.
	for _, c := range []*batch.Batch{b.Clone(), b.Share()} {
		if rw, ok := c.PromRW(); !ok || &rw[0] != &body[0] {
			t.Error("clone or share lost or copied the remote-write bytes")
		}
	}
	// Reading pdata converts once and keeps the remote-write form valid.
	md, err := b.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if md.DataPointCount() != 6 {
		t.Errorf("converted %d data points, want 6", md.DataPointCount())
	}
	if _, ok := b.PromRW(); !ok {
		t.Error("reading pdata dropped the remote-write form")
	}
	// Mutating drops it.
	if _, err := b.MutableMetrics(); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.PromRW(); ok || b.Form() != batch.FormPData {
		t.Error("the remote-write form survived a mutation")
	}
}

func TestFromPromRWRejectsBadInput(t *testing.T) {
	bad := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "bad-name", Value: "x"}, {Name: "__name__", Value: "m"}}}}})
	raw, _ := bad.Marshal()
	if _, err := batch.FromPromRW(raw); err == nil {
		t.Error("a body with unsorted, invalid labels was accepted")
	}
	if _, err := batch.FromPromRW([]byte{0x0a, 0x05}); err == nil {
		t.Error("a truncated body was accepted")
	}
}

func TestConcatPromRWIsByteConcatenation(t *testing.T) {
	a, b := rwBody(t, 2, 1, 0), rwBody(t, 2, 1, 10)
	ba, _ := batch.FromPromRW(a)
	bb, _ := batch.FromPromRW(b)
	j, err := batch.Concat([]*batch.Batch{ba, bb})
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := j.PromRW()
	if !ok || !bytes.Equal(rw, append(slices.Clone(a), b...)) || j.Items() != 4 {
		t.Fatalf("concat: remote write %v, items %d", ok, j.Items())
	}
	if got := values(t, j); !slices.Equal(got, []float64{0, 1, 10, 11}) {
		t.Errorf("values %v", got)
	}
}

func TestSplitPromRW(t *testing.T) {
	body := rwBody(t, 10, 3, 0) // 30 samples
	f := func(max int, wantParts int) {
		t.Helper()
		b, _ := batch.FromPromRW(body)
		parts, err := batch.Split(b, max)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != wantParts {
			t.Errorf("max %d: %d parts, want %d", max, len(parts), wantParts)
		}
		var all []float64
		total := 0
		for i, p := range parts {
			if p.Form() != batch.FormPromRW {
				t.Fatalf("part %d is not remote write", i)
			}
			rw, _ := p.PromRW()
			samples, _, _, err := promrw.CountV1(rw)
			if err != nil || samples != p.Items() {
				t.Fatalf("part %d: %d samples (%v), claims %d", i, samples, err, p.Items())
			}
			if p.Items() > max && p.Items() != 3 {
				t.Errorf("part %d holds %d > %d (only a single series may)", i, p.Items(), max)
			}
			total += p.Items()
			all = append(all, values(t, p)...)
		}
		want := make([]float64, 30)
		for i := range want {
			want[i] = float64(i)
		}
		if total != 30 || !slices.Equal(all, want) {
			t.Errorf("max %d: items %d, values %v", max, total, all)
		}
		// The metadata entry survives, in the first part.
		rw, _ := parts[0].PromRW()
		var req prompb.WriteRequest
		if err := req.Unmarshal(rw); err != nil || len(req.Metadata) != 1 {
			t.Errorf("max %d: first part metadata %v (%v)", max, req.Metadata, err)
		}
	}
	f(30, 1)
	f(6, 5)
	f(7, 5) // two whole series (6 samples) per part
	f(2, 10)
}

// Series without samples (exemplars only, or empty) are part of the body too: a split keeps
// every series, in order, whatever its sample count and wherever metadata sits.
func TestSplitPromRWKeepsSeriesWithoutSamples(t *testing.T) {
	ex := []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 1, Timestamp: 1}}
	ser := func(name string, k int) prompb.TimeSeries {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}}}
		for j := range k {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(j), Timestamp: int64(j)})
		}
		if k == 0 {
			ts.Exemplars = ex
		}
		return ts
	}
	one := func(ts ...prompb.TimeSeries) []byte {
		raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	meta, err := (&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "a"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string, body []byte, max int, want []string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			b, err := batch.FromPromRW(body)
			if err != nil {
				t.Fatal(err)
			}
			items := b.Items()
			parts, err := batch.Split(b, max)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			n, metas := 0, 0
			for _, p := range parts {
				rw, _ := p.PromRW()
				var req prompb.WriteRequest
				if err := req.Unmarshal(rw); err != nil {
					t.Fatal(err)
				}
				for _, ts := range req.Timeseries {
					got = append(got, ts.Labels[0].Value)
				}
				n += p.Items()
				metas += len(req.Metadata)
			}
			if !slices.Equal(got, want) || n != items {
				t.Errorf("series %v, items %d; want %v, %d", got, n, want, items)
			}
			if bytes.Contains(body, meta) && metas != len(parts) {
				t.Errorf("metadata %d times in %d parts, want once in each", metas, len(parts))
			}
		})
	}
	f("leading empty series", one(ser("e", 0), ser("a", 2), ser("b", 2)), 2, []string{"e", "a", "b"})
	f("empty series between", one(ser("a", 2), ser("e", 0), ser("b", 2)), 2, []string{"a", "e", "b"})
	f("metadata after an empty series", slices.Concat(one(ser("e", 0)), meta, one(ser("a", 2), ser("b", 2))), 2, []string{"e", "a", "b"})
}

// Every part of a split remote-write batch keeps the metadata: without it a classic histogram
// whose series land in a later part converts to OTLP as loose gauges, and a 2.0 exporter sends
// its series without type, help and unit.
func TestSplitPromRWMetadataInEveryPart(t *testing.T) {
	req := prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "g"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_bucket"}, {Name: "le", Value: "+Inf"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_count"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_sum"}}, Samples: []prompb.Sample{{Value: 3, Timestamp: 1}}},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "g"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "h"},
		},
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := batch.Split(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	md, err := parts[1].Metrics()
	if err != nil {
		t.Fatal(err)
	}
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	if m.Name() != "h" || m.Type() != pmetric.MetricTypeHistogram {
		t.Errorf("second part converts to %s of type %s, want the histogram h", m.Name(), m.Type())
	}
}
