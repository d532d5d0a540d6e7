package promrw

import (
	"fmt"
	"testing"
)

// reportSamples adds a samples/s figure next to ns/op and MB/s.
func reportSamples(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

var benchShapes = []struct{ series, samples int }{{10_000, 1}, {1_000, 10}}

func BenchmarkScanV1(b *testing.B) {
	for _, shape := range benchShapes {
		body := reqV1(bigSeries(shape.series, shape.samples)...)
		n := shape.series * shape.samples
		for _, trusted := range []bool{true, false} {
			name := fmt.Sprintf("%dx%d/trusted=%v", shape.series, shape.samples, trusted)
			b.Run(name, func(b *testing.B) {
				sc := Scanner{Trusted: trusted}
				samples := 0
				fn := func(s SeriesV1) error { samples += s.Samples; return nil }
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := sc.ScanV1(body, fn); err != nil {
						b.Fatal(err)
					}
				}
				reportSamples(b, n)
			})
		}
	}
}

func BenchmarkScanV2(b *testing.B) {
	for _, shape := range benchShapes {
		body := reqV2(bigSeries(shape.series, shape.samples)...)
		n := shape.series * shape.samples
		for _, trusted := range []bool{true, false} {
			b.Run(fmt.Sprintf("%dx%d/trusted=%v", shape.series, shape.samples, trusted), func(b *testing.B) {
				sc := Scanner{Trusted: trusted}
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := sc.ScanV2(body, nil); err != nil {
						b.Fatal(err)
					}
				}
				reportSamples(b, n)
			})
		}
	}
}

// BenchmarkReshard is the relay's inner loop: scan a 1.0 body (trusted) and re-batch every
// series into 8 shards by label hash.
func BenchmarkReshard(b *testing.B) {
	for _, shape := range benchShapes {
		body := reqV1(bigSeries(shape.series, shape.samples)...)
		b.Run(fmt.Sprintf("%dx%d", shape.series, shape.samples), func(b *testing.B) {
			sc := Scanner{Trusted: true}
			bl := NewBuilder(8)
			add := func(s SeriesV1) error { bl.Add(s); return nil }
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				bl.Reset()
				if err := sc.ScanV1(body, add); err != nil {
					b.Fatal(err)
				}
			}
			reportSamples(b, shape.series*shape.samples)
		})
	}
}

// BenchmarkV2ToV1 converts every series of a 2.0 body for a 1.0-only backend.
func BenchmarkV2ToV1(b *testing.B) {
	body := reqV2(bigSeries(10_000, 1)...)
	sc := Scanner{Trusted: true}
	var dst []byte
	conv := func(s SeriesV2) error { dst = AppendV2AsV1(dst, s); return nil }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst = dst[:0]
		if err := sc.ScanV2(body, conv); err != nil {
			b.Fatal(err)
		}
	}
	reportSamples(b, 10_000)
}

func BenchmarkSnappyDecode(b *testing.B) {
	body := reqV1(bigSeries(10_000, 1)...)
	enc := Encode(nil, body)
	dst := make([]byte, 0, len(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = Decode(dst, enc, 64<<20); err != nil {
			b.Fatal(err)
		}
	}
	reportSamples(b, 10_000)
}

func BenchmarkSnappyEncode(b *testing.B) {
	body := reqV1(bigSeries(10_000, 1)...)
	dst := Encode(nil, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst = Encode(dst, body)
	}
	reportSamples(b, 10_000)
}
