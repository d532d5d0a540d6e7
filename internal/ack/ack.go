package ack

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/consumererror"
)

// Handle is the completion handle of one client request (or one scrape, one file read): it
// completes when every component that took the request's data on has finished with it, and
// then holds the outcome the client should hear.
//
// A handle counts references. Its owner (the receiver) holds one from New until it calls
// Release. A component that answers its caller before it is done with a batch (a buffering
// processor, an exporter in end_to_end mode) holds one more for every handle the batch carries
// (Set.Hold) and releases them with the outcome when it is done (Set.Release). The handle
// completes when the count reaches zero: the errors released into it are combined
// (consumererror.Combine) into its result, Wait returns, and the callback of NewFunc runs.
//
// Holds are only ever taken by the owner of a batch that carries the handle, while the count
// is above zero (whoever passed the batch on still holds a reference until its call returns),
// so a completed handle never comes back to life. An owner that gives up on the request (its
// client went away, or the pipeline refused the data with a retryable error) simply never
// releases: the handle then never completes, the holds that remain are released into it
// harmlessly, and it is collected with the last batch that carries it.
type Handle struct {
	pending atomic.Int32
	// self is the handle's own one-element Set, so that a batch carrying one request's handle
	// needs no allocation of its own.
	self [1]*Handle
	fn   func(error)
	// state is waitNone until a Wait has to block and publishes done (waitBlocked), and
	// waitCompleted once completion ran (closing done if a Wait was blocked on it): neither
	// side needs a lock.
	state atomic.Int32
	done  chan struct{}

	nerrs atomic.Int32 // len(errs), readable without mu
	mu    sync.Mutex
	errs  []error
}

const (
	waitNone int32 = iota
	waitBlocked
	waitCompleted
)

// New returns a handle whose owner holds one reference.
func New() *Handle {
	h := &Handle{}
	h.self[0] = h
	h.pending.Store(1)
	return h
}

// NewFunc returns a handle that calls fn with its result when it completes, in the goroutine
// that released the last reference. fn must not block: a receiver without a waiting goroutine
// (a file tailer checkpointing offsets, a Kafka consumer committing them) records the outcome
// and moves on.
func NewFunc(fn func(error)) *Handle {
	h := New()
	h.fn = fn
	return h
}

// Set returns a Set holding just this handle, for the batch built from the request.
func (h *Handle) Set() Set { return h.self[:] }

// Release gives up one reference with the outcome err (nil: done and fine). The owner calls it
// once, after the pipeline took the batch.
func (h *Handle) Release(err error) {
	if err != nil {
		h.mu.Lock()
		h.errs = append(h.errs, err)
		h.nerrs.Add(1)
		h.mu.Unlock()
	}
	if h.pending.Add(-1) == 0 {
		h.complete()
	}
}

func (h *Handle) complete() {
	switch h.state.Swap(waitCompleted) {
	case waitCompleted:
		return // a stray release after completion (a bug elsewhere): complete once only
	case waitBlocked:
		close(h.done) // published by Wait before its CompareAndSwap
	}
	if h.fn != nil {
		h.fn(h.Err())
	}
}

// Done reports whether the handle has completed.
func (h *Handle) Done() bool { return h.pending.Load() <= 0 }

// Err is the combined outcome released into the handle so far; once Done, its result.
func (h *Handle) Err() error {
	if h.nerrs.Load() == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch len(h.errs) {
	case 0:
		return nil
	case 1:
		return h.errs[0]
	}
	return consumererror.Combine(h.errs...)
}

// ErrGaveUp is wrapped by the error Wait returns when ctx ends first.
var ErrGaveUp = errors.New("stopped waiting for the data to be acknowledged")

// Wait blocks until the handle completes, and returns its result, or until ctx ends, and then
// returns a retryable error wrapping ErrGaveUp and ctx's error: the data is not lost (whoever
// holds it goes on delivering it), but the client was not told it is safe and will send it
// again. The owner calls Wait once, after its Release. When nothing holds the handle any more,
// Wait neither blocks nor allocates.
func (h *Handle) Wait(ctx context.Context) error {
	if h.Done() {
		return h.Err()
	}
	h.done = make(chan struct{})
	if !h.state.CompareAndSwap(waitNone, waitBlocked) {
		// Completed meanwhile (only the owner waits, once, so nobody else blocked).
		return h.Err()
	}
	select {
	case <-h.done:
		return h.Err()
	case <-ctx.Done():
		return consumererror.NewRetryable(errors.Join(ErrGaveUp, context.Cause(ctx)), 0)
	}
}

// Set is the handles a batch carries: those of every request whose data is in it. A Set is
// never changed in place once a batch carries it (Union makes a new one), so batches made from
// one another (shares, clones, the parts of a split) may carry the same Set.
type Set []*Handle

// Hold takes one more reference on every handle in s, for a component that will answer its
// caller before it has finished with the data. Every Hold is matched by one Release.
func (s Set) Hold() {
	for _, h := range s {
		h.pending.Add(1)
	}
}

// Release gives up the references Hold took, with the outcome err.
func (s Set) Release(err error) {
	for _, h := range s {
		h.Release(err)
	}
}

// Union returns the union of the sets of/of(x) for every x in xs (a handle in several appears
// as often), for a batch made of several batches. It allocates only when more than one set is
// non-empty, and then once.
func Union[T any](xs []T, of func(T) Set) Set {
	n, last := 0, -1
	for i, x := range xs {
		if k := len(of(x)); k > 0 {
			n += k
			last = i
		}
	}
	switch {
	case n == 0:
		return nil
	case n == len(of(xs[last])):
		return of(xs[last])
	}
	out := make(Set, 0, n)
	for _, x := range xs {
		out = append(out, of(x)...)
	}
	return out
}
