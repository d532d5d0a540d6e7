package batch_test

import (
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
)

// FuzzScan feeds arbitrary bytes to the scanner and to the split built on it. Nothing may panic;
// what Scan accepts must split into parts that each hold at most max items.
func FuzzScan(f *testing.F) {
	for _, s := range signals {
		f.Add(uint8(s.sig), s.encoded(f, 1, 1, 0), uint8(1))
		f.Add(uint8(s.sig), s.encoded(f, 3, 4, 0), uint8(5))
		f.Add(uint8(s.sig), s.encoded(f, 2, 0, 0), uint8(2))
	}
	f.Add(uint8(batch.Metrics), mustEncode(f, batch.FromMetrics(allKinds(3))), uint8(4))
	f.Add(uint8(batch.Traces), []byte{0x0a, 0x00, 0x12, 0x01, 0x00}, uint8(1))
	f.Add(uint8(batch.Traces), request(rawSpan(bytesField(13, msg(bytesField(1, id(16)), bytesField(2, id(8)))))), uint8(1))
	f.Add(uint8(batch.Logs), request(msg(bytesField(9, id(16)), bytesField(10, id(8)))), uint8(1))
	f.Fuzz(func(t *testing.T, sigByte uint8, in []byte, max uint8) {
		sig := batch.Signals[int(sigByte)%len(batch.Signals)]
		n, err := batch.Scan(sig, in)
		if err != nil {
			return
		}
		sum := 0
		if err := batch.ScanResources(sig, in, func(r batch.Resource) {
			if r.Start < 0 || r.End > len(in) || r.Start >= r.End {
				t.Fatalf("resource range [%d, %d) outside the %d-byte input", r.Start, r.End, len(in))
			}
			sum += r.Items
		}); err != nil {
			t.Fatalf("Scan accepted what ScanResources refused: %v", err)
		}
		if sum != n {
			t.Fatalf("resources hold %d items, Scan counted %d", sum, n)
		}
		// What backends refuse a whole request for must have been refused here.
		if err := decodeWithPdata(sig, in); err != nil && (strings.Contains(err.Error(), "TraceID") || strings.Contains(err.Error(), "SpanID")) {
			t.Fatalf("Scan accepted IDs pdata refuses: %v", err)
		}
		b, err := batch.FromEncoded(sig, in)
		if err != nil {
			t.Fatalf("FromEncoded refused what Scan accepted: %v", err)
		}
		m := int(max%16) + 1
		parts, err := batch.Split(b, m)
		if err != nil {
			return // an oversize resource whose items do not decode
		}
		for i, p := range parts {
			if p.Items() > m {
				t.Fatalf("part %d holds %d items, max %d", i, p.Items(), m)
			}
		}
		// Cutting by size (what an exporter does with a request refused as too large) keeps
		// every item, and every part is a request Scan accepts with the items it claims.
		b, _ = batch.FromEncoded(sig, in)
		cap := len(in)*int(max%8+1)/9 + 1
		pieces, err := batch.SplitBytes(b, cap)
		if err != nil {
			t.Fatalf("SplitBytes refused what Scan accepted: %v", err)
		}
		got := 0
		for i, p := range pieces {
			raw, err := p.Encoded()
			if err != nil {
				t.Fatalf("piece %d: %v", i, err)
			}
			k, err := batch.Scan(sig, raw)
			if err != nil || k != p.Items() {
				t.Fatalf("piece %d: Scan says %d items (%v), the piece claims %d", i, k, err, p.Items())
			}
			got += k
		}
		if got != n {
			t.Fatalf("pieces hold %d items, the request %d", got, n)
		}
	})
}

func mustEncode(t testing.TB, b *batch.Batch) []byte {
	t.Helper()
	raw, err := b.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
