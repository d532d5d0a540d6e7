package batchprocessor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// withHandle gives b a fresh completion handle whose owner has released it, as a receiver
// does once Consume returned: the handle completes when the processor lets go.
func withHandle(b *batch.Batch) (*batch.Batch, *ack.Handle) {
	h := ack.New()
	b.SetAcks(h.Set())
	return b, h
}

// TestHoldsUntilSent: a buffered batch's handle completes only once the send that carries it
// returned, at the timeout, by size, or at shutdown; never while the data sits in the buffer.
func TestHoldsUntilSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, Timeout: time.Second}, sink, settings())
		b1, h1 := withHandle(encoded(t, 1, 4, 0))
		consume(t, p, b1)
		h1.Release(nil)
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if h1.Done() {
			t.Fatal("acknowledged while the data was still in the buffer")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !h1.Done() || h1.Err() != nil || sink.Items() != 4 {
			t.Fatalf("at the timeout: done=%v err=%v sent=%d, want done, nil, 4", h1.Done(), h1.Err(), sink.Items())
		}

		// Size: the request that tips the buffer over and the one waiting before it complete together.
		b2, h2 := withHandle(encoded(t, 1, 6, 4))
		b3, h3 := withHandle(encoded(t, 1, 6, 10))
		consume(t, p, b2)
		h2.Release(nil)
		if h2.Done() {
			t.Fatal("h2 done before its data was sent")
		}
		consume(t, p, b3)
		h3.Release(nil)
		if !h2.Done() || !h3.Done() {
			t.Fatalf("after the size-triggered send: h2 done=%v h3 done=%v", h2.Done(), h3.Done())
		}

		// Shutdown flushes and completes.
		b4, h4 := withHandle(encoded(t, 1, 1, 16))
		consume(t, p, b4)
		h4.Release(nil)
		shutdown(t, p)
		if !h4.Done() || sink.Items() != 17 {
			t.Fatalf("after shutdown: done=%v sent=%d", h4.Done(), sink.Items())
		}
	})
}

// TestRefusalReachesTheClients: what the downstream said of a send is every carried request's
// outcome: a retryable refusal (a full queue) makes the clients retry instead of the data being
// logged and lost, and a permanent one tells them it was refused.
func TestRefusalReachesTheClients(t *testing.T) {
	f := func(name string, downstream error, check func(error) bool) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{Err: downstream}
			p := start(t, &Config{SendBatchSize: 100, Timeout: time.Second}, sink, settings())
			var hs []*ack.Handle
			for i := range 3 {
				b, h := withHandle(encoded(t, 1, 2, 2*i))
				consume(t, p, b)
				h.Release(nil)
				hs = append(hs, h)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			for i, h := range hs {
				if !h.Done() || !check(h.Err()) {
					t.Errorf("%s: request %d: done=%v err=%v", name, i, h.Done(), h.Err())
				}
			}
			shutdown(t, p)
		})
	}
	f("backpressure", consumererror.NewBackpressure(errors.New("queue full"), time.Second), consumererror.IsBackpressure)
	f("permanent", consumererror.NewPermanent(errors.New("invalid")), consumererror.IsPermanent)
	f("accepted", nil, func(err error) bool { return err == nil })
}

// TestRemainderHoldsItsRequests: when a cap splits a size-triggered send and the remainder
// goes back to the buffer, the requests with items in it stay unacknowledged until it is sent.
func TestRemainderHoldsItsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, SendBatchMaxSize: 10, Timeout: time.Second}, sink, settings())
		b1, h1 := withHandle(decoded(1, 4, 0))
		b2, h2 := withHandle(decoded(1, 9, 4)) // 13: 10 sent now, 3 (of b2) kept
		consume(t, p, b1)
		h1.Release(nil)
		consume(t, p, b2)
		h2.Release(nil)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10}) {
			t.Fatalf("sent %v, want [10]", got)
		}
		if h2.Done() {
			t.Fatal("b2 acknowledged while 3 of its items are still buffered")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10, 3}) || !h1.Done() || !h2.Done() {
			t.Fatalf("sent %v, h1 done=%v, h2 done=%v; want [10 3], both done", got, h1.Done(), h2.Done())
		}
		shutdown(t, p)
	})
}

