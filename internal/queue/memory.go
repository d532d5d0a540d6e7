package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

// NewMemory returns a bounded in-memory FIFO.
//
// Capacity counts in Sizer units: requests (batches), items, or encoded bytes
// (b.EncodedSize()). Batches handed out by Get keep their room until done is called, so the
// capacity bounds everything the queue is responsible for, not just what waits. A batch larger
// than the whole capacity is accepted when the queue is empty (otherwise it could never get in)
// and otherwise treated like any batch that does not fit. DropOldest discards only waiting
// batches, and only when that makes room; if it cannot (what is in flight already fills the
// queue) Put returns ErrFull and discards nothing.
//
// Get goes on returning waiting batches after Close; done(false) loses the batch (nothing
// outlives the process), and Stats.Oldest is the enqueue time of the oldest waiting batch.
// A non-positive Capacity is taken as 1; an empty Sizer means requests, an empty WhenFull
// drop_newest (otelcol's default: refuse rather than block).
func NewMemory(opts Options) Queue {
	opts = opts.withDefaults()
	q := &memory{opts: opts}
	q.space.L = &q.mu
	q.data.L = &q.mu
	return q
}

type memEntry struct {
	b      *batch.Batch
	units  int64
	size   int64
	queued time.Time
}

type memory struct {
	opts Options

	mu    sync.Mutex
	space sync.Cond // a Put waits here for room
	data  sync.Cond // a Get waits here for a batch

	waiting deque[memEntry]
	closed  bool

	// Everything the queue is responsible for: waiting plus in flight.
	units, bytes   int64
	batches, items int
	// What waits (DropOldest can only reclaim that).
	waitingUnits int64
}

var _ Queue = (*memory)(nil)

func (o Options) withDefaults() Options {
	if o.Sizer == "" {
		o.Sizer = SizeRequests
	}
	if o.WhenFull == "" {
		o.WhenFull = DropNewest
	}
	if o.Capacity <= 0 {
		o.Capacity = 1
	}
	return o
}

// units measures b in the queue's Sizer; size is the encoded size, which the bytes sizer and
// Stats.Bytes both need.
func (o Options) units(b *batch.Batch, size int) int64 {
	switch o.Sizer {
	case SizeItems:
		return int64(b.Items())
	case SizeBytes:
		return int64(size)
	}
	return 1
}

// fits reports whether n more units fit beside used. An empty queue takes anything, so that a
// batch larger than the whole capacity is not refused forever.
func fits(used, n, capacity int64) bool { return used == 0 || used+n <= capacity }

func (q *memory) Put(ctx context.Context, b *batch.Batch) error {
	size := int64(b.EncodedSize())
	units := q.opts.units(b, int(size))
	capacity := int64(q.opts.Capacity)

	q.mu.Lock()
	var dropped []*batch.Batch
	var stopWait func() bool
	for !q.closed && !fits(q.units, units, capacity) {
		if q.opts.WhenFull == DropOldest && fits(q.units-q.waitingUnits, units, capacity) {
			for !fits(q.units, units, capacity) {
				e := q.waiting.popFront()
				q.release(e.units, e.size, e.b.Items())
				q.waitingUnits -= e.units
				dropped = append(dropped, e.b)
			}
			break
		}
		if q.opts.WhenFull != Block {
			q.mu.Unlock()
			return ErrFull
		}
		if ctx.Err() != nil {
			q.mu.Unlock()
			return errFullAfter(ctx)
		}
		if stopWait == nil {
			stopWait = context.AfterFunc(ctx, func() {
				q.mu.Lock()
				q.space.Broadcast()
				q.mu.Unlock()
			})
			defer stopWait()
		}
		q.space.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.waiting.push(memEntry{b: b, units: units, size: size, queued: time.Now()})
	q.units += units
	q.waitingUnits += units
	q.bytes += size
	q.batches++
	q.items += b.Items()
	q.data.Signal()
	q.mu.Unlock()

	if q.opts.OnDrop != nil {
		for _, d := range dropped {
			q.opts.OnDrop(d)
		}
	}
	return nil
}

// release gives back the room of a batch that is gone. Called with q.mu held.
func (q *memory) release(units, size int64, items int) {
	q.units -= units
	q.bytes -= size
	q.batches--
	q.items -= items
	q.space.Broadcast()
}

func (q *memory) Get(ctx context.Context) (*batch.Batch, func(bool), bool) {
	q.mu.Lock()
	var stopWait func() bool
	for q.waiting.len() == 0 {
		if q.closed || ctx.Err() != nil {
			q.mu.Unlock()
			return nil, nil, false
		}
		if stopWait == nil {
			stopWait = context.AfterFunc(ctx, func() {
				q.mu.Lock()
				q.data.Broadcast()
				q.mu.Unlock()
			})
			defer stopWait()
		}
		q.data.Wait()
	}
	e := q.waiting.popFront()
	q.waitingUnits -= e.units
	q.mu.Unlock()

	items, finished := e.b.Items(), false
	return e.b, func(bool) {
		q.mu.Lock()
		if !finished { // done is called once; a second call must not free room twice
			finished = true
			q.release(e.units, e.size, items)
		}
		q.mu.Unlock()
	}, true
}

func (q *memory) Close() error {
	q.mu.Lock()
	q.closed = true
	q.space.Broadcast()
	q.data.Broadcast()
	q.mu.Unlock()
	return nil
}

func (q *memory) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{
		Batches:  q.batches,
		Items:    q.items,
		Bytes:    q.bytes,
		Capacity: q.opts.Capacity,
	}
	if q.waiting.len() > 0 {
		s.Oldest = q.waiting.front().queued
	}
	return s
}

// errFullAfter is Block's answer once the caller stopped waiting: still ErrFull, so callers
// treat it as backpressure, and still the context's error, so they can tell why.
func errFullAfter(ctx context.Context) error {
	return fmt.Errorf("%w (gave up waiting for room: %w)", ErrFull, context.Cause(ctx))
}
