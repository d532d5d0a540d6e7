package server

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RetryAfterBusy is what a client refused for lack of budget is told to wait. Requests in flight
// finish within milliseconds to a few seconds (a decompression bomb is cut off at the size
// limit), so by then the budget has room again; sooner would only add refusals.
const RetryAfterBusy = 2 * time.Second

// MaxPooledBuffer is the largest buffer receivers keep in a sync.Pool for the next request. Most
// requests are well under it (an SDK batch of 512 spans is 50–300 KB), so pooling up to it saves
// nearly every allocation, while a buffer grown for a rare large request — or for a
// decompression bomb cut off at the size limit — goes back to the garbage collector instead of
// pinning tens of megabytes for as long as traffic keeps the pool alive.
const MaxPooledBuffer = 1 << 20

// ErrInFlightLimit is returned when a request's bytes do not fit the listener's budget.
var ErrInFlightLimit = errors.New("the receiver holds as many request bytes as max_in_flight_bytes allows; retry later")

// Budget bounds the bytes a listener holds for the requests in flight: bodies as received,
// and what decompressing them produces. A request acquires before it reads or inflates and
// is refused (429, RESOURCE_EXHAUSTED) when the budget has no room; it releases once its
// bytes are handed to a pipeline or dropped. From then on the memory limiter accounts for
// them, so that the two bounds add up rather than overlap.
//
// It is lock-free: one atomic counter, acquired with compare-and-swap. A nil *Budget has no
// limit. The zero value has no room at all; use NewBudget.
type Budget struct {
	limit int64
	used  atomic.Int64
	// peak is the most held since memory was last given back to the OS (returnMemory).
	peak atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// TryAcquire takes n bytes if they fit, and reports whether they did. It never blocks.
func (b *Budget) TryAcquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if n > b.limit-used {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			if p := used + n; p > b.peak.Load() {
				b.peak.Store(p) // racy, but only ever a little low
			}
			return true
		}
	}
}

// Release gives back n bytes taken with TryAcquire. Giving back more than was taken is a bug
// that would let the budget overflow silently, so it panics, as sync.WaitGroup does.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	used := b.used.Add(-n)
	if used < 0 {
		panic("server: Budget released more bytes than were acquired")
	}
	if q := b.limit / 4; used < q/4 && b.peak.Load() >= q && returnMemory() {
		b.peak.Store(used)
	}
}

// After a burst, memory goes back to the OS at once. The bytes a burst of large requests held
// are garbage once they are released (or idle in pools, which the collector empties after two
// cycles), but the Go runtime collects only when the heap grows again and returns freed pages
// over minutes, so an agent that took a burst of bombs would stay large for as long as its
// traffic is light — and a container's working set is what gets it OOM-killed or scaled. So
// when a listener's use falls back below a sixteenth of its budget after having passed a
// quarter of it, two collections (the second frees what the first left in the pools' victim
// caches) and debug.FreeOSMemory run in the background, at most once per returnMemoryEvery in
// the process. Bursts that small leave too little behind to be worth a forced collection.
const returnMemoryEvery = 15 * time.Second

var lastReturn atomic.Int64 // unix nanoseconds of the last start of returnMemory's work

// returnMemory starts giving memory back unless that happened within returnMemoryEvery; it
// reports whether it started.
func returnMemory() bool {
	now := time.Now().UnixNano()
	last := lastReturn.Load()
	if now-last < int64(returnMemoryEvery) || !lastReturn.CompareAndSwap(last, now) {
		return false
	}
	go func() {
		runtime.GC()
		debug.FreeOSMemory()
	}()
	return true
}

// InUse is the number of bytes acquired and not released.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit is the budget's size; 0 for a nil budget (no limit).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Available is the room left (never negative); the largest int64 for a nil budget.
func (b *Budget) Available() int64 {
	if b == nil {
		return 1<<63 - 1
	}
	return max(b.limit-b.used.Load(), 0)
}

