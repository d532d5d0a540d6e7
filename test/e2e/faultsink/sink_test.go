package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// request builds traces whose spans carry the given seqs.
func request(seqs ...int64) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, q := range seqs {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.Attributes().PutInt(seqKey, q)
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

type harness struct {
	t        *testing.T
	s        *Sink
	httpAddr string
	grpc     ptraceotlp.GRPCClient
	control  *httptest.Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, httpAddr: freeAddr(t)}
	h.s = NewSink(freeAddr(t), h.httpAddr, slog.New(slog.NewTextHandler(io.Discard, nil)), 1)
	if err := h.s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.s.Close)
	conn, err := grpc.NewClient(h.s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.grpc = ptraceotlp.NewGRPCClient(conn)
	h.control = httptest.NewServer(newControlServer(h.s).Handler)
	t.Cleanup(h.control.Close)
	return h
}

func (h *harness) mode(js string) {
	h.t.Helper()
	resp, err := http.Post(h.control.URL+"/mode", "application/json", strings.NewReader(js))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("POST /mode %s: %s %s", js, resp.Status, b)
	}
}

func (h *harness) stats() Stats {
	h.t.Helper()
	resp, err := http.Get(h.control.URL + "/stats?seqs=1")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) export(timeout time.Duration, seqs ...int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := h.grpc.Export(ctx, request(seqs...))
	return err
}

func (h *harness) post(body []byte, header map[string]string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+h.httpAddr+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRecordsSeqsAndDuplicates(t *testing.T) {
	h := newHarness(t)
	for _, seqs := range [][]int64{{0, 1, 2}, {5, 6}, {2, 3}} {
		if err := h.export(time.Second, seqs...); err != nil {
			t.Fatal(err)
		}
	}
	// OTLP/HTTP, gzip-compressed protobuf and JSON.
	pb, _ := request(7, 8).MarshalProto()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pb)
	zw.Close()
	if resp := h.post(gz.Bytes(), map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP gzip proto: %s", resp.Status)
	}
	js, _ := request(8, 9).MarshalJSON()
	if resp := h.post(js, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP JSON: %s", resp.Status)
	}
	if resp := h.post([]byte("garbage"), map[string]string{"Content-Type": "application/x-protobuf"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage: %s, want 400", resp.Status)
	}
	st := h.stats()
	want := [][2]int64{{0, 3}, {5, 9}}
	if st.Unique != 9 || st.Duplicates != 2 || st.Requests != 5 || st.Accepted != 5 || st.DecodeErrors != 1 || st.Spans != 11 {
		t.Errorf("stats %+v: want unique 9, duplicates 2, requests 5, accepted 5, decode errors 1, spans 11", st)
	}
	if len(st.Seqs) != len(want) || st.Seqs[0] != want[0] || st.Seqs[1] != want[1] {
		t.Errorf("seqs %v, want %v", st.Seqs, want)
	}
}

func TestFaults(t *testing.T) {
	h := newHarness(t)
	f := func(mode string, wantCode codes.Code, wantHTTP int, wantRetryAfter time.Duration) {
		t.Helper()
		h.mode(mode)
		err := h.export(time.Second, 1)
		st := status.Convert(err)
		if st.Code() != wantCode {
			t.Errorf("mode %s: gRPC %v, want %v", mode, st.Code(), wantCode)
		}
		var got time.Duration
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				got = ri.RetryDelay.AsDuration()
			}
		}
		if got != wantRetryAfter {
			t.Errorf("mode %s: RetryInfo %s, want %s", mode, got, wantRetryAfter)
		}
		pb, _ := request(2).MarshalProto()
		resp := h.post(pb, map[string]string{"Content-Type": "application/x-protobuf"})
		if resp.StatusCode != wantHTTP {
			t.Errorf("mode %s: HTTP %d, want %d", mode, resp.StatusCode, wantHTTP)
		}
		if wantRetryAfter > 0 && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("mode %s: Retry-After %q, want 2", mode, resp.Header.Get("Retry-After"))
		}
	}
	f(`{"fail_percent": 100}`, codes.Unavailable, 503, 0)
	f(`{"throttle_percent": 100, "retry_after": "1500ms"}`, codes.ResourceExhausted, 429, 1500*time.Millisecond)
	f(`{"reject_percent": 100}`, codes.InvalidArgument, 400, 0)
	f(`{"hang_percent": 100, "hang": "50ms"}`, codes.Unavailable, 503, 0)
	f(`{}`, codes.OK, 200, 0)
	st := h.stats()
	if st.Unique != 2 || st.FailuresInjected != 8 {
		t.Errorf("stats %+v: want 2 seqs recorded (the last mode only) and 8 failures injected", st)
	}
	for _, k := range []string{"unavailable", "throttled", "rejected", "hung"} {
		if st.Injected[k] != 2 {
			t.Errorf("injected[%s] = %d, want 2", k, st.Injected[k])
		}
	}

	// A hang past the client's deadline: the client times out and nothing is recorded, unless
	// hang_accept, which records it anyway (the duplicate a retry would make).
	h.mode(`{"hang_percent": 100, "hang": "300ms"}`)
	if err := h.export(50*time.Millisecond, 10); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("hang: %v, want DeadlineExceeded", err)
	}
	h.mode(`{"hang_percent": 100, "hang": "100ms", "hang_accept": true}`)
	if err := h.export(20*time.Millisecond, 11); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("hang_accept: %v, want DeadlineExceeded", err)
	}
	h.mode(`{"delay": "100ms"}`)
	start := time.Now()
	if err := h.export(time.Second, 12); err != nil || time.Since(start) < 100*time.Millisecond {
		t.Errorf("delay: %v after %s, want OK after 100ms", err, time.Since(start))
	}
	time.Sleep(150 * time.Millisecond) // the hang_accept request records late
	st = h.stats()
	if want := [][2]int64{{1, 2}, {11, 12}}; len(st.Seqs) != 2 || st.Seqs[0] != want[0] || st.Seqs[1] != want[1] {
		t.Errorf("seqs %v, want %v", st.Seqs, want)
	}
}

