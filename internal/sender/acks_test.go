package sender

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/queue"
)

// offer hands b to s as the pipeline does for an exporter in mode e2e (or durable), with a
// fresh request handle, and releases the owner's reference once Consume returned nil, so that
// the handle completes when the sender lets go. It returns Consume's error and the handle.
func offer(t *testing.T, s *Sender, b *batch.Batch, e2e bool) (*ack.Handle, error) {
	t.Helper()
	h := ack.New()
	b.SetAcks(h.Set())
	b.SetEndToEnd(e2e)
	err := s.Consume(context.Background(), b)
	if err == nil {
		h.Release(nil)
	}
	return h, err
}

// TestDurableAcknowledgesAtTheQueue: in the default mode the sender holds nothing: a queued
// batch is acknowledged, and the queue keeps no handle.
func TestDurableAcknowledgesAtTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNew(t, e, queueConfig(10, 1, queue.Block, time.Second), g.send)
		h, err := offer(t, s, traces(3), false)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Done() || h.Err() != nil {
			t.Fatalf("durable: done=%v err=%v, want acknowledged once queued", h.Done(), h.Err())
		}
		close(g.release)
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEndToEndHoldsUntilDelivered: in end_to_end the handle completes only once the backend
// took the data, and with what the backend said.
func TestEndToEndHoldsUntilDelivered(t *testing.T) {
	permanent := consumererror.NewPermanent(errors.New("400 Bad Request: bad span"))
	f := func(name string, cfg Config, backend func(attempt int) error, check func(*testing.T, error)) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv()
				release := make(chan struct{})
				var attempts atomic.Int32
				s := mustNew(t, e, cfg, func(ctx context.Context, b *batch.Batch) error {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
					return backend(int(attempts.Add(1)))
				})
				h, err := offer(t, s, traces(3), true)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if h.Done() {
					t.Fatal("acknowledged before the backend answered")
				}
				close(release)
				synctest.Wait()
				time.Sleep(time.Minute) // any retries (1s, 2s, … in fastConfig)
				synctest.Wait()
				if !h.Done() {
					t.Fatal("not done after the backend answered")
				}
				check(t, h.Err())
				_ = s.Shutdown(context.Background())
			})
		})
	}
	memory := queueConfig(10, 1, queue.Block, time.Second)
	f("accepted", memory, func(int) error { return nil }, func(t *testing.T, err error) {
		if err != nil {
			t.Errorf("outcome %v, want nil", err)
		}
	})
	f("accepted after retries", memory, func(n int) error {
		if n < 3 {
			return consumererror.NewRetryable(errors.New("503"), 0)
		}
		return nil
	}, func(t *testing.T, err error) {
		if err != nil {
			t.Errorf("outcome %v, want nil (the retries are the sender's business)", err)
		}
	})
	f("refused for good", memory, func(int) error { return permanent }, func(t *testing.T, err error) {
		if !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "bad span") {
			t.Errorf("outcome %v, want the backend's permanent refusal", err)
		}
	})
	f("partial", memory, func(int) error { return &consumererror.Partial{Rejected: 1, Message: "one bad"} }, func(t *testing.T, err error) {
		if p, ok := consumererror.AsPartial(err); !ok || p.Rejected != 1 {
			t.Errorf("outcome %v, want the partial success", err)
		}
	})
	exhausted := memory
	exhausted.Retry.MaxElapsedTime = 5 * time.Second
	f("retries exhausted", exhausted, func(int) error { return consumererror.NewRetryable(errors.New("503"), 0) }, func(t *testing.T, err error) {
		if err == nil || consumererror.IsFinal(err) || !strings.Contains(err.Error(), "max_elapsed_time") {
			t.Errorf("outcome %v, want a retryable error saying the sender gave up", err)
		}
	})
	batching := batchingConfig(5, 0, time.Second)
	f("merged in the queue", batching, func(int) error { return nil }, func(t *testing.T, err error) {
		if err != nil {
			t.Errorf("outcome %v", err)
		}
	})
}

// TestEndToEndMergedParts: queue batching merges two requests into one send; both complete
// with that send, and not before.
func TestEndToEndMergedParts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		k := &sink{}
		s := mustNew(t, e, batchingConfig(6, 0, time.Second), k.send)
		h1, err := offer(t, s, encodedTraces(t, 3, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h1.Done() {
			t.Fatal("the first request was acknowledged while its data waited to be merged")
		}
		h2, err := offer(t, s, encodedTraces(t, 3, 3), true)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(k.got()) != 1 || !h1.Done() || !h2.Done() {
			t.Fatalf("%d sends; h1 done=%v h2 done=%v; want one merged send completing both", len(k.got()), h1.Done(), h2.Done())
		}
		_ = s.Shutdown(context.Background())
	})
}

