package serieslimit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
)

// FuzzRemoteWrite feeds bodies from outside through the remote-write path with a small limit,
// so that both the pass-through and the cutting path run. A body the receiver would accept must
// come out valid with a matching item count; no body may panic the processor.
func FuzzRemoteWrite(f *testing.F) {
	f.Add(rwBody(span(0, 5)...))
	for _, name := range []string{"v1_basic.bin", "v1_pods.bin"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "internal", "promrw", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	fx := newFixture(f, 3, time.Hour)
	var last *batch.Batch
	fx.l.next = component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error { last = b; return nil })
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = fx.l.Consume(context.Background(), batch.FromPromRWTrusted(body, 0))
		b, err := batch.FromPromRW(body)
		if err != nil {
			return
		}
		last = nil
		if err := fx.l.Consume(context.Background(), b); err != nil {
			t.Fatalf("a valid body was refused: %v", err)
		}
		if last == nil {
			return
		}
		out, _ := last.PromRW()
		samples, hists, _, err := promrw.CountV1(out)
		if err != nil {
			t.Fatalf("output is not valid remote write: %v", err)
		}
		if samples+hists != last.Items() {
			t.Fatalf("batch says %d items, body holds %d", last.Items(), samples+hists)
		}
	})
}
