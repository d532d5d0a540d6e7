package otlp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/testdata"
)

// TestBodyChunks reads bodies around the chunk size and the limit: every byte comes back in
// order, and one byte over the limit is errTooLarge.
func TestBodyChunks(t *testing.T) {
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
		src := make([]byte, n)
		_, _ = rand.Read(src)
		for _, limit := range []int64{int64(n), int64(n) + 1, int64(n) - 1} {
			if limit < 0 {
				continue
			}
			t.Run(fmt.Sprintf("%d bytes, limit %d", n, limit), func(t *testing.T) {
				var b body
				defer b.free()
				err := b.readLimited(bytes.NewReader(src), limit, nil)
				if int64(n) > limit {
					if !errors.Is(err, errTooLarge) {
						t.Fatalf("err %v, want errTooLarge", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := b.join(); !bytes.Equal(got, src) || cap(got) != n {
					t.Fatalf("joined %d bytes (cap %d), want the %d sent", len(got), cap(got), n)
				}
			})
		}
	}
}

// TestHTTPBombsWithinBudget: 20 gzip, zstd and deflate bombs and 20 valid requests at once. The
// bombs are refused (413, or 429 when the budget is full), every valid request is accepted or
// refused retryably, and the listener never holds more than its budget.
func TestHTTPBombsWithinBudget(t *testing.T) {
	s, next := newSinks(batch.Traces)
	cfg := testConfig()
	cfg.Protocols.HTTP.MaxRequestBodySize = 4 << 20
	cfg.Protocols.HTTP.MaxInFlightBytes = server.MinInFlight(4 << 20)
	r := start(t, cfg, next)
	// With many requests at once the client dials spare connections that never carry one; the
	// server's Shutdown waits 5s for such new connections, so they are closed first.
	t.Cleanup(httpClient.CloseIdleConnections)
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			peak.Store(max(peak.Load(), r.httpBudget.InUse()))
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	})
	zeros := make([]byte, 16<<20)
	bombs := map[string][]byte{}
	for _, enc := range []string{"gzip", "zstd", "deflate"} {
		bombs[enc] = compress(t, enc, zeros)
	}
	valid := payloadFor(t, batch.Traces, 0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		problems []string
	)
	for i := range 20 {
		wg.Go(func() {
			enc := []string{"gzip", "zstd", "deflate"}[i%3]
			resp, msg := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, encoding: enc, body: bytes.NewReader(bombs[enc])})
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusTooManyRequests {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s bomb: %s %s", enc, resp.Status, msg))
				mu.Unlock()
			}
		})
		wg.Go(func() {
			resp, msg := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, encoding: "gzip", body: bytes.NewReader(compress(t, "gzip", valid.proto))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case resp.StatusCode == http.StatusOK:
				accepted++
			case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
			default:
				problems = append(problems, fmt.Sprintf("valid request: %s %s", resp.Status, msg))
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if p, limit := peak.Load(), r.httpBudget.Limit(); p > limit || p == 0 {
		t.Errorf("peak in flight %d bytes, budget %d", p, limit)
	}
	if n := r.httpBudget.InUse(); n != 0 {
		t.Errorf("%d bytes still held after every request was answered", n)
	}
	if got := s[batch.Traces].Items(); got != accepted*valid.items {
		t.Errorf("sink holds %d spans, want %d from %d accepted requests", got, accepted*valid.items, accepted)
	}
	t.Logf("peak %d of %d bytes; %d of 20 valid requests accepted, %d refused for the budget",
		peak.Load(), r.httpBudget.Limit(), accepted, rejected(r, "http", reasonInFlight))
}

// TestGRPCDecompressionOverBudgetIsRetryable: a valid gzip or zstd request admitted while the
// gRPC budget has little room left, and whose decompression then does not fit, is refused with
// RESOURCE_EXHAUSTED and RetryInfo (which OTLP clients retry), not with the INTERNAL status gRPC
// gives a decompressor's error (which they drop); once the budget has room it is accepted.
func TestGRPCDecompressionOverBudgetIsRetryable(t *testing.T) {
	s, next := newSinks(batch.Traces)
	r := start(t, testConfig(), next)
	conn := dial(t, r.GRPCAddr())
	// Much larger decompressed than compressed, and than the room left below.
	big := ptraceotlp.NewExportRequestFromTraces(testdata.Traces(20, 100, 0))
	p := payload{sig: batch.Traces, items: big.Traces().SpanCount()}
	var err error
	if p.proto, err = big.MarshalProto(); err != nil {
		t.Fatal(err)
	}
	room := int64(len(p.proto) / 4)
	for _, comp := range []string{"gzip", "zstd"} {
		held := r.grpcBudget.Available() - room
		if !r.grpcBudget.TryAcquire(held) {
			t.Fatal("could not hold the budget")
		}
		err := exportGRPC(t.Context(), conn, p, grpc.UseCompressor(comp))
		r.grpcBudget.Release(held)
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted || len(st.Details()) == 0 {
			t.Errorf("%s: a %d-byte request with %d bytes of budget left: %v, want RESOURCE_EXHAUSTED with RetryInfo", comp, len(p.proto), room, err)
		}
		if err := exportGRPC(t.Context(), conn, p, grpc.UseCompressor(comp)); err != nil {
			t.Errorf("%s: with the budget free: %v", comp, err)
		}
	}
	if got := rejected(r, "grpc", reasonInFlight); got != 2 {
		t.Errorf("%d refusals counted for the in-flight limit, want 2", got)
	}
	if got := s[batch.Traces].Items(); got != 2*p.items {
		t.Errorf("%d spans delivered, want %d", got, 2*p.items)
	}
	if u := r.grpcBudget.InUse(); u != 0 {
		t.Errorf("%d bytes of the budget still held", u)
	}
}
