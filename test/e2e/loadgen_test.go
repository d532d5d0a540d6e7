//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// loadConfig shapes a load run: requests of perRequest spans, each span tagged with a seq that
// is unique across the run, paced at rate spans per second by workers senders.
type loadConfig struct {
	addr       string        // vigil's OTLP/gRPC endpoint
	perRequest int           // spans per request (default 100)
	rate       int           // spans per second (default 2000)
	workers    int           // requests in flight at most (default 4)
	duration   time.Duration // new requests start only during this time
	maxSpans   int           // and only while fewer than this many seqs were handed out (0: no cap)
	payload    int           // bytes of a padding attribute per span (0: none)
	timeout    time.Duration // per attempt (default 5s)
}

// loadGen sends sequence-numbered spans and records exactly which were acknowledged. A request
// refused with a retryable code (RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, …) is sent
// again, unchanged, after the delay of the server's RetryInfo or a short backoff, until it is
// acknowledged or the run is cut; only an OK marks its seqs acknowledged.
type loadGen struct {
	cfg  loadConfig
	conn *grpc.ClientConn
	cli  ptraceotlp.GRPCClient

	next     atomic.Int64 // next request number
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
	conn, err := grpc.NewClient(cfg.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	g := &loadGen{cfg: cfg, conn: conn, cli: ptraceotlp.NewGRPCClient(conn), stopNew: make(chan struct{}),
		refusals: map[codes.Code]int{}, firstErr: map[codes.Code]string{}}
	g.ctx, g.cut = context.WithCancel(context.Background())
	t.Cleanup(func() {
		g.stop(0)
		conn.Close()
	})
	return g
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
	req := g.request(first)
	start := time.Now()
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.timeout)
		_, err := g.cli.Export(ctx, req)
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
	acked      []bool
	ackedSpans int
	offered    int // spans in requests started
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
		acked: append([]bool(nil), g.acked...), ackedSpans: g.ackCount,
		offered:  int(g.next.Load()) * g.cfg.perRequest,
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
	return fmt.Sprintf("offered %d spans in %s (%.0f spans/s), acknowledged %d in %d requests (%d attempts); retryable refusals: %s (%d with RetryInfo); rejected %d, abandoned %d requests; slowest ack %s",
		r.offered, r.elapsed.Round(100*time.Millisecond), float64(r.offered)/r.elapsed.Seconds(), r.ackedSpans, r.okRequests, r.attempts,
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
