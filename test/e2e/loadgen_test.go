//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The load generator's protocols: what it sends, and to which of vigil's receivers.
const (
	otlpGRPCTraces = "otlp-grpc"    // OTLP/gRPC traces (the default): the otlp receiver's gRPC endpoint
	otlpHTTPLogs   = "otlp-http"    // OTLP/HTTP protobuf logs, POST /v1/logs: the otlp receiver's HTTP endpoint
	remoteWrite    = "remote-write" // Prometheus remote write 1.0, POST /api/v1/write: the prometheusremotewrite receiver
)

// loadConfig shapes a load run: requests of perRequest items (spans, log records or samples),
// each item tagged with a seq that is unique across the run, paced at rate items per second by
// workers senders.
type loadConfig struct {
	addr       string        // vigil's endpoint for protocol (host:port)
	protocol   string        // otlpGRPCTraces ("" too), otlpHTTPLogs or remoteWrite
	perRequest int           // items per request (default 100)
	rate       int           // items per second (default 2000)
	workers    int           // requests in flight at most (default 4)
	duration   time.Duration // new requests start only during this time
	maxSpans   int           // and only while fewer than this many seqs were handed out (0: no cap)
	payload    int           // bytes of padding per span or log record (0: none; not for remote write)
	timeout    time.Duration // per attempt: the client's deadline (default 5s)
}

// loadGen sends sequence-numbered items and records exactly which were acknowledged. A request
// refused with a retryable code (RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, …) is sent
// again, unchanged, after the delay of the server's RetryInfo or a short backoff, until it is
// acknowledged or the run is cut; only an OK marks its seqs acknowledged. The HTTP protocols'
// answers are mapped onto the same codes (see post).
type loadGen struct {
	cfg  loadConfig
	conn *grpc.ClientConn // OTLP/gRPC only
	cli  ptraceotlp.GRPCClient
	http *http.Client // the HTTP protocols only

	next     atomic.Int64 // next request number
	inFlight atomic.Int64 // requests started and not yet acknowledged, rejected or abandoned
	stopNew  chan struct{}
	stopOnce sync.Once
	cut      context.CancelFunc // abandons in-flight retries
	ctx      context.Context
	wg       sync.WaitGroup
	started  time.Time

	mu        sync.Mutex
	acked     []bool // by seq
	ackCount  int
	attempts  int
	okReqs    int
	refusals  map[codes.Code]int // retryable refusals by code
	retryInfo int                // refusals carrying RetryInfo
	rejected  int                // requests refused for good (not retried)
	abandoned int                // requests given up when the run was cut
	firstErr  map[codes.Code]string
	maxWait   time.Duration // longest time one request took from first attempt to OK
	ackTimes  []time.Time   // when each OK arrived, for rate figures
}

func newLoadGen(t *testing.T, cfg loadConfig) *loadGen {
	t.Helper()
	if cfg.perRequest == 0 {
		cfg.perRequest = 100
	}
	if cfg.rate == 0 {
		cfg.rate = 2000
	}
	if cfg.workers == 0 {
		cfg.workers = 4
	}
	if cfg.timeout == 0 {
		cfg.timeout = 5 * time.Second
	}
	switch cfg.protocol {
	case "":
		cfg.protocol = otlpGRPCTraces
	case otlpGRPCTraces, otlpHTTPLogs, remoteWrite:
	default:
		t.Fatalf("loadgen: unknown protocol %q", cfg.protocol)
	}
	g := &loadGen{cfg: cfg, stopNew: make(chan struct{}), refusals: map[codes.Code]int{}, firstErr: map[codes.Code]string{}}
	if cfg.protocol == otlpGRPCTraces {
		conn, err := grpc.NewClient(cfg.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
		if err != nil {
			t.Fatal(err)
		}
		g.conn, g.cli = conn, ptraceotlp.NewGRPCClient(conn)
	} else {
		// Keep-alive connections, one per worker, as an SDK exporter or a remote-write shard does;
		// the per-attempt timeout is the request's context.
		g.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.workers, IdleConnTimeout: 30 * time.Second}}
	}
	g.ctx, g.cut = context.WithCancel(context.Background())
	t.Cleanup(func() {
		g.stop(0)
		if g.conn != nil {
			g.conn.Close()
		}
		if g.http != nil {
			g.http.CloseIdleConnections() // no transport goroutine may outlive the test (goleak)
		}
	})
	return g
}

// items is what the run's requests carry, for figures.
func (g *loadGen) items() string {
	switch g.cfg.protocol {
	case otlpHTTPLogs:
		return "log records"
	case remoteWrite:
		return "samples"
	}
	return "spans"
}

