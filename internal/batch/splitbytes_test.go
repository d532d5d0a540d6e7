package batch_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promrw"
)

// checkSplitBytes asserts what every byte split keeps: items conserved and in order, each part
// truthful about its items, and each part at most max bytes unless it holds a single item.
func checkSplitBytes(t *testing.T, s signal, parts []*batch.Batch, max int, want []int64) {
	t.Helper()
	var got []int64
	for i, p := range parts {
		if p.Signal() != s.sig {
			t.Fatalf("part %d carries %s", i, p.Signal())
		}
		enc, err := p.Encoded()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if n, err := batch.Scan(s.sig, enc); err != nil || n != p.Items() {
			t.Errorf("part %d: scan finds %d items (%v), Items() = %d", i, n, err, p.Items())
		}
		if len(enc) > max && p.Items() > 1 {
			t.Errorf("part %d: %d bytes > %d with %d items", i, len(enc), max, p.Items())
		}
		if size := p.EncodedSize(); size != len(enc) {
			t.Errorf("part %d: EncodedSize %d, encoded %d bytes", i, size, len(enc))
		}
		seqs := s.seqs(t, p)
		if len(seqs) != p.Items() {
			t.Errorf("part %d: Items() = %d but it holds %d", i, p.Items(), len(seqs))
		}
		got = append(got, seqs...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("seqs across parts = %v, want %v", got, want)
	}
}

func TestSplitBytes(t *testing.T) {
	for _, s := range signals {
		for _, encoded := range []bool{true, false} {
			t.Run(formName(s, encoded), func(t *testing.T) {
				f := func(resources, items int, max func(size int) int, minParts int) {
					t.Helper()
					b := s.decoded(resources, items, 0)
					if encoded {
						b = s.fromEncoded(t, resources, items, 0)
					}
					size := b.EncodedSize()
					parts, err := batch.SplitBytes(b, max(size))
					if err != nil {
						t.Fatalf("%d×%d max %d: %v", resources, items, max(size), err)
					}
					if len(parts) < minParts {
						t.Errorf("%d×%d max %d of %d: %d parts, want at least %d", resources, items, max(size), size, len(parts), minParts)
					}
					checkSplitBytes(t, s, parts, max(size), span(0, resources*items))
				}
				whole := func(size int) int { return size }
				half := func(size int) int { return (size + 1) / 2 }
				tenth := func(size int) int { return size / 10 }
				tiny := func(int) int { return 1 } // every item on its own
				f(1, 5, whole, 1)
				f(10, 10, half, 2)
				f(10, 10, tenth, 10)
				f(1, 40, half, 2)   // one resource cut at item level
				f(1, 40, tenth, 10) // one resource cut into many
				f(3, 7, tiny, 21)
				f(20, 50, func(size int) int { return size / 7 }, 7)
			})
		}
	}
}

// TestSplitBytesEncodedWholeResources: resources that fit are grouped as the original bytes, cut,
// and the batch split stays whole, for a sender that retries it.
func TestSplitBytesEncodedWholeResources(t *testing.T) {
	for _, s := range signals {
		raw := s.encoded(t, 9, 4, 0)
		b, err := batch.FromEncoded(s.sig, raw)
		if err != nil {
			t.Fatal(err)
		}
		one := len(s.encoded(t, 1, 4, 0))
		parts, err := batch.SplitBytes(b, 2*one+2) // two resources a part (their indexes differ by a byte or so)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 5 {
			t.Errorf("%s: %d parts, want 5", s.sig, len(parts))
		}
		checkEndToEnd(t, s.sig, parts, raw)
		checkSplitBytes(t, s, parts, 2*one+2, span(0, 36))
		if enc, _ := b.Encoded(); !bytes.Equal(enc, raw) || b.Items() != 36 || b.IsDecoded() {
			t.Errorf("%s: the split changed its input", s.sig)
		}
	}
}

