package batch_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// signal bundles what the tests need to treat the three signals alike.
type signal struct {
	sig batch.Signal
	// decoded builds resources×items items with seq numbers from first.
	decoded func(resources, items, first int) *batch.Batch
	// seqs reads the seq attribute of every item, in order, through the read-only accessor.
	seqs func(t *testing.T, b *batch.Batch) []int64
	// mutate sets attribute "mutated" on the first item through the mutable accessor.
	mutate func(t *testing.T, b *batch.Batch)
	// mutated reports whether the first item carries "mutated".
	mutated func(t *testing.T, b *batch.Batch) bool
	// readOnly reports whether the read-only view is marked read-only.
	readOnly func(t *testing.T, b *batch.Batch) bool
}

var signals = []signal{
	{
		sig: batch.Traces,
		decoded: func(r, n, first int) *batch.Batch {
			return batch.FromTraces(testdata.Traces(r, n, first))
		},
		seqs: func(t *testing.T, b *batch.Batch) []int64 {
			t.Helper()
			td, err := b.Traces()
			if err != nil {
				t.Fatal(err)
			}
			return traceSeqs(td)
		},
		mutate: func(t *testing.T, b *batch.Batch) {
			t.Helper()
			td, err := b.MutableTraces()
			if err != nil {
				t.Fatal(err)
			}
			firstSpan(td).Attributes().PutBool("mutated", true)
		},
		mutated: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			td, err := b.Traces()
			if err != nil {
				t.Fatal(err)
			}
			_, ok := firstSpan(td).Attributes().Get("mutated")
			return ok
		},
		readOnly: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			td, err := b.Traces()
			if err != nil {
				t.Fatal(err)
			}
			return td.IsReadOnly()
		},
	},
	{
		sig: batch.Metrics,
		decoded: func(r, n, first int) *batch.Batch {
			return batch.FromMetrics(testdata.Metrics(r, n, first))
		},
		seqs: func(t *testing.T, b *batch.Batch) []int64 {
			t.Helper()
			md, err := b.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			return metricSeqs(md)
		},
		mutate: func(t *testing.T, b *batch.Batch) {
			t.Helper()
			md, err := b.MutableMetrics()
			if err != nil {
				t.Fatal(err)
			}
			firstPoint(md).Attributes().PutBool("mutated", true)
		},
		mutated: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			md, err := b.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			_, ok := firstPoint(md).Attributes().Get("mutated")
			return ok
		},
		readOnly: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			md, err := b.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			return md.IsReadOnly()
		},
	},
	{
		sig: batch.Logs,
		decoded: func(r, n, first int) *batch.Batch {
			return batch.FromLogs(testdata.Logs(r, n, first))
		},
		seqs: func(t *testing.T, b *batch.Batch) []int64 {
			t.Helper()
			ld, err := b.Logs()
			if err != nil {
				t.Fatal(err)
			}
			return logSeqs(ld)
		},
		mutate: func(t *testing.T, b *batch.Batch) {
			t.Helper()
			ld, err := b.MutableLogs()
			if err != nil {
				t.Fatal(err)
			}
			firstRecord(ld).Attributes().PutBool("mutated", true)
		},
		mutated: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			ld, err := b.Logs()
			if err != nil {
				t.Fatal(err)
			}
			_, ok := firstRecord(ld).Attributes().Get("mutated")
			return ok
		},
		readOnly: func(t *testing.T, b *batch.Batch) bool {
			t.Helper()
			ld, err := b.Logs()
			if err != nil {
				t.Fatal(err)
			}
			return ld.IsReadOnly()
		},
	},
}

// encoded builds the same items as decoded, as request bytes.
func (s signal) encoded(t testing.TB, r, n, first int) []byte {
	t.Helper()
	b, err := s.decoded(r, n, first).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s signal) fromEncoded(t testing.TB, r, n, first int) *batch.Batch {
	t.Helper()
	b, err := batch.FromEncoded(s.sig, s.encoded(t, r, n, first))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seq(m pcommon.Map) int64 {
	v, ok := m.Get("seq")
	if !ok {
		return -1
	}
	return v.Int()
}

func traceSeqs(td ptrace.Traces) []int64 {
	var out []int64
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, seq(sp.Attributes()))
			}
		}
	}
	return out
}

func logSeqs(ld plog.Logs) []int64 {
	var out []int64
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				out = append(out, seq(lr.Attributes()))
			}
		}
	}
	return out
}

