package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/testdata"
)

// benchBatch is what an SDK's periodic export typically sends: 1000 spans over 10 resources.
func benchBatch(b *testing.B) *batch.Batch { return benchBatchOf(b, 10, 100) }

func benchBatchOf(b *testing.B, resources, spans int) *batch.Batch {
	b.Helper()
	enc, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(testdata.Traces(resources, spans, 0))
	if err != nil {
		b.Fatal(err)
	}
	bt, err := batch.FromEncoded(batch.Traces, enc)
	if err != nil {
		b.Fatal(err)
	}
	return bt
}

// consumeAll acknowledges everything until ctx ends, as a sender keeping up would.
func consumeAll(ctx context.Context, q Queue, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		_, done, ok := q.Get(ctx)
		if !ok {
			return
		}
		done(true)
	}
}

// BenchmarkWALAppend measures Put on a WAL that a consumer keeps empty. With fsync always,
// concurrent writers share fsyncs (group commit): with small batches, where the fsync's latency
// dominates, 8 writers should far outrun 1; with 1000-span batches the disk's bandwidth limits.
func BenchmarkWALAppend(b *testing.B) {
	type bench struct {
		fsync   FsyncPolicy
		spans   int
		writers int
	}
	var benches []bench
	for _, fsync := range []FsyncPolicy{FsyncAlways, FsyncInterval} {
		for _, writers := range []int{1, 8} {
			benches = append(benches, bench{fsync, 1000, writers})
		}
	}
	benches = append(benches, bench{FsyncAlways, 10, 1}, bench{FsyncAlways, 10, 8})
	for _, bb := range benches {
		fsync, writers := bb.fsync, bb.writers
		bt := benchBatchOf(b, 10, bb.spans/10)
		size := bt.EncodedSize()
		{
			b.Run(fmt.Sprintf("fsync=%s/spans=%d/writers=%d", fsync, bb.spans, writers), func(b *testing.B) {
				opts := walOpts(b)
				opts.Capacity = 1 << 30
				opts.Fsync = fsync
				opts.SegmentBytes = 16 << 20
				w, err := openWAL(opts, walConfig{})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var cwg sync.WaitGroup
				cwg.Add(1)
				go consumeAll(ctx, w, &cwg)

				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := w.Put(context.Background(), bt); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N*bt.Items())/b.Elapsed().Seconds(), "spans/s")
				cancel()
				cwg.Wait()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkWALReplay measures opening a WAL of 64 MiB of pending records (warm page cache):
// "scan" validates every record and rebuilds the queue; "scan+read" also reads every record
// back through Get, as a restart's catch-up does.
func BenchmarkWALReplay(b *testing.B) {
	bt := benchBatch(b)
	opts := walOpts(b)
	opts.Capacity = 1 << 30
	opts.Fsync = FsyncInterval
	w, err := openWAL(opts, walConfig{})
	if err != nil {
		b.Fatal(err)
	}
	n := (64 << 20) / bt.EncodedSize()
	for range n {
		if err := w.Put(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
	}
	total := w.Stats().Bytes
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, read := range []bool{false, true} {
		name := "scan"
		if read {
			name = "scan+read"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				w, err := openWAL(opts, walConfig{checkpointEvery: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				if got := w.Stats().Batches; got != n {
					b.Fatalf("replayed %d of %d", got, n)
				}
				if read {
					for range n {
						if _, _, ok := w.Get(context.Background()); !ok {
							b.Fatal("Get")
						}
					}
				}
				w.crash() // leaves the directory as it was, for the next round
			}
		})
	}
}

// BenchmarkMemoryQueue measures a Put, Get and done round trip.
func BenchmarkMemoryQueue(b *testing.B) {
	bt := benchBatch(b)
	b.Run("serial", func(b *testing.B) {
		q := NewMemory(Options{Capacity: 1000})
		b.SetBytes(int64(bt.EncodedSize()))
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if err := q.Put(ctx, bt); err != nil {
				b.Fatal(err)
			}
			_, done, _ := q.Get(ctx)
			done(true)
		}
	})
	b.Run("4 producers 4 consumers", func(b *testing.B) {
		q := NewMemory(Options{Capacity: 1000, WhenFull: Block})
		b.SetBytes(int64(bt.EncodedSize()))
		b.ReportAllocs()
		ctx, cancel := context.WithCancel(context.Background())
		var cwg sync.WaitGroup
		for range 4 {
			cwg.Add(1)
			go consumeAll(ctx, q, &cwg)
		}
		b.ResetTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if err := q.Put(context.Background(), bt); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		cancel()
		cwg.Wait()
	})
}