// Metrics returns the budget's gauges, labelled with the listener's protocol, for a receiver to
// register while it runs (its Registerer adds the component's labels).
func (b *Budget) Metrics(protocol string) []prometheus.Collector {
	labels := prometheus.Labels{"protocol": protocol}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vigil_receiver_in_flight_bytes",
			Help:        "Bytes the listener holds for requests in flight (bodies and what decompressing them produced), counted against max_in_flight_bytes.",
			ConstLabels: labels,
		}, func() float64 { return float64(b.InUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vigil_receiver_in_flight_limit_bytes",
			Help:        "The listener's max_in_flight_bytes.",
			ConstLabels: labels,
		}, func() float64 { return float64(b.Limit()) }),
	}
}

// chunkedReservation is what a body of unknown length (chunked, or HTTP/2 without
// Content-Length) reserves before it is read, and the step its reservation grows by while it
// is read: small enough that a refused request wasted little, large enough that a body of
// megabytes needs few compare-and-swaps.
const chunkedReservation = 64 << 10

// Lease is one HTTP request's share of its listener's Budget. The listener reserves the body
// before the handler runs (its Content-Length, or chunkedReservation when the length is not
// declared, grown as the body is read); the handler takes more with TryAcquire as
// decompression produces bytes, and calls Done once the request's bytes are handed off. The
// listener calls Done after the handler in any case, so nothing leaks.
//
// A Lease is used by the goroutine serving its request only. A nil *Lease has no budget: every
// acquisition succeeds.
type Lease struct {
	budget *Budget
	body   io.ReadCloser
	held   int64
	// unread is the part of held reserved for body bytes not read yet; known is set when the
	// whole declared length was reserved up front.
	unread int64
	known  bool
	done   bool
}

// LeaseOf returns the request's lease, or nil when the request did not come through a server
// made by HTTP.NewServer with a budget (a handler called directly in a test, say).
func LeaseOf(r *http.Request) *Lease {
	l, _ := r.Body.(*Lease)
	return l
}

// TryAcquire adds n bytes to the lease if the budget has room for them. After Done it takes
// nothing and succeeds: the request no longer counts.
func (l *Lease) TryAcquire(n int64) bool {
	if l == nil || l.done || n <= 0 {
		return true
	}
	if !l.budget.TryAcquire(n) {
		return false
	}
	l.held += n
	return true
}

// Release gives back n of the bytes the lease holds (at most what it holds).
func (l *Lease) Release(n int64) {
	if l == nil || l.done {
		return
	}
	n = min(n, l.held-l.unread)
	if n > 0 {
		l.held -= n
		l.budget.Release(n)
	}
}

// Done releases everything the lease holds. Later reads of the body pass through uncounted.
func (l *Lease) Done() {
	if l == nil || l.done {
		return
	}
	l.done = true
	l.budget.Release(l.held)
	l.held, l.unread = 0, 0
}

// Read reads the body within the reservation, growing it for bodies of undeclared length.
func (l *Lease) Read(p []byte) (int, error) {
	if l.done || l.known {
		return l.body.Read(p)
	}
	if len(p) == 0 {
		return l.body.Read(p)
	}
	if l.unread == 0 {
		if !l.budget.TryAcquire(chunkedReservation) {
			// Out of budget: read one byte to tell the end of the body (nothing lost) from more
			// of it (refused; the byte is not worth a reservation).
			var one [1]byte
			n, err := l.body.Read(one[:])
			if n == 0 {
				return 0, err
			}
			return 0, ErrInFlightLimit
		}
		l.held += chunkedReservation
		l.unread = chunkedReservation
	}
	if int64(len(p)) > l.unread {
		p = p[:l.unread]
	}
	n, err := l.body.Read(p)
	l.unread -= int64(n)
	return n, err
}

// Close closes the body.
func (l *Lease) Close() error { return l.body.Close() }

// admit reserves r's body in b and installs the lease as r.Body; false when b has no room.
func admit(b *Budget, r *http.Request) bool {
	l := &Lease{budget: b, body: r.Body}
	switch {
	case r.ContentLength >= 0:
		// The length is a claim the server holds the client to (net/http reads no more), so
		// the whole body is reserved before a byte of it is read.
		if !b.TryAcquire(r.ContentLength) {
			return false
		}
		l.held, l.known = r.ContentLength, true
	default:
		if !b.TryAcquire(chunkedReservation) {
			return false
		}
		l.held, l.unread = chunkedReservation, chunkedReservation
	}
	r.Body = l
	return true
}