// start begins sending in the background.
func (g *loadGen) start() {
	g.started = time.Now()
	interval := time.Duration(float64(time.Second) * float64(g.cfg.perRequest) / float64(g.cfg.rate))
	ticker := time.NewTicker(interval)
	end := time.NewTimer(g.cfg.duration)
	g.wg.Go(func() {
		defer ticker.Stop()
		select {
		case <-end.C:
			g.stopOnce.Do(func() { close(g.stopNew) })
		case <-g.stopNew:
			end.Stop()
		}
	})
	for range g.cfg.workers {
		g.wg.Go(func() {
			for {
				// A ticker drops the ticks nobody took, so a worker that was held up by
				// backpressure does not burst to catch up: the offered rate never exceeds rate.
				select {
				case <-g.stopNew:
					return
				case <-ticker.C:
				}
				n := g.next.Add(1) - 1
				first := n * int64(g.cfg.perRequest)
				if g.cfg.maxSpans > 0 && first+int64(g.cfg.perRequest) > int64(g.cfg.maxSpans) {
					g.stopOnce.Do(func() { close(g.stopNew) })
					return
				}
				g.send(first)
			}
		})
	}
}

// stop ends the run: no new requests; in-flight ones keep retrying for up to grace, then are
// abandoned (not acknowledged). It returns once every worker is done.
func (g *loadGen) stop(grace time.Duration) {
	g.stopOnce.Do(func() { close(g.stopNew) })
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		g.cut()
		<-done
	}
	g.cut()
}

// running reports whether new requests are still being started.
func (g *loadGen) running() bool {
	select {
	case <-g.stopNew:
		return false
	default:
		return true
	}
}

// wait lets the run end on its own (duration or maxSpans), then stops it as stop does.
func (g *loadGen) wait(grace time.Duration) {
	<-g.stopNew
	g.stop(grace)
}

func (g *loadGen) request(first int64) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "e2e-reliability")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("loadgen")
	pad := strings.Repeat("x", g.cfg.payload)
	now := time.Now()
	for i := range int64(g.cfg.perRequest) {
		seq := first + i
		sp := ss.Spans().AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		for b := range 8 {
			tid[8+b] = byte(seq >> (8 * (7 - b)))
			sid[b] = byte((seq + 1) >> (8 * (7 - b)))
		}
		tid[0] = 0xe2
		sp.SetTraceID(pcommon.TraceID(tid))
		sp.SetSpanID(pcommon.SpanID(sid))
		sp.SetName("reliability")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutInt("seq", seq)
		if pad != "" {
			sp.Attributes().PutStr("pad", pad)
		}
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// send delivers one request, retrying retryable refusals, until OK, a permanent refusal, or
// the run is cut.
func (g *loadGen) send(first int64) {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	export := g.exporter(first)
	start := time.Now()
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.timeout)
		err := export(ctx)
		cancel()
		g.mu.Lock()
		g.attempts++
		g.mu.Unlock()
		if err == nil {
			g.ack(first, time.Since(start))
			return
		}
		if g.ctx.Err() != nil {
			g.count(func() { g.abandoned++ })
			return
		}
		st := status.Convert(err)
		var delay time.Duration
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				delay = ri.GetRetryDelay().AsDuration()
			}
		}
		g.count(func() {
			if _, seen := g.firstErr[st.Code()]; !seen {
				g.firstErr[st.Code()] = st.Message()
			}
		})
		switch st.Code() {
		case codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		default:
			g.count(func() { g.rejected++ })
			return
		}
		g.count(func() {
			g.refusals[st.Code()]++
			if delay > 0 {
				g.retryInfo++
			}
		})
		if delay <= 0 {
			delay = backoff
			backoff = min(2*backoff, time.Second)
		}
		select {
		case <-time.After(delay):
		case <-g.ctx.Done():
			g.count(func() { g.abandoned++ })
			return
		}
	}
}

func (g *loadGen) count(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
}

func (g *loadGen) ack(first int64, took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	end := int(first) + g.cfg.perRequest
	if end > len(g.acked) {
		g.acked = append(g.acked, make([]bool, end-len(g.acked))...)
	}
	for i := int(first); i < end; i++ {
		if !g.acked[i] {
			g.acked[i] = true
			g.ackCount++
		}
	}
	g.okReqs++
	g.maxWait = max(g.maxWait, took)
	g.ackTimes = append(g.ackTimes, time.Now())
}

// loadResult is a snapshot of a run.
type loadResult struct {
	items      string // what the requests carry: spans, log records, samples
	acked      []bool
	ackedSpans int // items acknowledged (whatever the protocol)
	offered    int // items in requests started
	inFlight   int // requests started and not yet finished (acknowledged, rejected or abandoned)
	attempts   int
	okRequests int
	refusals   map[codes.Code]int
	retryInfo  int
	rejected   int
	abandoned  int
	firstErr   map[codes.Code]string
	maxWait    time.Duration
	elapsed    time.Duration
}

func (g *loadGen) result() loadResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := loadResult{
		items: g.items(), acked: append([]bool(nil), g.acked...), ackedSpans: g.ackCount,
		offered: int(g.next.Load()) * g.cfg.perRequest, inFlight: int(g.inFlight.Load()),
		attempts: g.attempts, okRequests: g.okReqs, retryInfo: g.retryInfo,
		rejected: g.rejected, abandoned: g.abandoned, maxWait: g.maxWait,
		refusals: map[codes.Code]int{}, firstErr: map[codes.Code]string{},
		elapsed: time.Since(g.started),
	}
	if g.cfg.maxSpans > 0 {
		r.offered = min(r.offered, g.cfg.maxSpans)
	}
	for k, v := range g.refusals {
		r.refusals[k] = v
	}
	for k, v := range g.firstErr {
		r.firstErr[k] = v
	}
	return r
}

