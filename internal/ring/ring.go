package ring

import (
	"context"
	"errors"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Push once the ring is closed, and by Pop once the
// ring is closed and drained.
var ErrClosed = errors.New("ring: closed")

const (
	// 128 rather than 64: x86 prefetches cache lines in adjacent pairs, so
	// 64 bytes of padding still lets producers and consumers disturb each other.
	cacheLinePad = 128

	// Close sets this bit on the enqueue cursor so that "closed" and "slot
	// reserved" are decided by the same CAS: a push either reserved its slot
	// before Close (and Pop will drain it) or observes the bit and fails.
	// Nothing lost in the race, and no extra atomic on the push fast path.
	closedBit = uint64(1) << 63

	// Yielding a few times before parking catches the common case where the
	// other side is already running and about to make progress, which is far
	// cheaper than a park/unpark round trip through the scheduler.
	spinRounds = 4

	maxCapacity = 1 << (bits.UintSize - 2)
)

type pad [cacheLinePad]byte

// Cells are deliberately not padded: it would multiply the memory of every
// ring, and the cursors (which every operation touches) are the real hot spot.
type cell[T any] struct {
	// seq tells whose turn the cell is: seq == pos means free for the producer
	// at pos, seq == pos+1 means filled for the consumer at pos.
	seq atomic.Uint64
	val T
}

// Ring is a bounded MPMC FIFO queue. The zero value is not usable; call New.
type Ring[T any] struct {
	_   pad
	enq atomic.Uint64 // written by producers (and Close, via closedBit)
	_   [cacheLinePad - 8]byte
	deq atomic.Uint64 // written by consumers
	_   [cacheLinePad - 8]byte

	// Kept off the read-mostly line below because parking goroutines write
	// them, while every successful push/pop reads them.
	popWaiters  atomic.Int32
	pushWaiters atomic.Int32
	_           [cacheLinePad - 8]byte

	cells []cell[T]
	mask  uint64

	// Capacity 1: a pending token already guarantees a wake-up, so further
	// signals can be dropped without blocking the signaller.
	notEmpty chan struct{}
	notFull  chan struct{}
	done     chan struct{}

	closeOnce sync.Once
}

// New returns a ring holding at least capacity elements. The capacity is
// rounded up to a power of two (minimum 2: with a single cell the sequence
// numbers for "full" and "empty" would coincide). It panics if capacity < 1.
func New[T any](capacity int) *Ring[T] {
	if capacity < 1 || capacity > maxCapacity {
		panic("ring: capacity out of range")
	}
	n := 2
	if capacity > 2 {
		n = 1 << bits.Len(uint(capacity-1))
	}
	r := &Ring[T]{
		cells:    make([]cell[T], n),
		mask:     uint64(n - 1),
		notEmpty: make(chan struct{}, 1),
		notFull:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	for i := range r.cells {
		r.cells[i].seq.Store(uint64(i))
	}
	return r
}

// Cap returns the rounded-up capacity.
func (r *Ring[T]) Cap() int { return len(r.cells) }

// Len returns the number of elements reserved or queued. It is a snapshot of
// two independent cursors, so treat it as a hint under concurrency.
func (r *Ring[T]) Len() int {
	// deq first: both only grow, so the later enq can't be below it.
	d := r.deq.Load()
	e := r.enq.Load() &^ closedBit
	n := int(e - d)
	if n > len(r.cells) {
		n = len(r.cells)
	}
	return n
}

// TryPush appends v without blocking. It returns false if the ring is full or
// closed.
func (r *Ring[T]) TryPush(v T) bool {
	pos := r.enq.Load()
	var c *cell[T]
	for {
		if pos&closedBit != 0 {
			return false
		}
		c = &r.cells[pos&r.mask]
		dif := int64(c.seq.Load() - pos)
		if dif == 0 {
			if r.enq.CompareAndSwap(pos, pos+1) {
				break
			}
			pos = r.enq.Load()
		} else if dif < 0 {
			// The consumer from one lap ago hasn't released this cell.
			return false
		} else {
			// Another producer took pos; catch up.
			pos = r.enq.Load()
		}
	}
	c.val = v
	c.seq.Store(pos + 1)
	// Publish-then-check pairs with the waiter's register-then-recheck in
	// popSlow; with sequentially consistent atomics one side must see the other.
	if r.popWaiters.Load() > 0 {
		signal(r.notEmpty)
	}
	return true
}

// TryPop removes the oldest element without blocking. It returns false if the
// ring is empty (or the next element is reserved but not yet published).
func (r *Ring[T]) TryPop() (T, bool) {
	pos := r.deq.Load()
	var c *cell[T]
	for {
		c = &r.cells[pos&r.mask]
		dif := int64(c.seq.Load() - (pos + 1))
		if dif == 0 {
			if r.deq.CompareAndSwap(pos, pos+1) {
				break
			}
			pos = r.deq.Load()
		} else if dif < 0 {
			var zero T
			return zero, false
		} else {
			pos = r.deq.Load()
		}
	}
	v := c.val
	// Otherwise the cell would pin whatever v references until the ring laps.
	var zero T
	c.val = zero
	c.seq.Store(pos + r.mask + 1)
	if r.pushWaiters.Load() > 0 {
		signal(r.notFull)
	}
	return v, true
}

// Push appends v, waiting while the ring is full. It returns ErrClosed if the
// ring is (or becomes) closed, or ctx.Err() if ctx ends first. ctx is only
// consulted when Push would have to wait.
func (r *Ring[T]) Push(ctx context.Context, v T) error {
	if r.TryPush(v) {
		return nil
	}
	return r.pushSlow(ctx, v)
}

func (r *Ring[T]) pushSlow(ctx context.Context, v T) error {
	for spin := 0; ; spin++ {
		if r.closed() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if spin < spinRounds {
			runtime.Gosched()
			if r.TryPush(v) {
				return nil
			}
			continue
		}

		r.pushWaiters.Add(1)
		// Re-check after registering: a pop that finished before it could see
		// our registration won't signal, but its freed slot is visible now.
		if r.TryPush(v) {
			r.pushWaiters.Add(-1)
			return nil
		}
		woken := false
		select {
		case <-r.notFull:
			woken = true
		case <-r.done:
		case <-ctx.Done():
		}
		r.pushWaiters.Add(-1)
		if r.TryPush(v) {
			if woken {
				r.passOn(r.notFull, &r.pushWaiters, r.Len() < r.Cap())
			}
			return nil
		}
	}
}

// Pop removes the oldest element, waiting while the ring is empty. After
// Close it keeps returning the remaining elements and then ErrClosed. It
// returns ctx.Err() if ctx ends while waiting.
func (r *Ring[T]) Pop(ctx context.Context) (T, error) {
	if v, ok := r.TryPop(); ok {
		return v, nil
	}
	return r.popSlow(ctx)
}

func (r *Ring[T]) popSlow(ctx context.Context) (T, error) {
	var zero T
	for spin := 0; ; spin++ {
		if e := r.enq.Load(); e&closedBit != 0 {
			return r.drain(ctx, e&^closedBit)
		}
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		if spin < spinRounds {
			runtime.Gosched()
			if v, ok := r.TryPop(); ok {
				return v, nil
			}
			continue
		}

		r.popWaiters.Add(1)
		if v, ok := r.TryPop(); ok {
			r.popWaiters.Add(-1)
			return v, nil
		}
		woken := false
		select {
		case <-r.notEmpty:
			woken = true
		case <-r.done:
		case <-ctx.Done():
		}
		r.popWaiters.Add(-1)
		// Always retry, even if ctx ended: a consumed token must turn into
		// either a pop or proof that the ring was empty, or a wake-up is lost.
		if v, ok := r.TryPop(); ok {
			if woken {
				r.passOn(r.notEmpty, &r.popWaiters, r.Len() > 0)
			}
			return v, nil
		}
	}
}

// drain serves Pop after Close. end is the final enqueue cursor; every slot
// below it was reserved before Close and will be published, so we must wait
// for stragglers rather than report ErrClosed while data is still in flight.
func (r *Ring[T]) drain(ctx context.Context, end uint64) (T, error) {
	for {
		if v, ok := r.TryPop(); ok {
			return v, nil
		}
		if r.deq.Load() >= end {
			var zero T
			return zero, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			var zero T
			return zero, err
		}
		// A producer reserved a slot but was descheduled before publishing;
		// it is a handful of instructions from done.
		runtime.Gosched()
	}
}

// passOn forwards a wake-up token. Signals coalesce in the 1-slot channel, so
// several pushes can wake only one of several parked consumers (and vice
// versa); the woken goroutine hands the token on while there is still work
// for another sleeper.
func (r *Ring[T]) passOn(ch chan struct{}, waiters *atomic.Int32, more bool) {
	if more && waiters.Load() > 0 {
		signal(ch)
	}
}

// Close stops further pushes and wakes every waiter. Elements already in the
// ring remain poppable. Close is idempotent.
func (r *Ring[T]) Close() {
	r.closeOnce.Do(func() {
		r.enq.Or(closedBit)
		close(r.done)
	})
}

func (r *Ring[T]) closed() bool { return r.enq.Load()&closedBit != 0 }

// Closed reports whether Close has been called.
func (r *Ring[T]) Closed() bool { return r.closed() }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
