package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
)

// seqKey is the attribute (of spans and log records) or label (of remote-write series) the sink
// records.
const seqKey = "seq"

// Sink is the sink: listeners for OTLP/gRPC and OTLP/HTTP (traces and logs) and Prometheus
// remote write (on the HTTP listener) that can be closed and reopened, a fault plan, and the
// record of what was accepted.
type Sink struct {
	grpcAddr, httpAddr string // "" = that protocol is off
	log                *slog.Logger
	done               chan struct{} // closed by Close: ends hangs and reopen attempts

	mu        sync.Mutex
	mode      Mode
	rng       *rand.Rand
	refusing  bool
	reopen    *time.Timer // pending end of a refuse_for
	grpcSrv   *grpc.Server
	httpSrv   *http.Server
	serving   sync.WaitGroup
	closed    bool
	listenErr string

	seqs                                                   seqSet
	requests, accepted, spans, noSeq, badSeq, decodeErrors atomic.Int64
	injected                                               [len(faultNames)]atomic.Int64
	refusals                                               atomic.Int64
}

// NewSink returns a sink that is not listening yet; call Open.
func NewSink(grpcAddr, httpAddr string, log *slog.Logger, seed uint64) *Sink {
	return &Sink{
		grpcAddr: grpcAddr, httpAddr: httpAddr, log: log, done: make(chan struct{}),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Open starts the OTLP listeners. Binding is retried for a few seconds: the port was just
// released by the previous listener (SO_REUSEADDR makes TIME_WAIT harmless, but a test may
// race the kernel).
func (s *Sink) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openLocked()
}

func (s *Sink) openLocked() error {
	if s.closed || s.grpcSrv != nil || s.httpSrv != nil {
		return nil
	}
	var gl, hl net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		gl, hl, err = s.listen()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.listenErr = err.Error()
			return err
		}
		select {
		case <-s.done:
			return errors.New("sink closed")
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.listenErr = ""
	if gl != nil {
		s.grpcSrv = newGRPCServer(s)
		srv := s.grpcSrv
		s.serving.Go(func() { _ = srv.Serve(gl) })
	}
	if hl != nil {
		s.httpSrv = newHTTPServer(s)
		srv := s.httpSrv
		s.serving.Go(func() { _ = srv.Serve(hl) })
	}
	s.refusing = false
	return nil
}

func (s *Sink) listen() (gl, hl net.Listener, err error) {
	if s.grpcAddr != "" {
		if gl, err = net.Listen("tcp", s.grpcAddr); err != nil {
			return nil, nil, err
		}
	}
	if s.httpAddr != "" {
		if hl, err = net.Listen("tcp", s.httpAddr); err != nil {
			if gl != nil {
				gl.Close()
			}
			return nil, nil, err
		}
	}
	return gl, hl, nil
}

// closeListenersLocked stops both servers: listeners and every open connection close at once,
// so clients see refused connections, and in-flight requests fail, as when a backend dies.
func (s *Sink) closeListenersLocked() {
	if s.grpcSrv != nil {
		s.grpcSrv.Stop()
		s.grpcSrv = nil
	}
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
		s.httpSrv = nil
	}
	s.serving.Wait()
}

// SetMode replaces the fault plan, closing or reopening the listeners as it says.
func (s *Sink) SetMode(m Mode) error {
	if err := m.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("sink closed")
	}
	s.mode = m
	if s.reopen != nil {
		s.reopen.Stop()
		s.reopen = nil
	}
	switch {
	case m.Refuse || m.RefuseFor > 0:
		if !s.refusing {
			s.closeListenersLocked()
			s.refusing = true
			s.refusals.Add(1)
		}
		if m.RefuseFor > 0 {
			var t *time.Timer
			t = time.AfterFunc(time.Duration(m.RefuseFor), func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.reopen != t {
					return // a later mode took over
				}
				s.reopen = nil
				if err := s.openLocked(); err != nil {
					s.log.Error("reopen after refuse_for", "err", err)
					return
				}
				s.log.Info("listeners reopened", "after", time.Duration(m.RefuseFor).String())
			})
			s.reopen = t
		}
		s.log.Info("listeners closed", "refuse_for", time.Duration(m.RefuseFor).String())
	case s.refusing:
		if err := s.openLocked(); err != nil {
			return fmt.Errorf("reopen listeners: %w", err)
		}
		s.log.Info("listeners reopened")
	}
	return nil
}

// Close stops everything; Close is idempotent.
func (s *Sink) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	if s.reopen != nil {
		s.reopen.Stop()
		s.reopen = nil
	}
	s.closeListenersLocked()
}

// draw returns the current mode and a uniform draw in [0, 100) for this request.
func (s *Sink) draw() (Mode, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode, s.rng.Float64() * 100
}

// outcome is what a protocol handler answers.
type outcome struct {
	fault      fault
	retryAfter time.Duration // throttle only
}

