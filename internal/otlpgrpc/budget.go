package otlpgrpc

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/mem"
)

// Budget is what decompression is charged to: a listener's budget of bytes in flight
// (*server.Budget), or one request's share of it (*server.Lease). TryAcquire never blocks; a
// decompressor that cannot acquire stops with ErrInFlightLimit.
type Budget interface {
	TryAcquire(n int64) bool
	Release(n int64)   // bytes used, now garbage
	Unreserve(n int64) // bytes acquired and never used
}

// SharedBudget is a listener's budget as the gRPC decompressors see it.
type SharedBudget interface {
	Budget
	Available() int64
}

// ErrInFlightLimit is the error of a decompression stopped because its budget had no room
// (NewZstdReader), and of a message other than *Raw whose decompression was refused.
var ErrInFlightLimit = errors.New("decompressing the message would exceed max_in_flight_bytes; retry later")

// A decompressor refused for lack of budget must not fail: gRPC turns a decompressor's error
// into an INTERNAL status and writes it to the client itself, before the handler sees the error,
// and OTLP clients drop what is refused as INTERNAL. So a refused decompression ends the message
// instead, with refusalMarker after whatever it produced, and Codec.Unmarshal turns a message
// that ends so into Raw.Refused, which the receiver answers with RESOURCE_EXHAUSTED and
// RetryInfo. The marker is random per process and never sent anywhere, so no client can end a
// message with it other than by chance (2^-256); one that did would only have its own request
// refused. A message refused within 32 bytes of the receive limit goes over it with the marker
// and is refused as too large instead.
var refusalMarker = func() (m [32]byte) {
	_, _ = rand.Read(m[:]) // never fails (crypto/rand)
	return m
}()

// refused reports whether data ends with refusalMarker.
func refused(data mem.BufferSlice) bool {
	want := refusalMarker[:]
	for i := len(data) - 1; i >= 0 && len(want) > 0; i-- {
		b := data[i].ReadOnlyData()
		n := min(len(b), len(want))
		if !bytes.Equal(b[len(b)-n:], want[len(want)-n:]) {
			return false
		}
		want = want[:len(want)-n]
	}
	return len(want) == 0
}

// refusal is the reader a decompressor returns when the budget has no room even for the
// compressed message or the decoder.
func refusal() io.Reader { return &chargedReader{rest: refusalMarker[:]} }

// The budgets gRPC decompression is charged to. gRPC's compressors are process-wide (looked up by
// name in a registry) and are told nothing about the call or the server a message came to, so
// they cannot find the listener's budget themselves.
var charged struct {
	mu      sync.Mutex
	budgets atomic.Pointer[[]SharedBudget]
}

// ChargeDecompression makes the gzip and zstd decompressors of every gRPC server in the process
// charge what they hold to b while they read a message: the compressed message, the decoder's
// window, and the bytes they produce. A message that does not fit is refused with
// ErrInFlightLimit, which the receiver answers with RESOURCE_EXHAUSTED. With one gRPC listener
// (the usual case) that is its own budget, exactly. gRPC does not tell a decompressor which
// server the message came to, so with several budgets registered a message is charged to the one
// with the most room: each listener's figure is then approximate, their sum still a bound.
//
// The returned function unregisters b; call it once the server has stopped.
func ChargeDecompression(b SharedBudget) (remove func()) {
	charged.mu.Lock()
	defer charged.mu.Unlock()
	var list []SharedBudget
	if p := charged.budgets.Load(); p != nil {
		list = slices.Clone(*p)
	}
	list = append(list, b)
	charged.budgets.Store(&list)
	return sync.OnceFunc(func() {
		charged.mu.Lock()
		defer charged.mu.Unlock()
		list := slices.Clone(*charged.budgets.Load())
		if i := slices.Index(list, b); i >= 0 {
			list = slices.Delete(list, i, i+1)
		}
		charged.budgets.Store(&list)
	})
}

// chargedBudget returns the registered budget with the most room, or nil when there is none
// (a client decompressing a response in a process without receivers, a test server).
func chargedBudget() Budget {
	p := charged.budgets.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	best := (*p)[0]
	for _, b := range (*p)[1:] {
		if b.Available() > best.Available() {
			best = b
		}
	}
	return best
}

// acquire and release treat a nil budget as unlimited.
func acquire(b Budget, n int64) bool { return b == nil || n <= 0 || b.TryAcquire(n) }

func release(b Budget, n int64) {
	if b != nil && n > 0 {
		b.Release(n)
	}
}

func unreserve(b Budget, n int64) {
	if b != nil && n > 0 {
		b.Unreserve(n)
	}
}

// compressedSize is the size of the message gRPC hands a decompressor (a mem.Reader, which
// knows it), or 0 for other readers.
func compressedSize(r io.Reader) int64 {
	if rr, ok := r.(interface{ Remaining() int }); ok {
		return int64(rr.Remaining())
	}
	return 0
}

// chargedReader is what the gRPC decompressors return: a fresh wrapper per message around a
// pooled decoder, so that a late Read from gRPC after the end cannot reach a decoder another
// message now uses. It charges the bytes it produces to its budget before producing them and
// releases them, with the compressed message, when gRPC closes it after reading the message (or
// at the end of the stream, whichever comes first). The decompressed bytes then sit in gRPC's
// buffers until the codec copies them out, microseconds later.
type chargedReader struct {
	r      decoder // nil once finished
	budget Budget
	held   int64
	rest   []byte // what is left to produce of refusalMarker, once refused
}

// decoder is a pooled decoder for one message. finish returns it to its pool; ok is false when
// it failed, and its state is then not trusted.
type decoder interface {
	io.Reader
	finish(ok bool)
}

func (c *chargedReader) Read(p []byte) (int, error) {
	if c.r == nil {
		if len(c.rest) > 0 {
			n := copy(p, c.rest)
			c.rest = c.rest[n:]
			return n, nil
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := int64(len(p))
	if !acquire(c.budget, want) {
		c.done(true)
		c.rest = refusalMarker[:]
		return c.Read(p)
	}
	n, err := c.r.Read(p)
	unreserve(c.budget, want-int64(n))
	c.held += int64(n)
	if err != nil {
		c.done(err == io.EOF)
	}
	return n, err
}

// Close releases what the reader holds; gRPC calls it once it has read the message.
func (c *chargedReader) Close() error {
	c.done(true)
	return nil
}

func (c *chargedReader) done(ok bool) {
	if c.r == nil {
		return
	}
	r := c.r
	c.r = nil
	release(c.budget, c.held)
	c.held = 0
	r.finish(ok)
}
