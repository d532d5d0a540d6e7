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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
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
	return h.postTo("/v1/traces", body, header)
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

// postTo posts body to path on the sink's HTTP listener and returns the status.
func (h *harness) postTo(path string, body []byte, header map[string]string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+h.httpAddr+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A connection of its own per request: a mode that closes the listeners also closes idle
	// keep-alive connections, and a reused one would fail with EOF instead of being answered.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func logsRequest(seqs ...int64) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, q := range seqs {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr("line")
		lr.Attributes().PutInt(seqKey, q)
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

func rwBody(t *testing.T, seqs ...int64) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for _, q := range seqs {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_seq"}, {Name: "seq", Value: strconv.FormatInt(q, 10)}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1700000000000}},
		})
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// TestLogsAndRemoteWrite: log records over gRPC and HTTP and remote-write samples record their
// seqs in the same set as spans; duplicates count across protocols; malformed bodies are
// decode errors.
func TestLogsAndRemoteWrite(t *testing.T) {
	h := newHarness(t)
	conn, err := grpc.NewClient(h.s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := plogotlp.NewGRPCClient(conn).Export(context.Background(), logsRequest(0, 1)); err != nil {
		t.Fatal(err)
	}
	pb, _ := logsRequest(2, 3).MarshalProto()
	if resp := h.postTo("/v1/logs", pb, map[string]string{"Content-Type": "application/x-protobuf"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logs over HTTP: %s", resp.Status)
	}
	rw := map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
	if resp := h.postTo("/api/v1/write", rwBody(t, 3, 4, 5), rw); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote write: %s, want 204", resp.Status)
	}
	if resp := h.postTo("/api/v1/write", []byte("not snappy"), rw); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad snappy: %s, want 400", resp.Status)
	}
	if resp := h.postTo("/api/v1/write", snappy.Encode(nil, []byte{0xff, 0xff}), rw); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad protobuf: %s, want 400", resp.Status)
	}
	// Logs as OTLP/JSON, and as zstd- and gzip-compressed protobuf; a malformed logs body.
	js, _ := logsRequest(6, 7).MarshalJSON()
	if resp := h.postTo("/v1/logs", js, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logs as JSON: %s", resp.Status)
	}
	pb, _ = logsRequest(8).MarshalProto()
	zw, _ := zstd.NewWriter(nil)
	zpb := zw.EncodeAll(pb, nil)
	zw.Close()
	if resp := h.postTo("/v1/logs", zpb, map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "zstd"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logs zstd: %s", resp.Status)
	}
	pb, _ = logsRequest(8, 10).MarshalProto() // 8 again: a duplicate
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(pb)
	gw.Close()
	if resp := h.postTo("/v1/logs", gz.Bytes(), map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logs gzip: %s", resp.Status)
	}
	if resp := h.postTo("/v1/logs", []byte("garbage"), map[string]string{"Content-Type": "application/x-protobuf"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed logs: %s, want 400", resp.Status)
	}
	// A series without a seq label is counted, not recorded.
	noSeq, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_other"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1700000000000}},
	}}}).Marshal()
	if resp := h.postTo("/api/v1/write", snappy.Encode(nil, noSeq), rw); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote write without seq: %s, want 204", resp.Status)
	}
	st := h.stats()
	// seqs 0-8 and 10; 3 and 8 twice; 3 decode errors; 13 items (12 with a seq, 1 without).
	if st.Unique != 10 || st.Duplicates != 2 || st.DecodeErrors != 3 || st.Spans != 13 || st.NoSeq != 1 || st.Accepted != 7 {
		t.Errorf("stats %+v: want unique 10, duplicates 2 (seqs 3 and 8), decode errors 3, items 13, no_seq 1, accepted 7", st)
	}
	if want := [][2]int64{{0, 8}, {10, 10}}; len(st.Seqs) != 2 || st.Seqs[0] != want[0] || st.Seqs[1] != want[1] {
		t.Errorf("seqs %v, want %v", st.Seqs, want)
	}
}

// TestRemoteWriteFaults: the fault plan answers remote write as a remote-write receiver would
// (503, 429 with Retry-After, 400, a hang, a delay, refused connections), and only accepted
// samples are recorded.
func TestRemoteWriteFaults(t *testing.T) {
	h := newHarness(t)
	rw := map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
	for _, tc := range []struct {
		mode       string
		want       int
		retryAfter string
	}{
		{`{"fail_percent": 100}`, http.StatusServiceUnavailable, ""},
		{`{"throttle_percent": 100, "retry_after": "1500ms"}`, http.StatusTooManyRequests, "2"},
		{`{"reject_percent": 100}`, http.StatusBadRequest, ""},
		{`{"hang_percent": 100, "hang": "50ms"}`, http.StatusServiceUnavailable, ""},
		{`{"delay": "50ms"}`, http.StatusNoContent, ""},
		{`{}`, http.StatusNoContent, ""},
	} {
		h.mode(tc.mode)
		start := time.Now()
		resp := h.postTo("/api/v1/write", rwBody(t, 1), rw)
		if resp.StatusCode != tc.want || resp.Header.Get("Retry-After") != tc.retryAfter {
			t.Errorf("mode %s: %s Retry-After %q, want %d %q", tc.mode, resp.Status, resp.Header.Get("Retry-After"), tc.want, tc.retryAfter)
		}
		if strings.Contains(tc.mode, "50ms") && time.Since(start) < 50*time.Millisecond {
			t.Errorf("mode %s: answered after %s, want at least 50ms", tc.mode, time.Since(start))
		}
	}
	h.mode(`{"refuse": true}`)
	if c, err := net.DialTimeout("tcp", h.httpAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("remote write still accepts connections while refusing")
	}
	h.mode(`{}`)
	if resp := h.postTo("/api/v1/write", rwBody(t, 2), rw); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after refusing: %s", resp.Status)
	}
	st := h.stats()
	if st.Unique != 2 || st.Duplicates != 1 || st.FailuresInjected != 4 || st.Accepted != 3 {
		t.Errorf("stats %+v: want seqs 1 (twice: delay and healthy) and 2, 4 failures injected, 3 accepted", st)
	}
	for _, k := range []string{"unavailable", "throttled", "rejected", "hung"} {
		if st.Injected[k] != 1 {
			t.Errorf("injected[%s] = %d, want 1", k, st.Injected[k])
		}
	}
}