func metricSeqs(md pmetric.Metrics) []int64 {
	var out []int64
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						out = append(out, seq(dp.Attributes()))
					}
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						out = append(out, seq(dp.Attributes()))
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						out = append(out, seq(dp.Attributes()))
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						out = append(out, seq(dp.Attributes()))
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						out = append(out, seq(dp.Attributes()))
					}
				}
			}
		}
	}
	return out
}

func firstSpan(td ptrace.Traces) ptrace.Span {
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
}

func firstRecord(ld plog.Logs) plog.LogRecord {
	return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
}

func firstPoint(md pmetric.Metrics) pmetric.NumberDataPoint {
	return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
}

// span returns first, first+1, … n numbers.
func span(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

func TestFromEncodedCounts(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			f := func(resources, items int) {
				t.Helper()
				b := s.fromEncoded(t, resources, items, 0)
				if got, want := b.Items(), resources*items; got != want {
					t.Errorf("%d×%d: Items() = %d, want %d", resources, items, got, want)
				}
				if !b.IsEncoded() || b.IsDecoded() {
					t.Errorf("%d×%d: IsEncoded=%v IsDecoded=%v, want true false", resources, items, b.IsEncoded(), b.IsDecoded())
				}
				if b.Signal() != s.sig {
					t.Errorf("Signal() = %s, want %s", b.Signal(), s.sig)
				}
				if got, want := b.EncodedSize(), len(s.encoded(t, resources, items, 0)); got != want {
					t.Errorf("EncodedSize() = %d, want %d", got, want)
				}
			}
			f(0, 0)
			f(1, 0)
			f(1, 1)
			f(1, 7)
			f(3, 5)
			f(10, 100)
		})
	}
}

func TestFromEncodedRejectsMalformed(t *testing.T) {
	f := func(name string, in []byte) {
		t.Helper()
		for _, sig := range batch.Signals {
			if _, err := batch.FromEncoded(sig, in); !errors.Is(err, batch.ErrMalformed) {
				t.Errorf("%s %s: err = %v, want ErrMalformed", name, sig, err)
			}
		}
	}
	f("truncated tag", []byte{0x0a})
	f("length past end", []byte{0x0a, 0x05, 0x01})
	f("resource as varint", []byte{0x08, 0x01})
	f("scope as varint", []byte{0x0a, 0x02, 0x10, 0x01})
}

func TestDecodedSizeMatchesEncoded(t *testing.T) {
	for _, s := range signals {
		b := s.decoded(2, 3, 0)
		size := b.EncodedSize()
		enc, err := b.Encoded()
		if err != nil {
			t.Fatal(err)
		}
		if size != len(enc) {
			t.Errorf("%s: EncodedSize() = %d before encoding, %d bytes encoded", s.sig, size, len(enc))
		}
	}
}

func TestReadingKeepsEncoded(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			raw := s.encoded(t, 2, 3, 0)
			b, err := batch.FromEncoded(s.sig, raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.seqs(t, b); !slices.Equal(got, span(0, 6)) {
				t.Fatalf("seqs = %v", got)
			}
			if !b.IsEncoded() || !b.IsDecoded() {
				t.Fatalf("after reading: IsEncoded=%v IsDecoded=%v, want both", b.IsEncoded(), b.IsDecoded())
			}
			if !s.readOnly(t, b) {
				t.Error("the view of an encoded batch is not read-only")
			}
			enc, err := b.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			if &enc[0] != &raw[0] {
				t.Error("Encoded() after reading did not return the original bytes")
			}
		})
	}
}

func TestMutatingDropsEncoded(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			raw := s.encoded(t, 1, 3, 0)
			orig := bytes.Clone(raw)
			b, err := batch.FromEncoded(s.sig, raw)
			if err != nil {
				t.Fatal(err)
			}
			s.seqs(t, b) // decode read-only first: the mutable view must then be a private copy
			s.mutate(t, b)
			if b.IsEncoded() {
				t.Fatal("IsEncoded after a mutable view was taken")
			}
			if !bytes.Equal(raw, orig) {
				t.Fatal("mutating changed the original request bytes")
			}
			if s.readOnly(t, b) {
				t.Error("the view after mutation is read-only")
			}
			enc, err := b.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			re, err := batch.FromEncoded(s.sig, enc)
			if err != nil {
				t.Fatal(err)
			}
			if !s.mutated(t, re) {
				t.Error("re-encoded batch lost the mutation")
			}
		})
	}
}

