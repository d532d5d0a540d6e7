package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestBudgetNeverOverflows: concurrent acquisitions never hold more than the limit together, and
// everything released brings the budget back to zero.
func TestBudgetNeverOverflows(t *testing.T) {
	b := NewBudget(LimitFor(1000)) // room for exactly 1000
	var peak, held atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 2000 {
				n := int64(i*37%300 + 1)
				if !b.TryAcquire(n) {
					continue
				}
				if h := held.Add(n); h > peak.Load() {
					peak.Store(h)
				}
				held.Add(-n)
				b.Release(n)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 1000 {
		t.Errorf("held %d bytes at once, limit 1000", peak.Load())
	}
	if b.InUse() != 0 {
		t.Errorf("InUse %d after everything was released", b.InUse())
	}
	if !b.TryAcquire(1000) || b.TryAcquire(1) || b.Available() != 0 {
		t.Error("a full budget must take exactly its limit")
	}
	b.Release(1000)
	defer func() {
		if recover() == nil {
			t.Error("releasing more than was acquired did not panic")
		}
	}()
	b.Release(1)
}

// TestHTTPBudgetRefusesBeforeReading: with the budget taken, a request gets 429 with Retry-After
// and its handler never runs; once the budget is free it passes, and its lease is given back
// when it is done. A body of undeclared length is charged as it is read.
func TestHTTPBudgetRefusesBeforeReading(t *testing.T) {
	budget := NewBudget(MinInFlight(DefaultMaxRequestBodySize))
	var rej rejects
	var ran atomic.Int32
	var inHandler atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		_, err := io.Copy(io.Discard, r.Body)
		inHandler.Store(budget.InUse())
		if errors.Is(err, ErrInFlightLimit) {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "ok")
	})
	url := serveHTTP(t, NewHTTP("127.0.0.1:0"), handler, WithBudget(budget), OnReject(rej.add))
	c := client(t, nil)
	post := func(body io.Reader) (*http.Response, string) {
		t.Helper()
		resp, err := c.Post(url, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	if !budget.TryAcquire(budget.Available() - 100) {
		t.Fatal("cannot take the budget")
	}
	resp, msg := post(bytes.NewReader(make([]byte, 1000)))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || !strings.Contains(msg, "max_in_flight_bytes") {
		t.Errorf("full budget: %s Retry-After %q %q, want 429, Retry-After 2 and a message", resp.Status, resp.Header.Get("Retry-After"), msg)
	}
	if ran.Load() != 0 || rej.String() != ReasonInFlightLimit {
		t.Errorf("handler ran %d times, rejects %q: want 0 and %q", ran.Load(), rej.String(), ReasonInFlightLimit)
	}
	// Undeclared length: the first reservation fits (64 KiB do not), so it is refused while read.
	budget.Release(chunkedReservation)
	resp, _ = post(io.MultiReader(bytes.NewReader(make([]byte, 200<<10))))
	if resp.StatusCode != http.StatusTooManyRequests || ran.Load() != 1 {
		t.Errorf("chunked body over the budget: %s after %d handler runs, want 429 from the handler", resp.Status, ran.Load())
	}
	budget.Release(budget.InUse())

	resp, msg = post(bytes.NewReader(make([]byte, 1000)))
	if resp.StatusCode != http.StatusOK || msg != "ok" {
		t.Errorf("free budget: %s %q", resp.Status, msg)
	}
	if got := inHandler.Load(); got != 1000 {
		t.Errorf("the handler saw %d bytes in use, want the body's 1000", got)
	}
	if budget.InUse() != 0 {
		t.Errorf("InUse %d after the request", budget.InUse())
	}
}

// TestGRPCBudgetRefusesNewCalls: while the budget has no room, a call is refused with
// RESOURCE_EXHAUSTED carrying RetryInfo (which OTLP clients retry) before its message is read.
func TestGRPCBudgetRefusesNewCalls(t *testing.T) {
	budget := NewBudget(MinInFlight(DefaultMaxRecvMsgSizeMiB << 20))
	var rej rejects
	addr := serveGRPC(t, NewGRPC("127.0.0.1:0"), WithBudget(budget), OnReject(rej.add))
	budget.TryAcquire(budget.Available() - 10)
	err := echo(t, addr, insecure.NewCredentials(), context.Background(), 100)
	st := status.Convert(err)
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if st.Code() != codes.ResourceExhausted || delay != RetryAfterBusy {
		t.Errorf("full budget: %v (retry delay %s), want RESOURCE_EXHAUSTED with RetryInfo %s", err, delay, RetryAfterBusy)
	}
	if rej.String() != ReasonInFlightLimit {
		t.Errorf("rejects %q", rej.String())
	}
	budget.Release(budget.InUse())
	if err := echo(t, addr, insecure.NewCredentials(), context.Background(), 100); err != nil {
		t.Errorf("free budget: %v", err)
	}
}

func TestInFlightValidation(t *testing.T) {
	h := NewHTTP("127.0.0.1:0")
	h.MaxInFlightBytes = 1 << 20
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "max_in_flight_bytes: must be at least") {
		t.Errorf("a budget smaller than one request: %v", err)
	}
	h.MaxInFlightBytes = -1
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "max_in_flight_bytes: must be >= 0") {
		t.Errorf("negative budget: %v", err)
	}
	h.MaxInFlightBytes = 0
	if got := h.InFlightLimit(); got < MinInFlight(h.MaxBodySize()) || got > max(defaultInFlightCap, 4*h.MaxBodySize()) {
		t.Errorf("default budget %d out of range", got)
	}
	old := availableMemory
	t.Cleanup(func() { availableMemory = old })
	availableMemory = func() uint64 { return 128 << 20 } // a small container: the floor holds
	if got, want := h.InFlightLimit(), max(4*h.MaxBodySize(), MinInFlight(h.MaxBodySize())); got != want {
		t.Errorf("default budget in 128 MiB: %d, want the floor %d", got, want)
	}
	availableMemory = func() uint64 { return 4 << 30 } // a quarter of 4 GiB, capped at 256 MiB
	if got := h.InFlightLimit(); got != defaultInFlightCap {
		t.Errorf("default budget in 4 GiB: %d, want %d", got, defaultInFlightCap)
	}
}

