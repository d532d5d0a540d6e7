package pipeline

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/testdata"
)

// TestEntryFullRingPushesBack: with the only slot taken and the ring full, a caller waits
// fullWait and is then told to back off (not held open), and a caller that gave up while queued
// is not run at all once the slot frees up.
func TestEntryFullRingPushesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var ran atomic.Int32
		e := newEntry(2, 1, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
			ran.Add(1)
			<-release
			return nil
		}))
		e.start()
		b := func() *batch.Batch { return batch.FromTraces(testdata.Traces(1, 1, 0)) }
		results := make(chan error, 5)
		go func() { results <- e.Consume(context.Background(), b()) }() // runs in its caller, holding the slot
		synctest.Wait()
		go func() { results <- e.Consume(context.Background(), b()) }() // taken by the worker, which waits for the slot
		synctest.Wait()
		gaveUp, cancel := context.WithCancel(context.Background())
		go func() { results <- e.Consume(gaveUp, b()) }()               // queued
		go func() { results <- e.Consume(context.Background(), b()) }() // queued
		synctest.Wait()

		start := time.Now()
		err := e.Consume(context.Background(), b()) // ring full
		if !consumererror.IsBackpressure(err) || time.Since(start) != fullWait {
			t.Fatalf("full ring: err %v after %v; want backpressure after %v", err, time.Since(start), fullWait)
		}

		cancel()
		synctest.Wait()
		close(release)
		for i := 0; i < 4; i++ {
			<-results
		}
		if n := ran.Load(); n != 3 {
			t.Fatalf("ran %d batches, want 3 (the abandoned one skipped)", n)
		}
		if err := e.shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEntrySlots: an idle pipeline runs a batch in the caller's goroutine; under load no more
// than `workers` batches run at once, whoever runs them, and every caller gets its answer.
func TestEntrySlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, callers = 2, 8
		var (
			running, peak, inCaller atomic.Int32
			release                 = make(chan struct{})
		)
		e := newEntry(16, workers, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if !strings.Contains(string(debug.Stack()), "(*entry).work") {
				inCaller.Add(1)
			}
			<-release
			running.Add(-1)
			return nil
		}))
		e.start()
		b := func() *batch.Batch { return batch.FromTraces(testdata.Traces(1, 1, 0)) }

		// Idle: the caller runs its batch itself.
		done := make(chan error, callers)
		go func() { done <- e.Consume(context.Background(), b()) }()
		synctest.Wait()
		if inCaller.Load() != 1 {
			t.Fatal("an idle pipeline handed the batch to a worker")
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		// Busy: callers and workers share the slots.
		release = make(chan struct{})
		peak.Store(0)
		for range callers {
			go func() { done <- e.Consume(context.Background(), b()) }()
		}
		synctest.Wait()
		if n := running.Load(); n != workers {
			t.Fatalf("%d batches running, want %d", n, workers)
		}
		close(release)
		for range callers {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if p := peak.Load(); p != workers {
			t.Errorf("peak of %d batches running at once, want %d", p, workers)
		}
		if err := e.shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEntryShutdownWaitsForCallers: shutdown returns only once a batch a caller runs itself is
// done, and a caller arriving after shutdown is refused.
func TestEntryShutdownWaitsForCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var finished atomic.Bool
		e := newEntry(4, 1, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
			<-release
			finished.Store(true)
			return nil
		}))
		e.start()
		b := batch.FromTraces(testdata.Traces(1, 1, 0))
		go func() { _ = e.Consume(context.Background(), b) }()
		synctest.Wait()
		stopped := make(chan error, 1)
		go func() { stopped <- e.shutdown(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-stopped:
			t.Fatalf("shutdown returned (%v) while a caller's batch was running", err)
		default:
		}
		close(release)
		if err := <-stopped; err != nil || !finished.Load() {
			t.Fatalf("shutdown: %v, batch finished: %v", err, finished.Load())
		}
		var retry *consumererror.Retryable
		if err := e.Consume(context.Background(), batch.FromTraces(testdata.Traces(1, 1, 0))); !errors.As(err, &retry) {
			t.Errorf("Consume after shutdown = %v, want a retryable error", err)
		}
	})
}

// TestEntryCallerGaveUpBeforehand: a caller whose context has already ended is told to retry and
// its batch is not run, whether it would run in the caller (idle pipeline) or queue: running it
// would only duplicate what the client sends again (a receiver feeding several pipelines calls the
// next one after the first gave up on the client's deadline).
func TestEntryCallerGaveUpBeforehand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran atomic.Int32
		e := newEntry(4, 1, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
			ran.Add(1)
			return nil
		}))
		e.start()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var retry *consumererror.Retryable
		if err := e.Consume(ctx, batch.FromTraces(testdata.Traces(1, 1, 0))); !errors.As(err, &retry) {
			t.Errorf("Consume with an ended context = %v, want a retryable error", err)
		}
		synctest.Wait()
		if n := ran.Load(); n != 0 {
			t.Errorf("ran %d batches of a caller that had given up, want 0", n)
		}
		if err := e.shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEntryLateCallerAfterShutdown: a caller that found the ring open but reaches for a slot only
// once shutdown has returned (it was preempted in between) does not run its batch on components
// that are stopping; it falls back to the ring, which refuses it.
func TestEntryLateCallerAfterShutdown(t *testing.T) {
	var ran atomic.Int32
	e := newEntry(4, 1, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
		ran.Add(1)
		return nil
	}))
	e.start()
	if err := e.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Consume's look at the ring happened before shutdown; this is the rest of its inline path.
	if ran2, err := e.runInline(context.Background(), batch.FromTraces(testdata.Traces(1, 1, 0))); ran2 || ran.Load() != 0 {
		t.Errorf("a caller ran its batch after shutdown returned (ran %v, err %v)", ran2, err)
	}
}
