package promrw

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, pattern string, extra ...[]byte) {
	paths, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range extra {
		f.Add(b)
	}
}

// FuzzScanV1: never panic; what the validating scan accepts, the trusted scan accepts with the
// same counts, and re-batching it through a Builder keeps every series and count.
func FuzzScanV1(f *testing.F) {
	addSeeds(f, "v1_*.bin", nil, []byte{0x0a, 0x00}, reqV2(fixtureSeries()...))
	f.Fuzz(func(t *testing.T, body []byte) {
		trusted := Scanner{Trusted: true}
		var tc Counts
		trustedErr := trusted.ScanV1(body, func(s SeriesV1) error {
			tc.add(s.Samples, s.Histograms, s.Exemplars)
			it := s.Labels()
			for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
			}
			_ = it.Err()
			_ = s.Hash()
			_ = s.MetricName()
			if s.Start < 0 || s.End > len(body) || s.Start >= s.End {
				t.Fatalf("bad range [%d,%d) in %d bytes", s.Start, s.End, len(body))
			}
			return nil
		})
		var vc Counts
		b := NewBuilder(3)
		err := ScanV1(body, func(s SeriesV1) error {
			vc.add(s.Samples, s.Histograms, s.Exemplars)
			b.Add(s)
			// External labels and cutting a series keep it valid, and cuts lose nothing.
			if _, _, _, err := CountV1(AppendSeriesV1(nil, AppendWithLabels(nil, s.Raw, []Label{{"zz_ext", "v"}}))); err != nil {
				t.Fatalf("with external labels: %v", err)
			}
			k, n := s.Samples+s.Histograms, 0
			var buf []byte
			for from := 0; from < k; from += 2 {
				var p SeriesV1
				buf, p = AppendSeriesPart(buf[:0], s.Raw, from, from+2)
				if _, _, _, err := CountV1(AppendSeriesV1(nil, p.Raw)); err != nil {
					t.Fatalf("part at %d: %v", from, err)
				}
				n += p.Samples + p.Histograms
			}
			if n != k {
				t.Fatalf("parts hold %d samples and histograms, the series %d", n, k)
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if trustedErr != nil || tc != vc {
			t.Fatalf("validating scan accepted %+v, trusted scan %+v, %v", vc, tc, trustedErr)
		}
		var rc Counts
		for i := range b.Shards() {
			shard, c := b.Request(i)
			var sc Counts
			if err := ScanV1(shard, func(s SeriesV1) error { sc.add(s.Samples, s.Histograms, s.Exemplars); return nil }); err != nil || sc != c {
				t.Fatalf("shard %d: %+v, %v; builder says %+v", i, sc, err, c)
			}
			rc.Series += c.Series
			rc.Samples += c.Samples
			rc.Histograms += c.Histograms
			rc.Exemplars += c.Exemplars
		}
		if rc != vc {
			t.Fatalf("re-batched %+v, scanned %+v", rc, vc)
		}
	})
}

// FuzzScanV2: never panic; every series the validating scan accepts converts to a valid 1.0
// series with the same counts and hash.
func FuzzScanV2(f *testing.F) {
	addSeeds(f, "v2_*.bin", nil, symbolsField(""), reqV1(fixtureSeries()...))
	f.Fuzz(func(t *testing.T, body []byte) {
		trusted := Scanner{Trusted: true}
		_ = trusted.ScanV2(body, func(s SeriesV2) error {
			it := s.Labels()
			for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
			}
			_ = s.Hash()
			_ = AppendV2AsV1(nil, s) // must not panic on unchecked refs
			_, _, _, _ = s.Metadata()
			return nil
		})
		var sc Scanner
		err := sc.ScanV2(body, func(s SeriesV2) error {
			v1 := AppendV2AsV1(nil, s)
			n := 0
			if err := ScanV1(v1, func(c SeriesV1) error {
				n++
				if c.Samples != s.Samples || c.Histograms != s.Histograms || c.Exemplars != s.Exemplars || c.Hash() != s.Hash() {
					t.Fatalf("converted series differs: %+v vs %+v", c, s)
				}
				return nil
			}); err != nil || n != 1 {
				t.Fatalf("converted series: %v, %d series", err, n)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
	})
}

// FuzzDecode: never panic, never return or allocate more than the limit.
func FuzzDecode(f *testing.F) {
	const limit = 1 << 16
	addSeeds(f, "*.bin")
	for _, p := range []string{"v1_pods.bin", "v2_basic.bin"} {
		b, _ := os.ReadFile(filepath.Join("testdata", p))
		f.Add(Encode(nil, b))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00})
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := Decode(nil, src, limit)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if cap(out) > limit {
			t.Fatalf("decoded into %d bytes of capacity, limit %d", cap(out), limit)
		}
		back, err := Decode(nil, Encode(nil, out), limit)
		if err != nil || string(back) != string(out) {
			t.Fatalf("re-encode round trip: %v", err)
		}
	})
}
