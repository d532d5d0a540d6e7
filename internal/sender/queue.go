package sender

import (
	"context"
	"errors"
	"sync"

	"github.com/vigilhq/vigil/internal/batch"
)

// Queue holds batches between Consume and the consumers that send them. The memory queue is the
// default; a persistent one (a WAL) implements the same contract.
type Queue interface {
	// Put adds b. When the queue is full it returns ErrFull at once, or, if the queue was made
	// to block, waits for room until ctx ends (returning ctx's error). After Close it returns
	// ErrClosed. The queue owns b only if Put returned nil.
	Put(ctx context.Context, b *batch.Batch) error
	// Get waits for the next batch. release must be called once the batch is finished with
	// (delivered, or given up on for good) so that a persistent queue can forget it; a batch
	// that is never released (shutdown cut its delivery short) stays in a persistent queue for
	// the next start. ok is false when ctx ended, or when the queue is closed and empty. While
	// batches are waiting, Get returns them even if ctx has ended, so a queue can be drained
	// with a cancelled context.
	Get(ctx context.Context) (b *batch.Batch, release func(), ok bool)
	// Close stops Put; Get goes on returning what is left. Close is idempotent.
	Close()
	Len() int // batches waiting
	Cap() int // capacity in batches
}

var (
	// ErrFull is returned by Put on a full queue.
	ErrFull = errors.New("sending queue is full")
	// ErrClosed is returned by Put once the queue is closed.
	ErrClosed = errors.New("sending queue is closed: the exporter is shutting down")
)

// memoryQueue is a bounded channel. Producers hold a read lock while sending so that Close can
// close the channel without racing a send; closing is announced first on a separate channel so
// that producers blocked on a full queue give up their lock.
type memoryQueue struct {
	ch      chan *batch.Batch
	block   bool
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	once    sync.Once
}

// NewMemoryQueue returns a queue of capacity batches; block makes Put wait for room.
func NewMemoryQueue(capacity int, block bool) Queue {
	return &memoryQueue{ch: make(chan *batch.Batch, capacity), block: block, closing: make(chan struct{})}
}

func (q *memoryQueue) Put(ctx context.Context, b *batch.Batch) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.ch <- b:
		return nil
	default:
	}
	if !q.block {
		return ErrFull
	}
	select {
	case q.ch <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.closing:
		return ErrClosed
	}
}

func noRelease() {}

func (q *memoryQueue) Get(ctx context.Context) (*batch.Batch, func(), bool) {
	select {
	case b, ok := <-q.ch:
		return b, noRelease, ok
	default:
	}
	select {
	case b, ok := <-q.ch:
		return b, noRelease, ok
	case <-ctx.Done():
		return nil, nil, false
	}
}

func (q *memoryQueue) Close() {
	q.once.Do(func() {
		close(q.closing)
		q.mu.Lock()
		q.closed = true
		close(q.ch)
		q.mu.Unlock()
	})
}

func (q *memoryQueue) Len() int { return len(q.ch) }
func (q *memoryQueue) Cap() int { return cap(q.ch) }