func TestWrongSignalAccessor(t *testing.T) {
	b := signals[0].fromEncoded(t, 1, 1, 0)
	if _, err := b.Metrics(); err == nil {
		t.Error("Metrics() on a traces batch succeeded")
	}
	if _, err := b.MutableLogs(); err == nil {
		t.Error("MutableLogs() on a traces batch succeeded")
	}
}

func TestRecount(t *testing.T) {
	b := batch.FromTraces(testdata.Traces(1, 5, 0))
	td, err := b.MutableTraces()
	if err != nil {
		t.Fatal(err)
	}
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().RemoveIf(func(sp ptrace.Span) bool {
		return seq(sp.Attributes())%2 == 0
	})
	b.Recount()
	if b.Items() != 2 {
		t.Errorf("Items() after Recount = %d, want 2", b.Items())
	}
}

func TestCloneIsIndependent(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String()+"/encoded", func(t *testing.T) {
			raw := s.encoded(t, 1, 3, 0)
			orig := bytes.Clone(raw)
			b, err := batch.FromEncoded(s.sig, raw)
			if err != nil {
				t.Fatal(err)
			}
			c := b.Clone()
			if !c.IsEncoded() || c.Items() != b.Items() {
				t.Fatalf("clone: IsEncoded=%v Items=%d", c.IsEncoded(), c.Items())
			}
			s.mutate(t, c)
			if s.mutated(t, b) {
				t.Error("mutating the clone changed the original")
			}
			if !bytes.Equal(raw, orig) {
				t.Error("mutating the clone changed the shared bytes")
			}
			if !b.IsEncoded() {
				t.Error("the original lost its encoded form")
			}
		})
		t.Run(s.sig.String()+"/decoded", func(t *testing.T) {
			b := s.decoded(1, 3, 0)
			c := b.Clone()
			s.mutate(t, c)
			if s.mutated(t, b) {
				t.Error("mutating the clone changed the original")
			}
			s.mutate(t, b)
			if !s.mutated(t, b) || !s.mutated(t, c) {
				t.Error("mutations were lost")
			}
		})
	}
}

func TestShareIsIndependent(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			b := s.decoded(1, 3, 0)
			sh := b.Share()
			if !s.readOnly(t, b) || !s.readOnly(t, sh) {
				t.Fatal("Share did not mark both views read-only")
			}
			if got := s.seqs(t, sh); !slices.Equal(got, span(0, 3)) {
				t.Fatalf("share seqs = %v", got)
			}
			// A branch that needs to mutate a shared batch gets its own copy.
			s.mutate(t, sh)
			if s.mutated(t, b) {
				t.Error("mutating the share changed the original")
			}
			if !s.mutated(t, sh) {
				t.Error("the share lost its mutation")
			}
		})
	}
}

func TestConcatEncoded(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			var (
				parts []*batch.Batch
				want  []byte
			)
			for i := range 4 {
				raw := s.encoded(t, 2, 5, i*10)
				want = append(want, raw...)
				b, err := batch.FromEncoded(s.sig, raw)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, b)
			}
			out, err := batch.Concat(parts)
			if err != nil {
				t.Fatal(err)
			}
			if !out.IsEncoded() || out.IsDecoded() {
				t.Fatalf("IsEncoded=%v IsDecoded=%v, want true false", out.IsEncoded(), out.IsDecoded())
			}
			if out.Items() != 40 {
				t.Errorf("Items() = %d, want 40", out.Items())
			}
			// Nothing was copied: the pieces are the parts' own bytes, in order.
			pieces, err := out.EncodedParts()
			if err != nil || len(pieces) != 4 {
				t.Fatalf("EncodedParts() = %d pieces, %v; want 4", len(pieces), err)
			}
			for i, p := range parts {
				own, _ := p.EncodedParts()
				if &pieces[i][0] != &own[0][0] {
					t.Errorf("piece %d is a copy of part %d's bytes", i, i)
				}
			}
			if out.EncodedSize() != len(want) {
				t.Errorf("EncodedSize() = %d, want %d", out.EncodedSize(), len(want))
			}
			enc, _ := out.Encoded()
			if !bytes.Equal(enc, want) {
				t.Error("concatenated bytes differ from the parts' bytes laid end to end")
			}
			var wantSeqs []int64
			for i := range 4 {
				wantSeqs = append(wantSeqs, span(i*10, 10)...)
			}
			if got := s.seqs(t, out); !slices.Equal(got, wantSeqs) {
				t.Errorf("decoded seqs = %v, want %v", got, wantSeqs)
			}
		})
	}
}

