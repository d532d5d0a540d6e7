package sender

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

func TestMemoryQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewMemoryQueue(2, false)
		if q.Cap() != 2 {
			t.Fatalf("Cap %d", q.Cap())
		}
		a, b := traces(1), traces(2)
		if q.Put(ctx, a) != nil || q.Put(ctx, b) != nil {
			t.Fatal("Put into room failed")
		}
		if err := q.Put(ctx, traces(1)); !errors.Is(err, ErrFull) {
			t.Fatalf("Put into full queue: %v", err)
		}
		if q.Len() != 2 {
			t.Fatalf("Len %d", q.Len())
		}
		got, release, ok := q.Get(ctx)
		if !ok || got != a {
			t.Fatal("Get did not return the first batch first")
		}
		release()

		// Waiting batches come out even with a cancelled context: that is how a queue is drained.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		q.Close()
		q.Close()
		if err := q.Put(ctx, traces(1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close: %v", err)
		}
		if got, _, ok := q.Get(cancelled); !ok || got != b {
			t.Fatal("Get with a cancelled context did not return a waiting batch")
		}
		if _, _, ok := q.Get(ctx); ok {
			t.Fatal("Get on a closed, empty queue returned a batch")
		}
	})
}

func TestMemoryQueueBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewMemoryQueue(1, true)
		_ = q.Put(ctx, traces(1))
		errs := make(chan error)
		go func() { errs <- q.Put(ctx, traces(1)) }()
		synctest.Wait()
		q.Close() // wakes the blocked producer rather than leaving it to wait for room
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Put after Close: %v", err)
		}

		// An empty queue's Get waits until the context ends.
		q = NewMemoryQueue(1, true)
		cctx, cancel := context.WithCancel(ctx)
		oks := make(chan bool)
		go func() { _, _, ok := q.Get(cctx); oks <- ok }()
		synctest.Wait()
		cancel()
		if <-oks {
			t.Fatal("Get returned a batch from an empty queue")
		}
	})
}