// TestHoldsAcrossHolders: a downstream that holds the batch too (an exporter in end_to_end
// mode) keeps the request open after the processor let go; the processor hands the handles
// on with the batch.
func TestHoldsAcrossHolders(t *testing.T) {
	var (
		mu   sync.Mutex
		kept []*batch.Batch
	)
	next := component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error {
		b.Acks().Hold()
		mu.Lock()
		kept = append(kept, b)
		mu.Unlock()
		return nil
	})
	p := start(t, &Config{SendBatchSize: 2, Timeout: time.Hour}, next, settings())
	b1, h1 := withHandle(encoded(t, 1, 1, 0))
	b2, h2 := withHandle(encoded(t, 1, 1, 1))
	consume(t, p, b1)
	consume(t, p, b2)
	h1.Release(nil)
	h2.Release(nil)
	if h1.Done() || h2.Done() {
		t.Fatal("done while the downstream still holds the data")
	}
	if len(kept) != 1 || len(kept[0].Acks()) != 2 {
		t.Fatalf("downstream got %d batches; the first carries %d handles, want 1 carrying 2", len(kept), len(kept[0].Acks()))
	}
	kept[0].Acks().Release(nil)
	if !h1.Done() || !h2.Done() {
		t.Fatal("not done after the downstream released")
	}
	shutdown(t, p)
}

// BenchmarkConsumeWithAcks is the processor's cost per request with and without completion
// handles: the hold, the union in Concat and the release.
func BenchmarkConsumeWithAcks(b *testing.B) {
	for _, withAcks := range []bool{false, true} {
		name := "without"
		if withAcks {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			raw, err := encoded(b, 1, 100, 0).Encoded()
			if err != nil {
				b.Fatal(err)
			}
			p := newProcessor(settings(), &Config{SendBatchSize: 800, Timeout: time.Hour}, batch.Traces, component.Discard)
			if err := p.Start(context.Background(), component.NopHost{}); err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				in, _ := batch.FromEncoded(batch.Traces, raw)
				var h *ack.Handle
				if withAcks {
					h = ack.New()
					in.SetAcks(h.Set())
				}
				_ = p.Consume(context.Background(), in)
				if withAcks {
					h.Release(nil)
				}
			}
		})
	}
}

// TestIdleTimeout: while a client waits for pending data, the buffer is sent once no batch
// arrived for idle_timeout; without a waiting client (acknowledgements: none) only the size
// and the timeout send, as in the Collector.
func TestIdleTimeout(t *testing.T) {
	cfg := &Config{SendBatchSize: 100, Timeout: time.Second, IdleTimeout: 10 * time.Millisecond}
	t.Run("clients waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{}
			p := start(t, cfg, sink, settings())
			b1, h1 := withHandle(encoded(t, 1, 2, 0))
			consume(t, p, b1)
			h1.Release(nil)
			time.Sleep(6 * time.Millisecond)
			b2, h2 := withHandle(encoded(t, 1, 2, 2)) // moves the idle deadline to 16ms
			consume(t, p, b2)
			h2.Release(nil)
			time.Sleep(9 * time.Millisecond)
			synctest.Wait()
			if sink.Items() != 0 {
				t.Fatalf("sent %v while batches were still arriving", sizes(sink))
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if got := sizes(sink); !slices.Equal(got, []int{4}) || !h1.Done() || !h2.Done() {
				t.Fatalf("10ms after the last batch: sent %v, done %v %v; want [4], both done", got, h1.Done(), h2.Done())
			}
			shutdown(t, p)
		})
	})
	t.Run("nobody waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{}
			p := start(t, cfg, sink, settings())
			consume(t, p, encoded(t, 1, 2, 0))
			time.Sleep(999 * time.Millisecond)
			synctest.Wait()
			if sink.Items() != 0 {
				t.Fatalf("sent %v before the timeout with no client waiting", sizes(sink))
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if got := sizes(sink); !slices.Equal(got, []int{2}) {
				t.Fatalf("at the timeout sent %v, want [2]", got)
			}
			shutdown(t, p)
		})
	})
	t.Run("a waiting client joins", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{}
			p := start(t, cfg, sink, settings())
			consume(t, p, encoded(t, 1, 2, 0)) // nobody waits: the loop sleeps until the timeout
			time.Sleep(500 * time.Millisecond)
			b, h := withHandle(encoded(t, 1, 2, 2))
			consume(t, p, b)
			h.Release(nil)
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			if got := sizes(sink); !slices.Equal(got, []int{4}) || !h.Done() {
				t.Fatalf("idle_timeout after the waiting client's batch: sent %v, done %v; want [4], done", got, h.Done())
			}
			shutdown(t, p)
		})
	})
}

