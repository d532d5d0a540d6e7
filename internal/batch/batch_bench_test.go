package batch_test

import (
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
)

const (
	benchRequests = 8
	benchSpans    = 1000
)

// benchInput returns benchRequests encoded trace requests of benchSpans spans each, spread
// over 10 resources as an SDK's periodic export would be.
func benchInput(b *testing.B) ([][]byte, int) {
	b.Helper()
	reqs := make([][]byte, benchRequests)
	size := 0
	for i := range reqs {
		reqs[i] = signals[0].encoded(b, 10, benchSpans/10, i*benchSpans)
		size += len(reqs[i])
	}
	return reqs, size
}

// BenchmarkConcatEncoded is the relay path: wrap (scan) 8 received requests and batch them by
// concatenating their bytes, ready to send as the OTLP exporter does (in pieces, unjoined).
func BenchmarkConcatEncoded(b *testing.B) {
	reqs, size := benchInput(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	parts := make([]*batch.Batch, len(reqs))
	for b.Loop() {
		for i, r := range reqs {
			p, err := batch.FromEncoded(batch.Traces, r)
			if err != nil {
				b.Fatal(err)
			}
			parts[i] = p
		}
		out, err := batch.Concat(parts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.EncodedParts(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRequests*benchSpans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkConcatDecoded is the same work done the way decode-everything agents do it: decode
// each request, merge the pdata, encode the merged request.
func BenchmarkConcatDecoded(b *testing.B) {
	reqs, size := benchInput(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	parts := make([]*batch.Batch, len(reqs))
	for b.Loop() {
		for i, r := range reqs {
			parts[i] = decodeRaw(b, batch.Traces, r)
		}
		out, err := batch.Concat(parts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.Encoded(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRequests*benchSpans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkScan measures the structural check every encoded request passes on arrival, without
// and with the receivers' attribute limits (their cost is the difference).
func BenchmarkScan(b *testing.B) {
	for _, lim := range []struct {
		name string
		lim  batch.Limits
	}{{"", batch.Limits{}}, {"/max_attributes", batch.Limits{MaxAttributes: 128}}, {"/receiver_limits", batch.Limits{MaxAttributes: 128, MaxAttributeBytes: 128 << 10}}} {
		for _, s := range signals {
			b.Run(s.sig.String()+lim.name, func(b *testing.B) {
				raw := s.encoded(b, 10, benchSpans/10, 0)
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := batch.ScanLimited(s.sig, raw, lim.lim); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "items/s")
			})
		}
	}
}

// BenchmarkSplitEncoded cuts an 8000-span request into 1000-span parts at resource boundaries.
func BenchmarkSplitEncoded(b *testing.B) {
	raw := signals[0].encoded(b, 80, 100, 0)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		in, err := batch.FromEncoded(batch.Traces, raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := batch.Split(in, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