// TestConcatPieces follows a batch in pieces through what may happen to it downstream: concat of
// concats, clone, share, split and decode all see the same request.
func TestConcatPieces(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			var (
				want  []byte
				group [][]*batch.Batch
			)
			for g := range 3 {
				var parts []*batch.Batch
				for range 2 + g {
					raw := s.encoded(t, 1, 3, len(want)) // first is arbitrary: seqs checked below
					want = append(want, raw...)
					b, err := batch.FromEncoded(s.sig, raw)
					if err != nil {
						t.Fatal(err)
					}
					parts = append(parts, b)
				}
				group = append(group, parts)
			}
			// One part of a concat is itself in one piece, the others are concats.
			var outer []*batch.Batch
			for _, parts := range group {
				c, err := batch.Concat(parts)
				if err != nil {
					t.Fatal(err)
				}
				outer = append(outer, c)
			}
			all, err := batch.Concat(outer)
			if err != nil {
				t.Fatal(err)
			}
			pieces, _ := all.EncodedParts()
			if len(pieces) != 9 || !bytes.Equal(bytes.Join(pieces, nil), want) {
				t.Fatalf("%d pieces, joined equal to the parts: %v; want 9, true", len(pieces), bytes.Equal(bytes.Join(pieces, nil), want))
			}
			if all.Items() != 27 || all.EncodedSize() != len(want) {
				t.Errorf("Items() = %d, EncodedSize() = %d; want 27, %d", all.Items(), all.EncodedSize(), len(want))
			}
			clone, share := all.Clone(), all.Share()
			var copies [][]byte
			for name, b := range map[string]*batch.Batch{"clone": clone, "share": share} {
				enc, err := b.Encoded()
				if err != nil || !bytes.Equal(enc, want) {
					t.Errorf("%s: Encoded() differs from the parts laid end to end (%v)", name, err)
				}
				copies = append(copies, enc)
			}
			if len(copies) == 2 && &copies[0][0] != &copies[1][0] {
				t.Error("a clone and a share of one batch each joined the pieces: two copies")
			}
			// Joining the share's pieces left the original in pieces.
			if p, _ := all.EncodedParts(); len(p) != 9 {
				t.Errorf("original has %d pieces after its share was joined, want 9", len(p))
			}
			split, err := batch.Split(all.Clone(), 10)
			if err != nil {
				t.Fatal(err)
			}
			var joined []byte
			n := 0
			for _, p := range split {
				enc, _ := p.Encoded()
				joined = append(joined, enc...)
				n += p.Items()
				if p.Items() > 10 {
					t.Errorf("split part of %d items, max 10", p.Items())
				}
			}
			if n != 27 || !bytes.Equal(joined, want) {
				t.Errorf("split: %d items, bytes equal: %v; want 27, true", n, bytes.Equal(joined, want))
			}
			if got := len(s.seqs(t, all)); got != 27 {
				t.Errorf("decoded %d items, want 27", got)
			}
			// Mutating drops the pieces with the rest of the encoded form.
			m := all.Clone()
			switch s.sig {
			case batch.Traces:
				_, err = m.MutableTraces()
			case batch.Metrics:
				_, err = m.MutableMetrics()
			default:
				_, err = m.MutableLogs()
			}
			if err != nil || m.IsEncoded() {
				t.Errorf("after a mutable view: IsEncoded() = %v (%v), want false", m.IsEncoded(), err)
			}
			if p, err := m.EncodedParts(); err != nil || len(p) != 1 || !bytes.Equal(p[0], want) {
				t.Errorf("re-encoded after mutation: %d pieces, %v; want the same request in one", len(p), err)
			}
		})
	}
}

func TestConcatMixed(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			shared := s.decoded(1, 2, 100)
			keep := shared.Share() // a read-only sibling must survive the merge untouched
			parts := []*batch.Batch{
				s.fromEncoded(t, 1, 3, 0),
				s.decoded(2, 2, 3),
				shared,
				s.fromEncoded(t, 1, 1, 7),
			}
			out, err := batch.Concat(parts)
			if err != nil {
				t.Fatal(err)
			}
			if out.Items() != 10 {
				t.Errorf("Items() = %d, want 10", out.Items())
			}
			want := append(span(0, 7), 100, 101, 7)
			if got := s.seqs(t, out); !slices.Equal(got, want) {
				t.Errorf("seqs = %v, want %v", got, want)
			}
			if got := s.seqs(t, keep); !slices.Equal(got, []int64{100, 101}) {
				t.Errorf("shared sibling changed: %v", got)
			}
		})
	}
}