func TestRefuse(t *testing.T) {
	h := newHarness(t)
	h.mode(`{"refuse": true}`)
	if err := h.export(200*time.Millisecond, 1); status.Code(err) == codes.OK {
		t.Fatal("export succeeded while refusing")
	}
	if c, err := net.DialTimeout("tcp", h.httpAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP listener still accepts while refusing")
	}
	if st := h.stats(); !st.Refusing || st.Refusals != 1 {
		t.Errorf("stats %+v: want refusing, 1 refusal", st)
	}
	h.mode(`{}`)
	// The client backs off after refused dials, so its first attempts may still fail fast.
	deadline := time.Now().Add(5 * time.Second)
	for err := h.export(time.Second, 2); err != nil; err = h.export(time.Second, 2) {
		if time.Now().After(deadline) {
			t.Fatalf("after reopening: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mode(`{"refuse_for": "300ms"}`)
	if c, err := net.DialTimeout("tcp", h.httpAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP listener still accepts during refuse_for")
	}
	time.Sleep(400 * time.Millisecond)
	pb, _ := request(3).MarshalProto()
	if resp := h.post(pb, map[string]string{"Content-Type": "application/x-protobuf"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("after refuse_for: %s", resp.Status)
	}
	if st := h.stats(); st.Refusing || st.Unique != 2 || st.Refusals != 2 {
		t.Errorf("stats %+v: want listening, 2 seqs, 2 refusals", st)
	}
}

func TestBadMode(t *testing.T) {
	h := newHarness(t)
	for _, js := range []string{`{"fail_percent": 101}`, `{"fail_percent": 60, "reject_percent": 50}`, `{"hang_percent": 5}`, `{"delay": 5}`, `{"nope": 1}`, `{"refuse": true, "refuse_for": "1s"}`} {
		resp, err := http.Post(h.control.URL+"/mode", "application/json", strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /mode %s: %s, want 400", js, resp.Status)
		}
	}
}