// lastAck is when the latest OK arrived (zero before the first).
func (g *loadGen) lastAck() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ackTimes) == 0 {
		return time.Time{}
	}
	return g.ackTimes[len(g.ackTimes)-1]
}

// acksSince counts the requests acknowledged after t.
func (g *loadGen) acksSince(t time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, at := range g.ackTimes {
		if at.After(t) {
			n++
		}
	}
	return n
}

func (r loadResult) backpressure() int {
	return r.refusals[codes.ResourceExhausted] + r.refusals[codes.Unavailable]
}

func (r loadResult) String() string {
	var refusals []string
	for _, c := range []codes.Code{codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled} {
		if n := r.refusals[c]; n > 0 {
			refusals = append(refusals, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(refusals) == 0 {
		refusals = []string{"none"}
	}
	items := r.items
	if items == "" {
		items = "spans"
	}
	return fmt.Sprintf("offered %d %s in %s (%.0f/s), acknowledged %d in %d requests (%d attempts); retryable refusals: %s (%d with RetryInfo); rejected %d, abandoned %d requests; slowest ack %s",
		r.offered, items, r.elapsed.Round(100*time.Millisecond), float64(r.offered)/r.elapsed.Seconds(), r.ackedSpans, r.okRequests, r.attempts,
		strings.Join(refusals, ", "), r.retryInfo, r.rejected, r.abandoned, r.maxWait.Round(time.Millisecond))
}

// errorSummary describes the first error seen per code, for failure messages.
func (r loadResult) errorSummary() string {
	var b strings.Builder
	for c, m := range r.firstErr {
		fmt.Fprintf(&b, "\n  %s: %s", c, m)
	}
	return b.String()
}

// exporter builds the request of the seqs from first on in the run's protocol and returns one
// attempt to send it; the same bytes are sent on every attempt. Its error is a gRPC status.
func (g *loadGen) exporter(first int64) func(ctx context.Context) error {
	switch g.cfg.protocol {
	case otlpHTTPLogs:
		body, err := g.logsRequest(first).MarshalProto()
		if err != nil {
			panic(err)
		}
		return func(ctx context.Context) error {
			return g.post(ctx, "/v1/logs", body, map[string]string{"Content-Type": "application/x-protobuf"})
		}
	case remoteWrite:
		body := g.remoteWriteRequest(first)
		return func(ctx context.Context) error {
			return g.post(ctx, "/api/v1/write", body, map[string]string{
				"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
				"X-Prometheus-Remote-Write-Version": "0.1.0",
			})
		}
	}
	req := g.request(first)
	return func(ctx context.Context) error {
		_, err := g.cli.Export(ctx, req)
		return err
	}
}

// post makes one HTTP attempt and maps its answer onto the gRPC code that means the same to a
// client: 2xx is OK (200 for OTLP/HTTP, 204 for remote write); 429 is RESOURCE_EXHAUSTED and
// 5xx UNAVAILABLE, both with RetryInfo from Retry-After when there is one (retried); the
// client's deadline is DEADLINE_EXCEEDED and a connection error UNAVAILABLE (retried); any
// other status is INVALID_ARGUMENT (400 and the rest of 4xx: refused for good, not retried).
func (g *loadGen) post(ctx context.Context, path string, body []byte, header map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.cfg.addr+path, bytes.NewReader(body))
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
		return status.Error(codes.Unavailable, err.Error())
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is reused
	resp.Body.Close()
	code := resp.StatusCode
	var c codes.Code
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests:
		c = codes.ResourceExhausted
	case code >= 500:
		c = codes.Unavailable
	default:
		return status.Error(codes.InvalidArgument, fmt.Sprintf("HTTP %d: %s", code, bytes.TrimSpace(msg)))
	}
	st := status.New(c, fmt.Sprintf("HTTP %d: %s", code, bytes.TrimSpace(msg)))
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// logsRequest is request's counterpart for logs: perRequest records with seq attributes.
func (g *loadGen) logsRequest(first int64) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "e2e-reliability")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("loadgen")
	pad := strings.Repeat("x", g.cfg.payload)
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := range int64(g.cfg.perRequest) {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(now)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr("reliability " + pad)
		lr.Attributes().PutInt("seq", first+i)
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

// remoteWriteRequest is a snappy-compressed remote-write 1.0 body: one series per seq,
// {__name__="e2e_seq", job="e2e", seq="N"} (label names sorted, as the protocol requires), with
// one sample at the current time.
func (g *loadGen) remoteWriteRequest(first int64) []byte {
	var req prompb.WriteRequest
	ts := time.Now().UnixMilli()
	for i := range int64(g.cfg.perRequest) {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "e2e_seq"},
				{Name: "job", Value: "e2e"},
				{Name: "seq", Value: strconv.FormatInt(first+i, 10)},
			},
			Samples: []prompb.Sample{{Value: float64(first + i), Timestamp: ts}},
		})
	}
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return snappy.Encode(nil, b)
}
