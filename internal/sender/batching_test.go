package sender

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/testdata"
)

func batchingConfig(minSize, maxSize int, flush time.Duration) Config {
	cfg := queueConfig(1000, 1, queue.Block, time.Second)
	cfg.Queue.Batch = &BatchConfig{MinSize: minSize, MaxSize: maxSize, FlushTimeout: flush, Sizer: queue.SizeItems}
	return cfg
}

// seqs decodes (a clone of) b and returns the seq attribute of every span, in order.
func seqs(t *testing.T, b *batch.Batch) []int64 {
	t.Helper()
	wire, err := b.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(wire)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				v, _ := sp.Attributes().Get("seq")
				out = append(out, v.Int())
			}
		}
	}
	return out
}

func seqRange(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

// TestBatchingMergesEncoded: queued encoded batches are merged by concatenating their bytes
// (nothing is decoded) until min_size, never past max_size.
func TestBatchingMergesEncoded(t *testing.T) {
	f := func(name string, minSize, maxSize int, parts []int, wantSizes []int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv()
				k := &sink{}
				s := mustNewStopped(t, e, batchingConfig(minSize, maxSize, time.Minute), k.send)
				var want []byte
				first := 0
				for _, n := range parts {
					b := encodedTraces(t, n, first)
					enc, _ := b.Encoded()
					want = append(want, enc...)
					first += n
					if err := s.Consume(context.Background(), b); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if time.Since(start) != 0 {
					t.Fatalf("took %v", time.Since(start))
				}
				got := k.got()
				var sizes []int
				var all []byte
				for _, b := range got {
					if b.IsDecoded() || !b.IsEncoded() {
						t.Errorf("a merged batch was decoded (encoded %v, decoded %v)", b.IsEncoded(), b.IsDecoded())
					}
					sizes = append(sizes, b.Items())
					enc, _ := b.Encoded()
					all = append(all, enc...)
				}
				if !slices.Equal(sizes, wantSizes) {
					t.Errorf("sent sizes %v, want %v", sizes, wantSizes)
				}
				if !bytes.Equal(all, want) {
					t.Errorf("the requests sent are not the queued bytes, concatenated in order")
				}
				if e.cnt.Get(component.Sent) != first {
					t.Errorf("sent %d, want %d", e.cnt.Get(component.Sent), first)
				}
			})
		})
	}
	f("until min_size", 10, 0, []int{3, 3, 3, 3}, []int{12})
	f("never past max_size", 7, 8, []int{3, 3, 3, 3, 2}, []int{6, 8})
	f("min_size 0 sends each", 0, 0, []int{3, 3}, []int{3, 3})
}

// TestBatchingSplitsOversize: a queued batch above max_size is cut into requests of at most
// max_size, still without decoding (each resource here holds 3 spans).
func TestBatchingSplitsOversize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		k := &sink{}
		s := mustNewStopped(t, e, batchingConfig(1, 7, time.Minute), k.send)
		wire, _ := batch.FromTraces(testdata.Traces(5, 3, 0)).Encoded()
		b, _ := batch.FromEncoded(batch.Traces, wire)
		_ = s.Consume(context.Background(), b)
		_ = s.Start(context.Background())
		synctest.Wait()
		var sizes []int
		var got []int64
		for _, b := range k.got() {
			if b.IsDecoded() {
				t.Error("split decoded the batch")
			}
			sizes = append(sizes, b.Items())
			got = append(got, seqs(t, b)...)
		}
		if !slices.Equal(sizes, []int{6, 6, 3}) || !slices.Equal(got, seqRange(0, 15)) {
			t.Fatalf("sizes %v, seqs %v", sizes, got)
		}
	})
}

// TestBatchingFlushTimeout: what does not reach min_size goes out flush_timeout after the first
// part was taken; signals are batched apart.
func TestBatchingFlushTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		k := &sink{}
		s := mustNew(t, e, batchingConfig(100, 0, 3*time.Second), k.send)
		start := time.Now()
		_ = s.Consume(context.Background(), encodedTraces(t, 2, 0))
		time.Sleep(time.Second)
		_ = s.Consume(context.Background(), batch.FromLogs(testdata.Logs(1, 4, 0)))
		_ = s.Consume(context.Background(), encodedTraces(t, 2, 2))
		synctest.Wait()
		if len(k.got()) != 0 {
			t.Fatalf("sent before flush_timeout: %d batches", len(k.got()))
		}
		time.Sleep(2*time.Second - time.Nanosecond)
		synctest.Wait()
		if len(k.got()) != 0 {
			t.Fatal("sent before flush_timeout")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		got := k.got()
		if len(got) != 1 || got[0].Signal() != batch.Traces || got[0].Items() != 4 || k.at(0).Sub(start) != 3*time.Second {
			t.Fatalf("at 3s sent %d batches, first %v items %d", len(got), got[0].Signal(), got[0].Items())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got = k.got()
		if len(got) != 2 || got[1].Signal() != batch.Logs || got[1].Items() != 4 || k.at(1).Sub(start) != 4*time.Second {
			t.Fatalf("at 4s sent %d batches", len(got))
		}
		if !slices.Equal(seqs(t, got[0]), seqRange(0, 4)) {
			t.Fatalf("traces merged out of order: %v", seqs(t, got[0]))
		}
	})
}

// TestBatchingShutdownFlushes: a memory queue's consumers send what they hold at shutdown
// without waiting for flush_timeout.
func TestBatchingShutdownFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		k := &sink{}
		s := mustNew(t, e, batchingConfig(100, 0, time.Hour), k.send)
		for i := range 3 {
			_ = s.Consume(context.Background(), encodedTraces(t, 2, 2*i))
		}
		synctest.Wait()
		start := time.Now()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 || k.items() != 6 || len(k.got()) != 1 {
			t.Fatalf("Shutdown took %v and sent %d items in %d batches", time.Since(start), k.items(), len(k.got()))
		}
	})
}

// TestBatchingQueueHeld: when the parts consumers hold fill the queue, they are sent at once
// rather than at flush_timeout, since nothing more could come in until then.
func TestBatchingQueueHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		k := &sink{}
		cfg := batchingConfig(100, 0, time.Hour)
		cfg.Queue.QueueSize = 4
		cfg.Queue.BlockTimeout = time.Minute
		s := mustNew(t, e, cfg, k.send)
		for i := range 10 {
			if err := s.Consume(context.Background(), encodedTraces(t, 1, i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := k.items(); got < 8 {
			t.Fatalf("sent %d of 10 items at once, want at least 8 (the rest may wait for flush_timeout)", got)
		}
		for _, b := range k.got() {
			if b.Items() > 4 {
				t.Fatalf("sent a batch of %d items from a queue of 4", b.Items())
			}
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if k.items() != 10 {
			t.Fatalf("sent %d, want 10", k.items())
		}
	})
}
