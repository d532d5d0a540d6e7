package batch_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"

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
