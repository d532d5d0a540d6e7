package batch_test

import (
	"bytes"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
)

// checkSplit asserts the invariants every split keeps: items are conserved, each part holds at
// most max items and says so truthfully, and the items come out in their original order.
func checkSplit(t *testing.T, s signal, parts []*batch.Batch, max int, want []int64) {
	t.Helper()
	var got []int64
	total := 0
	for i, p := range parts {
		if p.Signal() != s.sig {
			t.Fatalf("part %d carries %s", i, p.Signal())
		}
		if p.Items() > max || p.Items() == 0 {
			t.Errorf("part %d holds %d items, want 1..%d", i, p.Items(), max)
		}
		seqs := s.seqs(t, p)
		if len(seqs) != p.Items() {
			t.Errorf("part %d: Items() = %d but it holds %d", i, p.Items(), len(seqs))
		}
		total += p.Items()
		got = append(got, seqs...)
	}
	if total != len(want) {
		t.Errorf("parts hold %d items, want %d", total, len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("seqs across parts = %v, want %v", got, want)
	}
}

func TestSplit(t *testing.T) {
	for _, s := range signals {
		for _, encoded := range []bool{true, false} {
			t.Run(formName(s, encoded), func(t *testing.T) {
				// wantEnc and wantDec differ because encoded batches are cut only at resource
				// boundaries, while pdata splits fill every part to max.
				f := func(resources, items, max, wantEnc, wantDec int) {
					t.Helper()
					var b *batch.Batch
					want := wantDec
					if encoded {
						b, want = s.fromEncoded(t, resources, items, 0), wantEnc
					} else {
						b = s.decoded(resources, items, 0)
					}
					parts, err := batch.Split(b, max)
					if err != nil {
						t.Fatalf("%d×%d max %d: %v", resources, items, max, err)
					}
					if len(parts) != want {
						t.Errorf("%d×%d max %d: %d parts, want %d", resources, items, max, len(parts), want)
					}
					checkSplit(t, s, parts, max, span(0, resources*items))
				}
				f(1, 5, 10, 1, 1)    // fits: returned as is
				f(2, 5, 10, 1, 1)    // exactly max
				f(1, 10, 1, 10, 10)  // one item per part
				f(1, 10, 3, 4, 4)    // one resource cut at item level
				f(4, 5, 3, 8, 7)     // every resource larger than max
				f(7, 1, 2, 4, 4)     // whole resources grouped
				f(10, 10, 25, 5, 4)  // two resources per encoded part
				f(3, 4, 5, 3, 3)     // encoded: 4 | 4 | 4; decoded: 5 | 5 | 2
				f(20, 50, 999, 2, 2) // large
			})
		}
	}
}

func TestSplitRejectsBadMax(t *testing.T) {
	for _, max := range []int{0, -1} {
		if _, err := batch.Split(signals[0].decoded(1, 1, 0), max); err == nil {
			t.Errorf("Split with max %d succeeded", max)
		}
	}
}

// TestSplitEncodedStaysEncoded checks that resources that fit are never decoded and that the parts
// are the original bytes, cut.
func TestSplitEncodedStaysEncoded(t *testing.T) {
	for _, s := range signals {
		raw := s.encoded(t, 9, 4, 0)
		b, err := batch.FromEncoded(s.sig, raw)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := batch.Split(b, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 5 {
			t.Errorf("%s: %d parts, want 5 (two resources each, one left)", s.sig, len(parts))
		}
		checkEndToEnd(t, s.sig, parts, raw)
		checkSplit(t, s, parts, 10, span(0, 36))
	}
}

// TestSplitEncodedOversizeMixed has a large resource between small ones: only it is decoded.
func TestSplitEncodedOversizeMixed(t *testing.T) {
	for _, s := range signals {
		var raw []byte
		raw = append(raw, s.encoded(t, 2, 2, 0)...)  // 4 items: one encoded part
		raw = append(raw, s.encoded(t, 1, 0, 0)...)  // an empty resource, joined to the part above
		raw = append(raw, s.encoded(t, 1, 11, 4)...) // oversize: decoded into 5 + 5 + 1
		raw = append(raw, s.encoded(t, 3, 1, 15)...) // 3 items: one encoded part
		raw = append(raw, 0x12, 0x03, 'x', 'y', 'z') // unknown field 2, kept with the bytes
		b, err := batch.FromEncoded(s.sig, raw)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := batch.Split(b, 5)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []bool
		for _, p := range parts {
			kinds = append(kinds, p.IsEncoded() && !p.IsDecoded())
		}
		if want := []bool{true, false, false, false, true}; !slices.Equal(kinds, want) {
			t.Errorf("%s: encoded parts %v, want %v", s.sig, kinds, want)
		}
		first, _ := parts[0].Encoded()
		if want := s.encoded(t, 2, 2, 0); !bytes.Equal(first[:len(want)], want) || len(first) == len(want) {
			t.Errorf("%s: the empty resource was not joined to the first part", s.sig)
		}
		checkSplit(t, s, parts, 5, span(0, 18))
		last, _ := parts[len(parts)-1].Encoded()
		if !bytes.HasSuffix(last, []byte("xyz")) {
			t.Errorf("%s: the trailing unknown field was not kept", s.sig)
		}
	}
}

// TestSplitKeepsResourceAndScope checks each part of a cut resource carries its resource and scope.
func TestSplitKeepsResourceAndScope(t *testing.T) {
	for _, encoded := range []bool{true, false} {
		s := signals[0]
		b := s.decoded(2, 7, 0)
		if encoded {
			b = s.fromEncoded(t, 2, 7, 0)
		}
		parts, err := batch.Split(b, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			td, err := p.Traces()
			if err != nil {
				t.Fatal(err)
			}
			for _, rs := range td.ResourceSpans().All() {
				if v, ok := rs.Resource().Attributes().Get("service.name"); !ok || v.Str() != "vigil-test" {
					t.Errorf("encoded=%v part %d: resource lost service.name", encoded, i)
				}
				for _, ss := range rs.ScopeSpans().All() {
					if ss.Scope().Name() != "vigil/testdata" {
						t.Errorf("encoded=%v part %d: scope name %q", encoded, i, ss.Scope().Name())
					}
					if ss.Spans().Len() == 0 {
						t.Errorf("encoded=%v part %d: empty scope", encoded, i)
					}
				}
			}
		}
	}
}

// TestSplitSharedInput checks that splitting a batch shared with a read-only sibling leaves the
// sibling whole.
func TestSplitSharedInput(t *testing.T) {
	s := signals[2]
	b := s.decoded(1, 10, 0)
	sibling := b.Share()
	parts, err := batch.Split(b, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkSplit(t, s, parts, 4, span(0, 10))
	if got := s.seqs(t, sibling); !slices.Equal(got, span(0, 10)) {
		t.Errorf("sibling changed: %v", got)
	}
}

// allKinds builds one resource with a metric of every type, each with n points, seq from 0.
func allKinds(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "kinds")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("kinds")
	seq := int64(0)
	attrs := func(m pcommon.Map) { m.PutInt("seq", seq); seq++ }
	shell := func(name string) pmetric.Metric {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription("about " + name)
		m.SetUnit("By")
		m.Metadata().PutStr("origin", name)
		return m
	}
	g := shell("gauge").SetEmptyGauge()
	sum := shell("sum").SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sum.SetIsMonotonic(true)
	h := shell("histogram").SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	eh := shell("exponential_histogram").SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sy := shell("summary").SetEmptySummary()
	for range n {
		attrs(g.DataPoints().AppendEmpty().Attributes())
	}
	for range n {
		attrs(sum.DataPoints().AppendEmpty().Attributes())
	}
	for range n {
		dp := h.DataPoints().AppendEmpty()
		dp.SetCount(3)
		dp.BucketCounts().FromRaw([]uint64{1, 2})
		dp.ExplicitBounds().FromRaw([]float64{10})
		attrs(dp.Attributes())
	}
	for range n {
		dp := eh.DataPoints().AppendEmpty()
		dp.SetScale(2)
		attrs(dp.Attributes())
	}
	for range n {
		dp := sy.DataPoints().AppendEmpty()
		dp.SetCount(1)
		attrs(dp.Attributes())
	}
	return md
}

// TestSplitMetricsByDataPoint cuts metrics inside their data points and checks each half still
// says what stream it belongs to.
func TestSplitMetricsByDataPoint(t *testing.T) {
	s := signals[1]
	for _, encoded := range []bool{true, false} {
		b := batch.FromMetrics(allKinds(7))
		if encoded {
			raw, err := b.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			if b, err = batch.FromEncoded(batch.Metrics, raw); err != nil {
				t.Fatal(err)
			}
		}
		parts, err := batch.Split(b, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 12 {
			t.Errorf("encoded=%v: %d parts, want 12", encoded, len(parts))
		}
		checkSplit(t, s, parts, 3, span(0, 35))
		pieces := checkMetricShells(t, parts)
		// 7 points each, cut into parts of 3 at a running offset: every metric spans 3 or 4 parts.
		for _, name := range []string{"gauge", "sum", "histogram", "exponential_histogram", "summary"} {
			if pieces[name] < 3 {
				t.Errorf("encoded=%v: metric %s appears in %d parts, want it cut", encoded, name, pieces[name])
			}
		}
	}
}

// checkEndToEnd checks that parts of an encoded batch stayed encoded (nothing decoded) and, laid
// end to end, are the request raw again.
func checkEndToEnd(t *testing.T, sig batch.Signal, parts []*batch.Batch, raw []byte) {
	t.Helper()
	var joined []byte
	for i, p := range parts {
		if !p.IsEncoded() || p.IsDecoded() {
			t.Errorf("%s part %d: IsEncoded=%v IsDecoded=%v", sig, i, p.IsEncoded(), p.IsDecoded())
		}
		enc, _ := p.Encoded()
		joined = append(joined, enc...)
	}
	if !bytes.Equal(joined, raw) {
		t.Errorf("%s: parts laid end to end differ from the request", sig)
	}
}

// formName names a subtest by signal and form: "traces/encoded".
func formName(s signal, encoded bool) string {
	if encoded {
		return s.sig.String() + "/encoded"
	}
	return s.sig.String() + "/decoded"
}