// payload is what one decoded request carries: the seq of every item that has one.
type payload struct {
	seqs  []int64
	items int // spans, log records or samples
	noSeq int // items without a seq
}

func tracesPayload(td ptrace.Traces) payload {
	var p payload
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				p.add(sp.Attributes())
			}
		}
	}
	return p
}

func logsPayload(ld plog.Logs) payload {
	var p payload
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				p.add(lr.Attributes())
			}
		}
	}
	return p
}

func (p *payload) add(attrs pcommon.Map) {
	p.items++
	v, ok := attrs.Get(seqKey)
	if !ok || v.Type() != pcommon.ValueTypeInt {
		p.noSeq++
		return
	}
	p.seqs = append(p.seqs, v.Int())
}

// handle applies the fault plan to one decoded request and records its items if it is
// accepted. Items are recorded before the answer is written, so an accepted request whose
// answer is lost (the connection closes) shows up as a duplicate once the client retries,
// never as a loss.
func (s *Sink) handle(ctx context.Context, td payload) outcome {
	s.requests.Add(1)
	m, r := s.draw()
	if m.Delay > 0 && !s.sleep(ctx, time.Duration(m.Delay)) {
		// The client gave up (or the sink stopped) while the request waited: not recorded.
		s.injected[fail].Add(1)
		return outcome{fault: fail}
	}
	f := m.pick(r)
	switch f {
	case accept:
		s.record(td)
	case hang:
		if m.HangAccept {
			s.sleep(context.Background(), time.Duration(m.Hang))
			s.injected[hang].Add(1)
			s.record(td)
			return outcome{fault: accept}
		}
		// Hold the full time even if the client gave up: a hung backend does not answer at
		// all, so the client must see its own deadline, not an early error from here.
		s.sleep(context.Background(), time.Duration(m.Hang))
	}
	if f != accept {
		s.injected[f].Add(1)
	}
	return outcome{fault: f, retryAfter: m.retryAfter()}
}

// sleep waits d; false if ctx ended or the sink closed first.
func (s *Sink) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Sink) record(p payload) {
	s.accepted.Add(1)
	s.spans.Add(int64(p.items))
	s.noSeq.Add(int64(p.noSeq))
	if err := s.seqs.add(p.seqs); err != nil {
		s.badSeq.Add(1)
	}
}

// Stats is GET /stats.
type Stats struct {
	Unique           int64            `json:"unique"`     // distinct seqs accepted
	Duplicates       int64            `json:"duplicates"` // seqs accepted again
	Requests         int64            `json:"requests"`   // requests decoded (OTLP and remote write)
	Accepted         int64            `json:"accepted"`   // requests recorded and answered OK
	Spans            int64            `json:"spans"`      // items (spans, log records, samples) in accepted requests
	NoSeq            int64            `json:"no_seq"`     // items without a seq
	BadSeq           int64            `json:"bad_seq"`    // requests with a seq out of range
	DecodeErrors     int64            `json:"decode_errors"`
	FailuresInjected int64            `json:"failures_injected"`
	Injected         map[string]int64 `json:"injected"`
	Refusing         bool             `json:"refusing"`
	Refusals         int64            `json:"refusals"` // times the listeners were closed
	ListenError      string           `json:"listen_error,omitempty"`
	Mode             Mode             `json:"mode"`
	// Seqs are the accepted seqs as sorted inclusive [lo, hi] runs (GET /stats?seqs=1).
	Seqs [][2]int64 `json:"seqs,omitempty"`
}

func (s *Sink) Stats(withSeqs bool) Stats {
	st := Stats{
		Requests: s.requests.Load(), Accepted: s.accepted.Load(), Spans: s.spans.Load(),
		NoSeq: s.noSeq.Load(), BadSeq: s.badSeq.Load(), DecodeErrors: s.decodeErrors.Load(),
		Refusals: s.refusals.Load(), Injected: map[string]int64{},
	}
	st.Unique, st.Duplicates = s.seqs.totals()
	for f := reject; f <= hang; f++ {
		n := s.injected[f].Load()
		st.Injected[f.String()] = n
		st.FailuresInjected += n
	}
	s.mu.Lock()
	st.Refusing, st.Mode, st.ListenError = s.refusing, s.mode, s.listenErr
	s.mu.Unlock()
	if withSeqs {
		st.Seqs = s.seqs.ranges()
	}
	return st
}

// Reset forgets every record and counter (not the mode).
func (s *Sink) Reset() {
	s.seqs.reset()
	for _, c := range []*atomic.Int64{&s.requests, &s.accepted, &s.spans, &s.noSeq, &s.badSeq, &s.decodeErrors, &s.refusals} {
		c.Store(0)
	}
	for i := range s.injected {
		s.injected[i].Store(0)
	}
}