// TestSplitBytesKeepsTheShells: each part of a cut resource carries its resource and scope, and
// each part of a cut metric its name, type, unit, metadata and temporality, written without
// decoding.
func TestSplitBytesKeepsTheShells(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://schema/r")
	rs.Resource().Attributes().PutStr("service.name", "shell")
	for i := range 3 {
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("scope")
		ss.Scope().SetVersion(string(rune('a' + i)))
		ss.SetSchemaUrl("https://schema/s")
		for j := range 20 {
			sp := ss.Spans().AppendEmpty()
			sp.SetName("span")
			sp.Attributes().PutInt("seq", int64(i*20+j))
		}
	}
	raw, err := batch.FromTraces(td).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, raw)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := batch.SplitBytes(b, len(raw)/7)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if p.IsDecoded() {
			t.Errorf("part %d was decoded", i)
		}
	}
	checkSplitBytes(t, signals[0], parts, len(raw)/7, span(0, 60))
	for i, p := range parts {
		got, err := p.Traces()
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range got.ResourceSpans().All() {
			if v, _ := rs.Resource().Attributes().Get("service.name"); v.Str() != "shell" || rs.SchemaUrl() != "https://schema/r" {
				t.Errorf("part %d: resource %v, schema %q", i, rs.Resource().Attributes().AsRaw(), rs.SchemaUrl())
			}
			for _, ss := range rs.ScopeSpans().All() {
				first, _ := ss.Spans().At(0).Attributes().Get("seq")
				wantVersion := string(rune('a' + first.Int()/20))
				if ss.Scope().Name() != "scope" || ss.Scope().Version() != wantVersion || ss.SchemaUrl() != "https://schema/s" {
					t.Errorf("part %d: scope %q %q (want %q), schema %q", i, ss.Scope().Name(), ss.Scope().Version(), wantVersion, ss.SchemaUrl())
				}
			}
		}
	}

	// Metrics are cut inside their data points.
	mraw, err := batch.FromMetrics(allKinds(7)).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	mb, err := batch.FromEncoded(batch.Metrics, mraw)
	if err != nil {
		t.Fatal(err)
	}
	mparts, err := batch.SplitBytes(mb, len(mraw)/10)
	if err != nil {
		t.Fatal(err)
	}
	checkSplitBytes(t, signals[1], mparts, len(mraw)/10, span(0, 35))
	pieces := checkMetricShells(t, mparts)
	for name, n := range pieces {
		if n < 2 {
			t.Errorf("metric %s appears in %d parts, want it cut", name, n)
		}
	}
}

// TestSplitBytesOversizeItem: an item larger than the cap goes alone; the others around it are
// grouped as usual.
func TestSplitBytesOversizeItem(t *testing.T) {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range 9 {
		sp := ss.Spans().AppendEmpty()
		sp.Attributes().PutInt("seq", int64(i))
		if i == 4 {
			sp.Attributes().PutStr("blob", string(bytes.Repeat([]byte("x"), 10_000)))
		}
	}
	raw, err := batch.FromTraces(td).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	for _, encoded := range []bool{true, false} {
		var b *batch.Batch
		if encoded {
			if b, err = batch.FromEncoded(batch.Traces, raw); err != nil {
				t.Fatal(err)
			}
		} else {
			c := ptrace.NewTraces()
			td.CopyTo(c)
			b = batch.FromTraces(c)
		}
		parts, err := batch.SplitBytes(b, 1000)
		if err != nil {
			t.Fatal(err)
		}
		checkSplitBytes(t, signals[0], parts, 1000, span(0, 9))
		big := 0
		for _, p := range parts {
			if p.EncodedSize() > 1000 {
				big++
				if p.Items() != 1 {
					t.Errorf("encoded=%v: an oversize part holds %d items", encoded, p.Items())
				}
			}
		}
		if big != 1 || len(parts) < 3 {
			t.Errorf("encoded=%v: %d parts, %d over the cap; want the blob alone between the others", encoded, len(parts), big)
		}
	}
}

// TestSplitBytesUnknownFields: unknown request-level fields between resources stay with the
// resource before them.
func TestSplitBytesUnknownFields(t *testing.T) {
	s := signals[2]
	var raw []byte
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7)
	raw = append(raw, s.encoded(t, 1, 3, 0)...)
	raw = append(raw, unknown...)
	raw = append(raw, s.encoded(t, 1, 3, 3)...)
	b, err := batch.FromEncoded(s.sig, raw)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := batch.SplitBytes(b, len(raw)-1)
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	first, _ := parts[0].Encoded()
	if !bytes.HasSuffix(first, unknown) {
		t.Error("the unknown field did not stay with the resource before it")
	}
	checkSplitBytes(t, s, parts, len(raw)-1, span(0, 6))
}

// TestSplitBytesRandom cuts random shapes at random caps, encoded and decoded.
func TestSplitBytesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s := signals[rng.IntN(len(signals))]
		resources, items := 1+rng.IntN(6), rng.IntN(30)
		raw := s.encoded(t, resources, items, 0)
		max := 1 + rng.IntN(len(raw)+50)
		for _, encoded := range []bool{true, false} {
			b := s.decoded(resources, items, 0)
			if encoded {
				b = s.fromEncoded(t, resources, items, 0)
			}
			parts, err := batch.SplitBytes(b, max)
			if err != nil {
				t.Fatalf("%s %d×%d max %d: %v", s.sig, resources, items, max, err)
			}
			checkSplitBytes(t, s, parts, max, span(0, resources*items))
		}
	}
}

func TestSplitBytesRejectsBadMax(t *testing.T) {
	for _, max := range []int{0, -1} {
		if _, err := batch.SplitBytes(signals[0].decoded(1, 1, 0), max); err == nil {
			t.Errorf("SplitBytes with max %d succeeded", max)
		}
	}
}

