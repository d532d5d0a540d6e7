package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/ring"
)

// job is a batch in flight between a receiver's goroutine and a worker.
type job struct {
	ctx  context.Context
	b    *batch.Batch
	done chan error // buffered: the worker never blocks on a caller that gave up
}

// entry is the front of a pipeline: receivers push batches into a bounded lock-free ring, and a
// fixed set of workers (one per core) run the processors. The caller waits for its batch's result,
// so an error from a processor or exporter (a memory-limiter refusal, say) reaches the client and
// nothing is acknowledged that the pipeline did not take.
//
// At most `workers` batches run the processors at once: a run holds one of the slots. When the
// ring is empty and a slot is free, Consume runs the batch in the caller's goroutine instead of
// waking a worker and then being woken by it (two goroutine hand-offs per request, which at
// moderate rates cost more than a small batch's processing). Otherwise the batch queues in the
// ring, and a worker takes it and waits for a slot.
type entry struct {
	ring    *ring.Ring[*job]
	slots   chan struct{} // a send takes a slot, a receive gives it back
	next    component.Consumer
	workers int
	wg      sync.WaitGroup
	stop    sync.Once
	// dropAcks: every exporter of the pipeline is in acknowledgement mode none, so batches lose
	// their completion handles on the way in and nothing downstream holds the client's answer.
	dropAcks bool
	// successor is the entry that replaced this one in a reload: a batch that reaches this one
	// after its ring closed (a receiver switched over while the batch was on its way) goes on
	// there instead of being refused.
	successor atomic.Pointer[entry]
}

var errStopping = errors.New("pipeline is shutting down")

// fullWait bounds how long a receiver waits for room in a full ring before answering with
// backpressure.
const fullWait = 2 * time.Second

func newEntry(capacity, workers int, next component.Consumer) *entry {
	return &entry{ring: ring.New[*job](capacity), slots: make(chan struct{}, workers), next: next, workers: workers}
}

func (e *entry) start() {
	for i := 0; i < e.workers; i++ {
		e.wg.Add(1)
		go e.work()
	}
}

func (e *entry) work() {
	defer e.wg.Done()
	for {
		j, err := e.ring.Pop(context.Background())
		if err != nil {
			return // closed and drained
		}
		e.slots <- struct{}{}
		if err := j.ctx.Err(); err != nil {
			// The client gave up and was told to retry: running the batch now would only
			// duplicate what it sends again.
			<-e.slots
			j.done <- consumererror.NewRetryable(err, 0)
			continue
		}
		err = e.consume(j.ctx, j.b)
		<-e.slots
		j.done <- err
	}
}

// consume runs the processors, turning a panic in a component into an error for this batch only.
func (e *entry) consume(ctx context.Context, b *batch.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = consumererror.NewPermanent(fmt.Errorf("component panicked: %v", r))
		}
	}()
	return e.next.Consume(ctx, b)
}

// Consume runs b through the processors, in the caller's goroutine when nothing waits before it
// and a slot is free, otherwise by a worker, and returns the pipeline's answer.
func (e *entry) Consume(ctx context.Context, b *batch.Batch) error {
	if e.dropAcks {
		b.SetAcks(nil)
	}
	if err := ctx.Err(); err != nil {
		// The client gave up already (a receiver feeding several pipelines calls the next one
		// after its deadline passed in the first): as in work, running the batch would only
		// duplicate what it sends again.
		return consumererror.NewRetryable(err, 0)
	}
	if e.ring.Len() == 0 {
		if ran, err := e.runInline(ctx, b); ran {
			return err
		}
	}
	j := &job{ctx: ctx, b: b, done: make(chan error, 1)}
	if !e.ring.TryPush(j) {
		// Full: wait a little for a worker, then push back on the client rather than hold its
		// request (and its memory) open for as long as it is willing to wait.
		pctx, cancel := context.WithTimeout(ctx, fullWait)
		err := e.ring.Push(pctx, j)
		cancel()
		switch {
		case errors.Is(err, ring.ErrClosed):
			if s := e.successor.Load(); s != nil {
				return s.Consume(ctx, b)
			}
			return consumererror.NewRetryable(errStopping, 0)
		case err != nil && ctx.Err() != nil:
			return consumererror.NewRetryable(ctx.Err(), 0)
		case err != nil:
			return consumererror.NewBackpressure(errors.New("pipeline queue full: workers are busy"), time.Second)
		}
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The worker still owns the batch and will finish it; the client is told it may retry.
		return consumererror.NewRetryable(ctx.Err(), 0)
	}
}

// runInline runs b in the caller's goroutine if a slot is free and the pipeline is not stopping.
// The ring is looked at only once the slot is held: shutdown closes the ring before it takes every
// slot, so a holder either sees it closed or is waited for. Looking before taking the slot would
// let a caller preempted in between start a batch after shutdown returned, on stopped components.
func (e *entry) runInline(ctx context.Context, b *batch.Batch) (ran bool, err error) {
	select {
	case e.slots <- struct{}{}:
	default:
		return false, nil
	}
	if e.ring.Closed() {
		<-e.slots
		return false, nil // the ring refuses it: errStopping
	}
	err = e.consume(ctx, b)
	<-e.slots
	return true, err
}

// shutdown stops taking batches, lets the workers finish what the ring holds and the callers
// running batches themselves finish theirs, and waits.
func (e *entry) shutdown(ctx context.Context) error {
	e.stop.Do(e.ring.Close)
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("pipeline workers still busy: %w", ctx.Err())
	}
	// The workers are gone; taking every slot waits for the batches callers run themselves
	// (a caller that takes a slot later finds the ring closed and does not start one).
	for taken := 0; taken < e.workers; taken++ {
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			for ; taken > 0; taken-- {
				<-e.slots
			}
			return fmt.Errorf("pipeline still busy: %w", ctx.Err())
		}
	}
	for range e.workers {
		<-e.slots
	}
	return nil
}