func TestConcatErrors(t *testing.T) {
	if _, err := batch.Concat(nil); err == nil {
		t.Error("Concat(nil) succeeded")
	}
	mixed := []*batch.Batch{signals[0].decoded(1, 1, 0), signals[1].decoded(1, 1, 0)}
	if _, err := batch.Concat(mixed); err == nil {
		t.Error("Concat of traces and metrics succeeded")
	}
	one := signals[2].decoded(1, 1, 0)
	if got, err := batch.Concat([]*batch.Batch{one}); err != nil || got != one {
		t.Errorf("Concat of one batch = %p, %v; want the batch itself", got, err)
	}
}

// TestConcatByteIdentity proves the relay's central claim: laying N encoded requests end to end
// gives exactly the bytes that decoding them, merging the pdata and encoding again would give.
func TestConcatByteIdentity(t *testing.T) {
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			const n = 6
			var (
				enc   []*batch.Batch
				dec   []*batch.Batch
				sizes = [][2]int{{1, 1}, {3, 2}, {1, 50}, {2, 7}, {1, 0}, {4, 4}}
			)
			first := 0
			for i := range n {
				raw := s.encoded(t, sizes[i][0], sizes[i][1], first)
				first += sizes[i][0] * sizes[i][1]
				b, err := batch.FromEncoded(s.sig, raw)
				if err != nil {
					t.Fatal(err)
				}
				enc = append(enc, b)
				// The decode path starts from the same bytes, as a decode-everything agent would.
				dec = append(dec, decodeRaw(t, s.sig, raw))
			}
			merged, err := batch.Concat(dec)
			if err != nil {
				t.Fatal(err)
			}
			if merged.IsEncoded() {
				t.Fatal("the pdata merge kept encoded bytes")
			}
			viaPdata, err := merged.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			cat, err := batch.Concat(enc)
			if err != nil {
				t.Fatal(err)
			}
			viaBytes, _ := cat.Encoded()
			if !bytes.Equal(viaBytes, viaPdata) {
				t.Fatalf("concatenated bytes (%d) differ from decode-merge-encode (%d)", len(viaBytes), len(viaPdata))
			}
			if cat.Items() != merged.Items() || cat.Items() != first {
				t.Errorf("items: bytes %d, pdata %d, want %d", cat.Items(), merged.Items(), first)
			}
		})
	}
}

// decodeRaw decodes request bytes with pdata alone, into a batch that holds no bytes.
func decodeRaw(t testing.TB, sig batch.Signal, raw []byte) *batch.Batch {
	t.Helper()
	var (
		b   *batch.Batch
		err error
	)
	switch sig {
	case batch.Traces:
		var td ptrace.Traces
		td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
		b = batch.FromTraces(td)
	case batch.Metrics:
		var md pmetric.Metrics
		md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(raw)
		b = batch.FromMetrics(md)
	default:
		var ld plog.Logs
		ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(raw)
		b = batch.FromLogs(ld)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSharesAreSafeConcurrently checks that fan-out branches can use their shares of one decoded
// batch at once: an exporter's queue consumer encodes its share while the pipeline worker makes
// the next share. Marking pdata read-only is a plain write in pdata, so it must happen only
// before a share is handed out, never again afterwards (go test -race catches it).
func TestSharesAreSafeConcurrently(t *testing.T) {
	for _, sig := range batch.Signals {
		var b *batch.Batch
		switch sig {
		case batch.Traces:
			b = batch.FromTraces(testdata.Traces(2, 3, 0))
		case batch.Metrics:
			b = batch.FromMetrics(testdata.Metrics(2, 3, 0))
		default:
			b = batch.FromLogs(testdata.Logs(2, 3, 0))
		}
		first := b.Share()
		done := make(chan error, 1)
		go func() {
			_, err := first.Encoded() // an exporter's consumer, in its own goroutine
			done <- err
		}()
		second := b.Share() // the worker, fanning out to the next exporter
		if _, err := second.Encoded(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