// TestEndToEndRefusals: whatever the queue refuses or drops, a client waiting end to end
// hears it; nothing it was told is safe is gone.
func TestEndToEndRefusals(t *testing.T) {
	t.Run("full queue pushes back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			s := mustNewStopped(t, e, queueConfig(1, 1, queue.Block, time.Second), newGate().send)
			if _, err := offer(t, s, traces(1), true); err != nil {
				t.Fatal(err)
			}
			h, err := offer(t, s, traces(1), true)
			if !consumererror.IsBackpressure(err) {
				t.Fatalf("Consume = %v, want backpressure", err)
			}
			// The pipeline's answer is Consume's; the sender must not keep a hold on what it refused.
			h.Release(nil)
			if !h.Done() {
				t.Error("the sender kept holding a request it refused")
			}
		})
	})
	t.Run("drop_newest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			s := mustNewStopped(t, e, queueConfig(1, 1, queue.DropNewest, 0), newGate().send)
			if _, err := offer(t, s, traces(1), true); err != nil {
				t.Fatal(err)
			}
			h, err := offer(t, s, traces(1), true)
			if err != nil {
				t.Fatalf("Consume = %v, want nil (the policy drops)", err)
			}
			if !h.Done() || !consumererror.IsPermanent(h.Err()) || !strings.Contains(h.Err().Error(), "dropped") {
				t.Errorf("done=%v err=%v, want a permanent 'dropped'", h.Done(), h.Err())
			}
		})
	})
	t.Run("drop_oldest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			s := mustNewStopped(t, e, queueConfig(1, 1, queue.DropOldest, 0), newGate().send)
			old, err := offer(t, s, traces(1), true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := offer(t, s, traces(1), true); err != nil {
				t.Fatal(err)
			}
			if !old.Done() || !consumererror.IsPermanent(old.Err()) || !strings.Contains(old.Err().Error(), "drop_oldest") {
				t.Errorf("the discarded request: done=%v err=%v, want a permanent 'dropped'", old.Done(), old.Err())
			}
		})
	})
	t.Run("shutdown drops a memory queue", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			g := newGate() // never released: the backend hangs
			s := mustNew(t, e, queueConfig(10, 1, queue.Block, time.Second), g.send)
			inFlight, _ := offer(t, s, traces(1), true)
			waiting, _ := offer(t, s, traces(1), true)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Shutdown(ctx) // reports the loss
			for name, h := range map[string]*ack.Handle{"in flight": inFlight, "waiting": waiting} {
				if !h.Done() || h.Err() == nil || consumererror.IsFinal(h.Err()) {
					t.Errorf("%s: done=%v err=%v, want a retryable error", name, h.Done(), h.Err())
				}
			}
		})
	})
}

// TestEndToEndThroughTheWAL: a persistent queue that reads a record back from disk (it did
// not keep the batch in memory) still gives the sender the request's handle, so that the
// client is answered at delivery; a record kept at shutdown answers it with a retryable error.
func TestEndToEndThroughTheWAL(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig(dir)
	e := newEnv()
	var down atomic.Bool
	down.Store(true)
	r := &recorder{t: t}
	s := mustNew(t, e, cfg, func(ctx context.Context, b *batch.Batch) error {
		if down.Load() {
			return consumererror.NewRetryable(errors.New("connection refused"), 0)
		}
		return r.send(ctx, b)
	})
	// A decoded batch is not cached by the WAL: it comes back from disk.
	fromDisk, err := offer(t, s, traces(4), true)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := offer(t, s, encodedTraces(t, 2, 4), true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if fromDisk.Done() || cached.Done() {
		t.Fatal("acknowledged end to end while the backend was down")
	}
	down.Store(false)
	waitFor(t, "both requests delivered", func() bool { return fromDisk.Done() && cached.Done() })
	if fromDisk.Err() != nil || cached.Err() != nil || len(r.got()) != 6 {
		t.Fatalf("outcomes %v, %v; delivered %d spans, want nil, nil, 6", fromDisk.Err(), cached.Err(), len(r.got()))
	}

	down.Store(true)
	kept, err := offer(t, s, traces(1), true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !kept.Done() || kept.Err() == nil || consumererror.IsFinal(kept.Err()) || !strings.Contains(kept.Err().Error(), "kept it in the persistent queue") {
		t.Fatalf("at shutdown: done=%v err=%v, want a retryable 'kept in the persistent queue'", kept.Done(), kept.Err())
	}
}
