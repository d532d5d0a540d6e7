package relabel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
)

// FuzzRemoteWrite feeds bodies from outside through the remote-write path. A body the receiver
// would accept must come out as a valid body whose item count matches the batch; any body, even
// one wrapped as trusted without validation, must not panic the processor.
func FuzzRemoteWrite(f *testing.F) {
	f.Add(rwBody(f, seriesIn...))
	if in, err := os.ReadFile(filepath.Join("testdata", "input.bin")); err == nil {
		f.Add(in)
	}
	for _, name := range []string{"v1_basic.bin", "v1_pods.bin"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "internal", "promrw", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	proc, _, _ := newTest(f, `metric_relabel_configs:
  - {source_labels: [__name__], regex: '.*_total', action: drop}
  - {source_labels: [job, instance], regex: '(.+);(.*):\d+', target_label: host, replacement: '$2'}
  - {regex: 'tmp_.*|pod', action: labeldrop}
  - {source_labels: [job], target_label: job, action: uppercase}
`)
	// Keep only the last batch: a sink would hold every batch of the run.
	p := proc.(*processor)
	var last *batch.Batch
	p.next = component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error { last = b; return nil })
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = p.Consume(context.Background(), batch.FromPromRWTrusted(body, 0))
		b, err := batch.FromPromRW(body)
		if err != nil {
			return
		}
		last = nil
		if err := p.Consume(context.Background(), b); err != nil {
			t.Fatalf("a valid body was refused: %v", err)
		}
		if last == nil {
			return // every series dropped
		}
		got := last
		out, ok := got.PromRW()
		if !ok {
			t.Fatal("output is not remote write")
		}
		samples, hists, _, err := promrw.CountV1(out)
		if err != nil {
			t.Fatalf("output is not valid remote write: %v", err)
		}
		if samples+hists != got.Items() {
			t.Fatalf("batch says %d items, body holds %d", got.Items(), samples+hists)
		}
	})
}
