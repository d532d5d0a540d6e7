//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	be "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the valid gRPC clients compress
	"google.golang.org/grpc/status"
)

// Both listeners get an 86 MiB budget of bytes in flight (about the least a 16 MiB request
// limit allows) and a 16 MiB request limit.
const (
	admissionBudget = 86 << 20
	admissionVigil  = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
        max_recv_msg_size_mib: 16
        max_in_flight_bytes: %[5]d
      http:
        endpoint: %[2]s
        max_request_body_size: 16777216
        max_in_flight_bytes: %[5]d
exporters:
  file:
    path: %[3]s
    flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`
)

// bombs are 1 GiB of zeros, compressed to about a MiB (gzip) or a few KiB (zstd).
func bombs(t *testing.T) (gz, zs []byte) {
	t.Helper()
	// 1 GiB of zeros each, compressed as it is written (a MiB at a time), so that the test
	// itself never holds the gigabyte.
	zeros := make([]byte, 1<<20)
	compress := func(w io.WriteCloser, buf *bytes.Buffer) []byte {
		for range 1024 {
			if _, err := w.Write(zeros); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(buf.Bytes())
	}
	var gzBuf, zsBuf bytes.Buffer
	zw, _ := kgzip.NewWriterLevel(&gzBuf, kgzip.BestSpeed)
	gz = compress(zw, &gzBuf)
	enc, err := zstd.NewWriter(&zsBuf)
	if err != nil {
		t.Fatal(err)
	}
	zs = compress(enc, &zsBuf)
	return gz, zs
}

// grpcBomb sends a pre-compressed gRPC message (a bomb a real client library would not produce)
// over HTTP/2 cleartext, and returns the grpc-status the server answered with.
func grpcBomb(ctx context.Context, tr *http2.Transport, addr string, compressed []byte) (codes.Code, string, error) {
	frame := make([]byte, 5, 5+len(compressed))
	frame[0] = 1 // compressed
	be.BigEndian.PutUint32(frame[1:], uint32(len(compressed)))
	frame = append(frame, compressed...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+addr+"/opentelemetry.proto.collector.trace.v1.TraceService/Export", bytes.NewReader(frame))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Grpc-Encoding", "gzip")
	req.Header.Set("Te", "trailers")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	s := resp.Trailer.Get("Grpc-Status")
	msg := resp.Trailer.Get("Grpc-Message")
	if s == "" { // a trailers-only answer
		s, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, "", fmt.Errorf("no grpc-status in the answer (HTTP %s)", resp.Status)
	}
	return codes.Code(n), msg, nil
}

// trickle is a body of left garbage bytes sent at 2 MiB/s.
type trickle struct{ left int }

func (r *trickle) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left, 1<<20)
	time.Sleep(time.Duration(n) * 500 * time.Millisecond / (1 << 20))
	for i := range p[:n] {
		p[i] = 0xff
	}
	r.left -= n
	return n, nil
}

// TestBombsAndValidRequestsAtOnce sends 50 decompression bombs (gzip and zstd over OTLP/HTTP,
// gzip over OTLP/gRPC), 5 slow uploads and 50 valid requests at the same time. Every bomb is refused, every valid
// request is accepted or refused retryably (and accepted when retried), the agent's peak RSS
// stays within its baseline plus the two listeners' budgets, and its RSS comes back near the
// baseline afterwards: large buffers are not kept in pools.
func TestBombsAndValidRequestsAtOnce(t *testing.T) {
	grpcAddr, httpAddr, tel := freeAddr(t), freeAddr(t), freeAddr(t)
	out := filepath.Join(t.TempDir(), "traces.jsonl")
	v := startVigil(t, "vigil", fmt.Sprintf(admissionVigil, grpcAddr, httpAddr, out, tel, admissionBudget), tel)
	gz, zs := bombs(t)
	id := runID(t)
	valid := gzipped(t, tracesRequest(t, 200, id, false))

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	t.Cleanup(client.CloseIdleConnections)
	h2 := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(h2.CloseIdleConnections)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	grpcClient := ptraceotlp.NewGRPCClient(conn)
	validReq := ptraceotlp.NewExportRequest()
	if err := validReq.UnmarshalProto(tracesRequest(t, 200, id, false)); err != nil {
		t.Fatal(err)
	}

	post := func(body []byte, encoding string) (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", encoding)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), nil
	}

	// Warm up, so that the baseline includes what serving at all costs.
	for range 20 {
		if code, _, err := post(valid, "gzip"); err != nil || code != http.StatusOK {
			t.Fatalf("warm-up: %d %v", code, err)
		}
		if _, err := grpcClient.Export(context.Background(), validReq, grpc.UseCompressor("gzip")); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	time.Sleep(2 * time.Second)
	baseline, err := vmRSS(v.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rss := sampleRSS(v.cmd.Process.Pid, 5*time.Millisecond)

	var (
		mu       sync.Mutex
		problems []string
		refused  = map[string]int{} // how the valid requests were first answered
		accepted int
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() { // a bomb
			<-start
			switch {
			case i < 25:
				code, _, err := post(gz, "gzip")
				if err != nil || (code != http.StatusRequestEntityTooLarge && code != http.StatusTooManyRequests) {
					problem("HTTP gzip bomb: %d %v, want 413 or 429", code, err)
				}
			case i < 35:
				code, _, err := post(zs, "zstd")
				if err != nil || (code != http.StatusRequestEntityTooLarge && code != http.StatusTooManyRequests) {
					problem("HTTP zstd bomb: %d %v, want 413 or 429", code, err)
				}
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				code, msg, err := grpcBomb(ctx, h2, grpcAddr, gz)
				if err != nil || code != codes.ResourceExhausted {
					problem("gRPC gzip bomb: %v %q %v, want RESOURCE_EXHAUSTED", code, msg, err)
				}
			}
		})
		wg.Go(func() { // a valid request, retried as an OTLP client would
			<-start
			deadline := time.Now().Add(45 * time.Second)
			for first := true; time.Now().Before(deadline); first = false {
				var how string
				if i < 35 {
					code, retryAfter, err := post(valid, "gzip")
					switch {
					case err != nil:
						problem("valid HTTP request: %v", err)
						return
					case code == http.StatusOK:
						mu.Lock()
						accepted++
						mu.Unlock()
						return
					case code == http.StatusTooManyRequests && retryAfter != "":
						how = "http 429"
					default:
						problem("valid HTTP request: %d (Retry-After %q), want 200 or 429 with Retry-After", code, retryAfter)
						return
					}
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := grpcClient.Export(ctx, validReq, grpc.UseCompressor("gzip"))
					cancel()
					switch st := status.Convert(err); {
					case err == nil:
						mu.Lock()
						accepted++
						mu.Unlock()
						return
					case st.Code() == codes.ResourceExhausted && len(st.Details()) > 0: // RetryInfo
						how = "grpc RESOURCE_EXHAUSTED"
					default:
						problem("valid gRPC request: %v, want OK or RESOURCE_EXHAUSTED with RetryInfo", err)
						return
					}
				}
				if first {
					mu.Lock()
					refused[how]++
					mu.Unlock()
				}
				time.Sleep(200 * time.Millisecond)
			}
			problem("valid request %d still refused after 45s", i)
		})
	}
	// Slow uploads declaring 12 MiB each (garbage, trickled at 2 MiB/s): the listener reserves
	// what they declare before reading them, so five of them at once hold nearly all the HTTP
	// budget for six seconds, and admission must refuse some of them or the bombs meanwhile.
	for range 5 {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", &trickle{left: 12 << 20})
			if err != nil {
				problem("slow upload: %v", err)
				return
			}
			req.ContentLength = 12 << 20
			req.Header.Set("Content-Type", "application/x-protobuf")
			resp, err := client.Do(req)
			if err != nil {
				problem("slow upload: %v", err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusBadRequest {
				problem("slow upload of garbage: %s, want 429 (no room) or 400 (read, malformed)", resp.Status)
			}
		})
	}
	close(start)
	wg.Wait()
	peak, nsamples := rss.stop()
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("baseline RSS %d MiB, peak %d MiB (%d samples), budgets 2 × %d MiB; valid requests accepted %d, first refused %v",
		baseline>>20, peak>>20, nsamples, admissionBudget>>20, accepted, refused)
	if accepted != 50 {
		t.Errorf("%d of 50 valid requests accepted", accepted)
	}
	// The budgets bound the bytes requests hold, the garbage they leave until a collection and
	// the Go runtime's cost on both (its share is kept out of what requests may hold).
	if limit := baseline + 2*admissionBudget; peak > limit {
		t.Errorf("peak RSS %d MiB is over the baseline %d MiB plus both budgets (%d MiB)", peak>>20, baseline>>20, limit>>20)
	}
	// Afterwards: a trickle of valid traffic, as an agent sees, and RSS back near the baseline.
	var last int64
	ok := within(60*time.Second, func() bool {
		_, _, _ = post(valid, "gzip")
		time.Sleep(100 * time.Millisecond)
		last, _ = vmRSS(v.cmd.Process.Pid)
		return last <= baseline+32<<20
	})
	if !ok {
		t.Errorf("RSS %d MiB a minute after the burst, baseline %d MiB: memory stays pinned", last>>20, baseline>>20)
	}
	items := waitItems(t, "traces", out, (20+50)*200)
	n := 0
	for _, it := range items {
		if it.run == id {
			n++
		}
	}
	if n < (20+50)*200 {
		t.Errorf("%d spans written, want at least %d (warm-up and the 50 valid requests)", n, (20+50)*200)
	}
	samples := scrape(t, v.telemetry)
	if n := sum(samples, "vigil_receiver_otlp_rejected_requests_total", map[string]string{"reason": "in_flight_limit"}); n == 0 {
		t.Errorf("no request was refused for the budget: the burst did not test admission")
	}
	if n := sum(samples, "vigil_receiver_in_flight_bytes", nil); n != 0 {
		t.Errorf("vigil_receiver_in_flight_bytes = %v with nothing in flight, want 0", n)
	}
	v.stopClean(t)
}
