package server

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
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
//
// What requests release stays in the heap as garbage until the collector runs, and the Go
// runtime lets garbage grow as large as the live heap before it does: without more, a listener
// full of requests could cost twice its budget. So released bytes count as garbage until a
// collection that started after their release has finished (gcEpoch tells), and admission counts
// them: a request that fits only once the garbage is gone waits for a forced collection (tens of
// milliseconds, in bursts only). Once garbage passes half the budget a collection is started in
// the background, so that steady traffic seldom waits. With a heap of the budget's size or less
// the runtime collects sooner than either, and no collection is ever forced. What the runtime
// costs on top of the bytes held is kept out of the room (RuntimeShare), so that a full budget
// costs its size in resident memory, not more.
type Budget struct {
	limit int64
	// room is what admission lets requests hold and leave as garbage: the limit less the share
	// kept for the runtime's cost on those bytes (see RuntimeShare).
	room int64
	used atomic.Int64
	// peak is the most held since memory was last given back to the OS (returnMemory).
	peak atomic.Int64

	// released counts every byte ever released; collected, those of them a finished collection
	// has freed. Both only grow: the garbage is their difference.
	released, collected atomic.Int64
	// seen is gcEpoch when the budget last looked; snapReleased is released as it was at
	// snapEpoch, under mu.
	seen         atomic.Uint64
	mu           sync.Mutex
	snapEpoch    uint64
	snapReleased int64
	background   atomic.Bool  // a background collection is running
	forced       atomic.Int64 // collections forced, in the background or waited for
}

// RuntimeShare is the part of every budget (one in RuntimeShare) kept for what the Go runtime
// costs on top of the bytes requests hold: size-class rounding, GC metadata, freed pages not yet
// returned to the OS. Measured at 12–21% of what a full budget holds, so a quarter keeps the
// resident memory within the budget, with a margin, rather than up to a fifth over it.
const RuntimeShare = 4

// LimitFor is the smallest budget that admits n bytes at once.
func LimitFor(n int64) int64 { return n + n/(RuntimeShare-1) }

// NewBudget returns a budget of limit bytes, of which requests may hold all but the runtime's
// share (RuntimeShare).
func NewBudget(limit int64) *Budget {
	b := &Budget{limit: limit, room: limit - limit/RuntimeShare}
	b.snapEpoch = gcEpoch.Load()
	b.seen.Store(b.snapEpoch)
	return b
}

// gcEpoch counts garbage collections: a finalizer on a sentinel object runs after each cycle
// that found it unreachable, and arms the next. It may count fewer cycles than ran, never more.
var gcEpoch atomic.Uint64

type gcSentinel struct{ _ *int } // holds a pointer, so that it is never a tiny-allocator object

func init() { armGCSentinel() }

func armGCSentinel() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		gcEpoch.Add(1)
		armGCSentinel()
	})
}

// Garbage is the number of released bytes no finished collection is known to have freed.
func (b *Budget) Garbage() int64 {
	if b == nil {
		return 0
	}
	if e := gcEpoch.Load(); e != b.seen.Load() {
		b.mu.Lock()
		// Bytes released before the epoch was last seen to change were released before the
		// cycle after next started (its sentinel was allocated after they were), so once the
		// epoch has moved on by two from a snapshot, the snapshot's bytes are collected.
		if e >= b.snapEpoch+2 {
			storeMax(&b.collected, b.snapReleased)
			b.snapEpoch, b.snapReleased = e, b.released.Load()
		}
		b.seen.Store(e)
		b.mu.Unlock()
	}
	return max(b.released.Load()-b.collected.Load(), 0)
}

// collect runs a collection and counts what was released before it as collected.
func (b *Budget) collect() {
	forcing.Lock()
	defer forcing.Unlock()
	before := b.released.Load()
	if before <= b.collected.Load() {
		return // another collection got there first
	}
	b.forced.Add(1)
	runtime.GC()
	storeMax(&b.collected, before)
}

// forcing serialises forced collections: while one runs, another adds nothing.
var forcing sync.Mutex

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// TryAcquire takes n bytes if they fit, and reports whether they did. It never blocks.
func (b *Budget) TryAcquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	collected := false
	for {
		used := b.used.Load()
		if n > b.room-used {
			return false
		}
		if !collected && n > b.room-used-b.Garbage() {
			// It fits once the garbage is gone: wait for a collection, once.
			b.collect()
			collected = true
			continue
		}
		if b.used.CompareAndSwap(used, used+n) {
			if p := used + n; p > b.peak.Load() {
				b.peak.Store(p) // racy, but only ever a little low
			}
			return true
		}
	}
}

// Release gives back n bytes taken with TryAcquire, which were used: they count as garbage
// until collected (see Budget). Giving back more than was taken is a bug that would let the
// budget overflow silently, so it panics, as sync.WaitGroup does.
func (b *Budget) Release(n int64) { b.release(n, true) }

// Unreserve gives back n bytes taken with TryAcquire and never allocated (a reservation larger
// than what came): nothing for the collector.
func (b *Budget) Unreserve(n int64) { b.release(n, false) }

func (b *Budget) release(n int64, used bool) {
	if b == nil || n <= 0 {
		return
	}
	left := b.used.Add(-n)
	if left < 0 {
		panic("server: Budget released more bytes than were acquired")
	}
	if used {
		b.released.Add(n)
		b.collectIfMuchGarbage()
	}
	b.checkReturn(left)
}

// collectIfMuchGarbage starts a collection in the background once garbage passes half the
// budget's room, unless one is running.
func (b *Budget) collectIfMuchGarbage() {
	if b.Garbage() > b.room/2 && b.background.CompareAndSwap(false, true) {
		go func() {
			defer b.background.Store(false)
			b.collect()
		}()
	}
}

// checkReturn gives memory back to the OS when a burst has ended (see returnMemoryEvery).
func (b *Budget) checkReturn(left int64) {
	if q := b.limit / 4; left < q/4 && b.peak.Load() >= q && returnMemory() {
		b.peak.Store(left)
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

// Available is the room left for requests (never negative; the runtime's share is not room);
// the largest int64 for a nil budget.
func (b *Budget) Available() int64 {
	if b == nil {
		return 1<<63 - 1
	}
	return max(b.room-b.used.Load(), 0)
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
			Name:        "vigil_receiver_in_flight_garbage_bytes",
			Help:        "Bytes requests released that no finished garbage collection is known to have freed yet; admission counts them against max_in_flight_bytes.",
			ConstLabels: labels,
		}, func() float64 { return float64(b.Garbage()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "vigil_receiver_forced_gc_total",
			Help:        "Garbage collections the listener forced because released request bytes would otherwise have kept its budget full.",
			ConstLabels: labels,
		}, func() float64 { return float64(b.forced.Load()) }),
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
func (l *Lease) Release(n int64) { l.give(n, true) }

// Unreserve gives back n of the bytes the lease holds that were never allocated.
func (l *Lease) Unreserve(n int64) { l.give(n, false) }

func (l *Lease) give(n int64, used bool) {
	if l == nil || l.done {
		return
	}
	n = min(n, l.held-l.unread)
	if n > 0 {
		l.held -= n
		l.budget.release(n, used)
	}
}

// Done releases everything the lease holds (what was reserved for body bytes that never came
// is not garbage). Later reads of the body pass through uncounted.
func (l *Lease) Done() {
	if l == nil || l.done {
		return
	}
	l.done = true
	l.budget.Release(l.held - l.unread)
	l.budget.Unreserve(l.unread)
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