// TestBudgetCountsGarbage: bytes released count against the budget until a collection has run
// since: a request that fits only without them waits for one collection and is admitted;
// bytes never used (Unreserve) are not garbage; garbage over half the budget starts a collection
// in the background; and the runtime's own collections clear it too.
func TestBudgetCountsGarbage(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // only the collections the test makes
	b := NewBudget(LimitFor(1000))                   // room for exactly 1000
	if !b.TryAcquire(400) {
		t.Fatal("an empty budget refused 400 bytes")
	}
	b.Release(400)
	if g := b.Garbage(); g != 400 {
		t.Fatalf("garbage %d after releasing 400 bytes, want 400", g)
	}
	if b.forced.Load() != 0 {
		t.Fatal("a collection was forced below half the budget")
	}
	if !b.TryAcquire(500) || b.forced.Load() != 0 {
		t.Fatalf("500 bytes beside 400 of garbage: admitted without a collection? forced %d", b.forced.Load())
	}
	if !b.TryAcquire(300) {
		t.Fatal("300 bytes that fit once the garbage is collected were refused")
	}
	if b.forced.Load() != 1 || b.Garbage() != 0 {
		t.Fatalf("after the wait: %d collections forced, garbage %d; want 1 and 0", b.forced.Load(), b.Garbage())
	}
	b.Unreserve(300)
	if g := b.Garbage(); g != 0 {
		t.Fatalf("garbage %d after unreserving, want 0", g)
	}
	b.Release(500) // garbage 500: not more than half
	if b.TryAcquire(1001) {
		t.Fatal("more than the limit was admitted")
	}
	b.Release(0)
	if !b.TryAcquire(1) {
		t.Fatal("1 byte refused")
	}
	b.Release(1) // garbage 501: over half, a collection starts in the background
	deadline := time.Now().Add(10 * time.Second)
	for b.Garbage() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g, f := b.Garbage(), b.forced.Load(); g != 0 || f != 2 {
		t.Fatalf("garbage over half the budget: garbage %d, %d collections forced; want 0 and 2", g, f)
	}
	// The runtime's collections (here runtime.GC) clear garbage without forcing one.
	if !b.TryAcquire(100) {
		t.Fatal("100 bytes refused")
	}
	b.Release(100)
	for b.Garbage() != 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if g, f := b.Garbage(), b.forced.Load(); g != 0 || f != 2 {
		t.Fatalf("after the runtime's collections: garbage %d, %d forced; want 0 and 2", g, f)
	}
}