func TestSplitBytesAcks(t *testing.T) {
	for _, s := range signals {
		h := ack.New()
		for _, b := range []*batch.Batch{s.fromEncoded(t, 4, 5, 0), s.decoded(4, 5, 0)} {
			b.SetAcks(h.Set())
			b.SetEndToEnd(true)
			parts, err := batch.SplitBytes(b, b.EncodedSize()/3)
			if err != nil || len(parts) < 3 {
				t.Fatalf("%s: %d parts, %v", s.sig, len(parts), err)
			}
			for i, p := range parts {
				if a := p.Acks(); len(a) != 1 || a[0] != h || !p.EndToEnd() {
					t.Errorf("%s part %d: acks %v, end to end %v", s.sig, i, a, p.EndToEnd())
				}
			}
		}
	}
}

// TestSplitBytesPromRW: remote write is cut between series, and each part carries the metadata
// within the cap.
func TestSplitBytesPromRW(t *testing.T) {
	body := rwBody(t, 10, 3, 0)
	b, err := batch.FromPromRW(body)
	if err != nil {
		t.Fatal(err)
	}
	max := len(body) / 4
	parts, err := batch.SplitBytes(b, max)
	if err != nil || len(parts) < 4 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	var all []float64
	for i, p := range parts {
		rw, ok := p.PromRW()
		if !ok || p.IsDecoded() || len(rw) > max {
			t.Errorf("part %d: remote write %v, %d bytes (cap %d)", i, ok, len(rw), max)
		}
		samples, _, _, err := promrw.CountV1(rw)
		if err != nil || samples != p.Items() {
			t.Errorf("part %d: %d samples (%v), claims %d", i, samples, err, p.Items())
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(rw); err != nil || len(req.Metadata) != 1 {
			t.Errorf("part %d: metadata %v (%v)", i, req.Metadata, err)
		}
		all = append(all, values(t, p)...)
	}
	want := make([]float64, 30)
	for i := range want {
		want[i] = float64(i)
	}
	if !slices.Equal(all, want) {
		t.Errorf("values %v", all)
	}
}

// FuzzSplitBytes: whatever request the scan accepts, a byte split neither fails nor loses items,
// and every part is a request the scan accepts.
func FuzzSplitBytes(f *testing.F) {
	for _, s := range signals {
		f.Add(uint8(s.sig), s.encoded(f, 2, 3, 0), uint16(100))
	}
	f.Add(uint8(batch.Metrics), func() []byte {
		raw, _ := batch.FromMetrics(allKinds(3)).Encoded()
		return raw
	}(), uint16(150))
	f.Fuzz(func(t *testing.T, sig uint8, raw []byte, max uint16) {
		if int(sig) >= len(batch.Signals) || max == 0 {
			return
		}
		s := batch.Signals[sig]
		b, err := batch.FromEncoded(s, raw)
		if err != nil {
			return
		}
		parts, err := batch.SplitBytes(b, int(max))
		if err != nil {
			t.Fatalf("split of an accepted request: %v", err)
		}
		total := 0
		for i, p := range parts {
			enc, err := p.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			n, err := batch.Scan(s, enc)
			if err != nil || n != p.Items() {
				t.Fatalf("part %d: scan %d items (%v), claims %d", i, n, err, p.Items())
			}
			total += n
		}
		if total != b.Items() {
			t.Fatalf("parts hold %d items, want %d", total, b.Items())
		}
	})
}

// checkMetricShells checks that every piece of a metric in parts says what stream it belongs to
// (as allKinds built it), and returns how many parts each metric appears in.
func checkMetricShells(t *testing.T, parts []*batch.Batch) map[string]int {
	t.Helper()
	want := map[string]pmetric.MetricType{
		"gauge":                 pmetric.MetricTypeGauge,
		"sum":                   pmetric.MetricTypeSum,
		"histogram":             pmetric.MetricTypeHistogram,
		"exponential_histogram": pmetric.MetricTypeExponentialHistogram,
		"summary":               pmetric.MetricTypeSummary,
	}
	pieces := map[string]int{}
	for _, p := range parts {
		md, err := p.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, rm := range md.ResourceMetrics().All() {
			if v, _ := rm.Resource().Attributes().Get("service.name"); v.Str() != "kinds" {
				t.Error("resource lost in a part")
			}
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					pieces[m.Name()]++
					if m.Type() != want[m.Name()] {
						t.Errorf("%s: type %s", m.Name(), m.Type())
					}
					if m.Unit() != "By" || m.Description() != "about "+m.Name() {
						t.Errorf("%s: unit %q description %q", m.Name(), m.Unit(), m.Description())
					}
					if v, _ := m.Metadata().Get("origin"); v.Str() != m.Name() {
						t.Errorf("%s: metadata lost", m.Name())
					}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative || !m.Sum().IsMonotonic() {
							t.Error("sum lost temporality or monotonicity")
						}
					case pmetric.MetricTypeHistogram:
						if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityDelta {
							t.Error("histogram lost temporality")
						}
						if dp := m.Histogram().DataPoints().At(0); dp.BucketCounts().Len() != 2 {
							t.Error("histogram point lost its buckets")
						}
					case pmetric.MetricTypeExponentialHistogram:
						if m.ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
							t.Error("exponential histogram lost temporality")
						}
					}
				}
			}
		}
	}
	return pieces
}
