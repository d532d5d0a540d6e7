// Package bufpool keeps the byte buffers requests are built in (and other scratch) for the
// next request, whatever the garbage collector does. A sync.Pool is emptied over two collections; an agent under load
// collects a few times a second, about as often as it builds a request, so such a pool mostly
// misses and every request allocates (and the runtime zeroes) megabytes again.
//
// A request body handed to net/http may be read and closed after Client.Do has returned, so
// Body counts who still holds the buffer: the sender until it calls Release, and each reader
// the transport opened until it closes it. The buffer goes back to the pool after the last.
package bufpool

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// List is a bounded free list: what Put gives back, Get returns, up to its length; what does
// not fit is left to the collector.
type List[T any] struct{ free chan T }

// NewList keeps up to n values.
func NewList[T any](n int) *List[T] { return &List[T]{free: make(chan T, n)} }

// Get returns a kept value, or false when there is none.
func (l *List[T]) Get() (T, bool) {
	select {
	case v := <-l.free:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

// Put keeps v unless the list is full.
func (l *List[T]) Put(v T) {
	select {
	case l.free <- v:
	default:
	}
}

// Pool is a bounded free list of buffers.
type Pool struct {
	list   *List[*[]byte]
	maxCap int
}

// New keeps up to n buffers of at most maxCap bytes of capacity each (larger ones are left
// to the collector, so one outsized request does not stay resident).
func New(n, maxCap int) *Pool {
	return &Pool{list: NewList[*[]byte](n), maxCap: maxCap}
}

// Get returns an empty buffer, with the capacity of one used before when there is one.
func (p *Pool) Get() *[]byte {
	if b, ok := p.list.Get(); ok {
		*b = (*b)[:0]
		return b
	}
	return new([]byte)
}

// Put gives b back; b must not be used after.
func (p *Pool) Put(b *[]byte) {
	if b != nil && cap(*b) <= p.maxCap {
		p.list.Put(b)
	}
}

// Body is a request body over a pooled buffer.
type Body struct {
	pool     *Pool
	buf      *[]byte
	refs     atomic.Int32
	released atomic.Bool
}

// Body wraps b, which the caller holds until it calls Release.
func (p *Pool) Body(b *[]byte) *Body {
	body := &Body{pool: p, buf: b}
	body.refs.Store(1)
	return body
}

// Len is the body's size in bytes.
func (b *Body) Len() int { return len(*b.buf) }

// Set makes b the body of req: its length is known, and the transport can open it again
// (a retry on a connection that closed before anything was written).
func (b *Body) Set(req *http.Request) {
	req.ContentLength = int64(b.Len())
	req.Body = b.open()
	req.GetBody = func() (io.ReadCloser, error) { return b.open(), nil }
}

// Release is the caller's end of it: call it once Client.Do has returned. A second call does
// nothing.
func (b *Body) Release() {
	if b.released.CompareAndSwap(false, true) {
		b.release()
	}
}

func (b *Body) open() io.ReadCloser {
	b.refs.Add(1)
	return &reader{r: bytes.NewReader(*b.buf), body: b}
}

func (b *Body) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.Put(b.buf)
		b.buf = nil
	}
}

// reader is one opening of the body. The transport may close it from another goroutine than
// the one reading it, so the two take turns: no read touches the buffer once it is closed.
type reader struct {
	mu   sync.Mutex
	r    *bytes.Reader // nil once closed
	body *Body
}

func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r == nil {
		return 0, errClosed
	}
	return r.r.Read(p)
}

func (r *reader) Close() error {
	r.mu.Lock()
	open := r.r != nil
	r.r = nil
	r.mu.Unlock()
	if open {
		r.body.release()
	}
	return nil
}

var errClosed = errors.New("bufpool: read of a closed body")
