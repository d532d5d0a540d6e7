package batchprocessor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

// burstTraces and burstSpans make the burst a user reported: 3 900 traces of 8 spans, one per
// request, arriving within one timeout: about 4.9 MB, more than gRPC's default 4 MiB.
const (
	burstTraces = 3900
	burstSpans  = 8
)

// TestMaxBytesBurst: a burst joined within one timeout leaves in batches of at most
// send_batch_max_bytes, with every span, in order, and no request is acknowledged before every
// part carrying the send went out.
func TestMaxBytesBurst(t *testing.T) {
	const maxBytes = 1 << 20
	for _, encodedIn := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			var (
				mu      sync.Mutex
				out     []*batch.Batch
				handles []*ack.Handle
				early   int // parts that arrived after some request was acknowledged
			)
			next := component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				out = append(out, b)
				for _, h := range handles {
					if h.Done() {
						early++
						break
					}
				}
				return nil
			})
			p := start(t, &Config{SendBatchSize: 1 << 20, SendBatchMaxBytes: maxBytes, Timeout: time.Second}, next, settings())
			inBytes := 0
			for i := range burstTraces {
				b := decoded(1, burstSpans, i*burstSpans)
				if encodedIn {
					b = encoded(t, 1, burstSpans, i*burstSpans)
				}
				inBytes += b.EncodedSize()
				b, h := withHandle(b)
				mu.Lock()
				handles = append(handles, h)
				mu.Unlock()
				consume(t, p, b)
				h.Release(nil)
			}
			if inBytes <= 4<<20 {
				t.Fatalf("the burst is %d bytes, want more than 4 MiB", inBytes)
			}
			time.Sleep(time.Second)
			synctest.Wait()

			mu.Lock()
			parts := slices.Clone(out)
			mu.Unlock()
			if len(parts) < inBytes/maxBytes+1 {
				t.Errorf("encoded=%v: %d batches for %d bytes under a %d-byte cap", encodedIn, len(parts), inBytes, maxBytes)
			}
			var got []int64
			total := 0
			for i, b := range parts {
				if size := b.EncodedSize(); size > maxBytes {
					t.Errorf("encoded=%v: batch %d is %d bytes, cap %d", encodedIn, i, size, maxBytes)
				}
				if encodedIn && (!b.IsEncoded() || b.IsDecoded()) {
					t.Errorf("batch %d: encoded input left the processor decoded", i)
				}
				total += b.Items()
				got = append(got, batchSeqs(t, b)...)
			}
			// The seq numbers run across requests, each its own resource: in order means the
			// resources kept their order too.
			if total != burstTraces*burstSpans || !slices.Equal(got, upTo(burstTraces*burstSpans)) {
				t.Errorf("encoded=%v: %d spans counted, %d received, in order: %v", encodedIn, total, len(got), slices.Equal(got, upTo(len(got))))
			}
			if early > 0 {
				t.Errorf("encoded=%v: %d parts were sent after a request was acknowledged", encodedIn, early)
			}
			for i, h := range handles {
				if !h.Done() || h.Err() != nil {
					t.Fatalf("request %d: done=%v err=%v after the send", i, h.Done(), h.Err())
				}
			}
			shutdown(t, p)
		})
	}
}

// TestMaxBytesWithMaxSize: both caps apply; the byte cap cuts what the item cap left too big, and
// a size-triggered remainder waits for more as with the item cap alone.
func TestMaxBytesWithMaxSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		one := encoded(t, 1, 10, 0).EncodedSize() // a 10-span request
		var maxBytes = uint32(one*2 + one/2)      // two and a half requests
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 40, SendBatchMaxSize: 60, SendBatchMaxBytes: maxBytes, Timeout: time.Hour}, sink, settings())
		for i := range 7 {
			consume(t, p, encoded(t, 1, 10, i*10))
		}
		synctest.Wait()
		// 40 items trigger a send, which the item cap leaves whole and the byte cap cuts into
		// 20 + 20; the last 20, below send_batch_size, go back to wait for more. Twice: 70 items
		// make two sends of 20 and leave 30.
		if got := sizes(sink); !slices.Equal(got, []int{20, 20}) {
			t.Fatalf("sent %v, want [20 20]", got)
		}
		shutdown(t, p)
		if got := sizes(sink); !slices.Equal(got, []int{20, 20, 20, 10}) {
			t.Fatalf("after shutdown sent %v, want [20 20 20 10]", got)
		}
		if got := seqs(t, sink); !slices.Equal(got, upTo(70)) {
			t.Errorf("seqs %v", got)
		}
		for i, b := range sink.Batches() {
			if b.EncodedSize() > int(maxBytes) {
				t.Errorf("batch %d: %d bytes over the cap %d", i, b.EncodedSize(), maxBytes)
			}
		}
	})
}

// TestMaxBytesOff: without the cap a batch leaves whole, however big.
func TestMaxBytesOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 1 << 20, Timeout: time.Second}, sink, settings())
		for i := range 500 {
			consume(t, p, encoded(t, 1, burstSpans, i*burstSpans))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{500 * burstSpans}) {
			t.Fatalf("sent %v, want one batch", got)
		}
		shutdown(t, p)
	})
}