// TestAdaptiveIdle: the default idle timeout learns from the traffic. Clients that each wait
// for their answer before sending again (a closed loop) are answered soon after the last of
// them sent, whether there are several or one; steady traffic (an open loop) keeps filling its
// batches up to send_batch_size.
func TestAdaptiveIdle(t *testing.T) {
	// closedLoop runs clients that each send a 100-item request, wait for its answer and send
	// the next one turnaround later, for rounds answers each, and returns the slowest and the
	// median answer once the processor has learnt.
	closedLoop := func(t *testing.T, clients, rounds int, turnaround time.Duration) (slowest, median time.Duration, sizes []int) {
		var waits []time.Duration
		sink := &componenttest.Sink{}
		p := start(t, NewConfig(), sink, settings())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for c := range clients {
			wg.Go(func() {
				for r := range rounds {
					b, h := withHandle(encoded(t, 1, 100, (c*rounds+r)*100))
					sent := time.Now()
					if err := p.Consume(context.Background(), b); err != nil {
						t.Error(err)
						return
					}
					h.Release(nil)
					for !h.Done() {
						time.Sleep(100 * time.Microsecond)
					}
					if r > 5 { // once learnt
						mu.Lock()
						slowest = max(slowest, time.Since(sent))
						waits = append(waits, time.Since(sent))
						mu.Unlock()
					}
					time.Sleep(turnaround + time.Duration(c)*100*time.Microsecond)
				}
			})
		}
		wg.Wait()
		shutdown(t, p)
		slices.Sort(waits)
		return slowest, waits[len(waits)/2], sizesOf(sink)
	}
	t.Run("one client", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			slowest, median, _ := closedLoop(t, 1, 60, time.Millisecond)
			// The lower bound (1ms) and the 100µs the test polls at; a probe now and then
			// lingers for twice the client's gap.
			if median > 1200*time.Microsecond || slowest > 5*time.Millisecond {
				t.Errorf("a lone client waited %s (median), up to %s: want the 1ms lower bound, a probe at most a few ms", median, slowest)
			}
		})
	})
	t.Run("eight clients", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			slowest, _, sizes := closedLoop(t, 8, 30, time.Millisecond)
			if slowest > 5*time.Millisecond {
				t.Errorf("clients waited up to %s, want a few ms after the last of them sent", slowest)
			}
			big := 0
			for _, n := range sizes {
				if n >= 500 {
					big++
				}
			}
			if big < len(sizes)/2 {
				t.Errorf("sends %v: most should carry several clients' requests", sizes)
			}
		})
	})
	t.Run("steady traffic", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{}
			p := start(t, &Config{SendBatchSize: 1000, Timeout: 200 * time.Millisecond, IdleTimeout: AutoIdle}, sink, settings())
			for i := range 100 { // one 100-item request every 10ms, nobody waiting on anyone
				b, h := withHandle(encoded(t, 1, 100, i*100))
				consume(t, p, b)
				h.Release(nil)
				time.Sleep(10 * time.Millisecond)
			}
			shutdown(t, p)
			got := sizesOf(sink)
			full := 0
			for _, n := range got {
				if n == 1000 {
					full++
				}
			}
			if full < 8 {
				t.Errorf("steady traffic sent %v: want batches filled to send_batch_size (1000), not cut short by the idle timeout", got)
			}
		})
	})
}

func sizesOf(s *componenttest.Sink) []int { return sizes(s) }
