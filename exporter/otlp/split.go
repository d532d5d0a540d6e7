package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/ratelog"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// DefaultMaxRequestBytes is the gRPC exporter's default max_request_bytes: below gRPC's default
// receive limit of 4 MiB (4 194 304 bytes), which most OTLP/gRPC backends keep, with about
// 190 KB to spare for servers and proxies that count more than the message into their limit.
const DefaultMaxRequestBytes = 4_000_000

// ErrTooLarge is wrapped, beside the backend's own error, by the permanent error of a request
// the backend refused for its size: gRPC RESOURCE_EXHAUSTED without RetryInfo (with RetryInfo
// it is throttling, and retried), HTTP 413. A Splitter sends such a request again in parts.
var ErrTooLarge = errors.New("request refused as too large")

// ExportFunc sends one request and classifies the answer as a sender.SendFunc does, wrapping
// ErrTooLarge when the backend refused the request for its size.
type ExportFunc func(ctx context.Context, b *batch.Batch) error

// Reasons for a split, the reason label of vigil_exporter_<type>_split_requests_total.
const (
	splitCap      = "max_request_bytes" // over the cap: cut before sending
	splitTooLarge = "too_large"         // refused as too large: halved and sent again
)

// Splitter sends a batch as requests the backend takes. A batch over the cap (max_request_bytes)
// is cut before it is sent (batch.SplitBytes: encoded data at resource boundaries, without
// decoding). A request the backend refuses as too large is cut in halves, at resource
// boundaries, then at scope and item boundaries within a resource, and the halves are sent,
// recursively, down to single items. What the backend refuses even alone is dropped and the
// rest delivered: a partial success, whose rejected items the sender counts as dropped.
//
// Each request gets the exporter's timeout of its own, so parts sent one after the other do not
// share one request's time. All of it happens within one send attempt, so the batch's
// acknowledgements are untouched:
// the sender holds them for the batch as a whole. The parts are sent one after the other, in
// order. When one fails in a way worth retrying (the backend went away, the attempt timed out),
// the Splitter remembers which parts the backend took, and the sender's next attempt at the same
// batch sends only the others. It remembers for as long as the batch lives (it keeps no strong
// reference to it) and for at most maxRetrying batches; a batch it forgot, or one read back from
// a persistent queue after a restart, is sent whole again: duplicates, never loss.
type Splitter struct {
	maxBytes int           // 0: no cap
	timeout  time.Duration // bound on each request; 0: none
	export   ExportFunc
	log      *slog.Logger
	warn     ratelog.Limiter
	splits   *prometheus.CounterVec

	mu       sync.Mutex
	retrying []*attempt // oldest first
	pending  atomic.Int32
}

// maxRetrying bounds the batches whose parts are remembered between attempts: one per queue
// consumer is the most a sender has between attempts at once, unless callers without a queue
// outnumber them.
const maxRetrying = 64

// attempt is a batch cut into parts, some of them sent.
type attempt struct {
	key      weak.Pointer[batch.Batch]
	todo     []*batch.Batch // not yet sent or refused, in order
	accepted bool           // the backend took some part (perhaps in part)
	rejected int            // items refused for good
	why      []string       // what the backend said of them
	first    error          // the first refusal, for a batch refused whole
}

// NewSplitter builds a Splitter for the exporter type typ that sends with export, bounds each
// request by timeout (0: no bound; the exporter's sender is then built with
// sender.TimeoutPerRequest) and cuts batches larger than maxBytes (0: no cap) before sending
// them. It registers vigil_exporter_<typ>_split_requests_total.
func NewSplitter(set component.Settings, typ string, maxBytes int, timeout time.Duration, export ExportFunc) (*Splitter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	splits, err := selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_exporter_" + typ + "_split_requests_total",
		Help: "Requests cut into smaller ones, by reason: max_request_bytes (over the cap, cut before sending), too_large (the backend refused it as too large; halved and sent again).",
	}, []string{"signal", "reason"}))
	if err != nil {
		return nil, err
	}
	for _, sig := range batch.Signals {
		for _, r := range []string{splitCap, splitTooLarge} {
			splits.WithLabelValues(sig.String(), r) // present at 0, for alert expressions
		}
	}
	return &Splitter{maxBytes: maxBytes, timeout: timeout, export: export, log: log, warn: ratelog.Limiter{Every: time.Minute}, splits: splits}, nil
}

// Send makes one attempt at b (a sender.SendFunc). A batch within the cap goes out as one
// request, as it would without a Splitter.
func (s *Splitter) Send(ctx context.Context, b *batch.Batch) error {
	st := s.take(b)
	if st == nil {
		if s.maxBytes > 0 && !b.IsEncoded() {
			// Encoded once here, which the export needs anyway, rather than sized by a pass of
			// its own over the decoded data.
			if _, err := b.Encoded(); err != nil {
				return consumererror.NewPermanent(fmt.Errorf("encode %s: %w", b.Signal(), err))
			}
		}
		if s.maxBytes == 0 || b.EncodedSize() <= s.maxBytes {
			err := s.call(ctx, b)
			if !errors.Is(err, ErrTooLarge) {
				return err
			}
			halves, ok := s.halve(b, err)
			if !ok {
				return err // a single item: refused for good, the batch with it
			}
			st = &attempt{todo: halves}
		} else {
			parts, err := cut(b, s.maxBytes)
			if err != nil {
				return consumererror.NewPermanent(err)
			}
			s.splits.WithLabelValues(b.Signal().String(), splitCap).Inc()
			st = &attempt{todo: parts}
		}
	}
	for len(st.todo) > 0 {
		p := st.todo[0]
		err := s.call(ctx, p)
		switch partial, isPartial := consumererror.AsPartial(err); {
		case err == nil:
			st.accepted = true
		case isPartial:
			st.accepted = true
			st.rejected += min(max(partial.Rejected, 0), p.Items())
			if partial.Message != "" {
				st.why = append(st.why, partial.Message)
			}
		case errors.Is(err, ErrTooLarge):
			if halves, ok := s.halve(p, err); ok {
				st.todo = append(halves, st.todo[1:]...)
				continue
			}
			how := "alone"
			if p.Items() != 1 {
				how = "and cannot be cut further"
			}
			st.refuse(p, fmt.Errorf("%s (%d bytes) refused %s: %w", count(p), p.EncodedSize(), how, err))
		case consumererror.IsPermanent(err):
			st.refuse(p, err)
		default:
			// Worth retrying: the next attempt at b starts from this part.
			s.keep(b, st)
			return err
		}
		st.todo = st.todo[1:]
	}
	return st.outcome(b)
}

// call sends p as one request within the Splitter's timeout. A request that ran out of it (not
// the caller's context) says so by wrapping context.DeadlineExceeded, for the sender's count.
func (s *Splitter) call(ctx context.Context, p *batch.Batch) error {
	if s.timeout <= 0 {
		return s.export(ctx, p)
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.export(rctx, p)
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (request timed out after %s: %w)", err, s.timeout, context.DeadlineExceeded)
	}
	return err
}

// count says how many items b holds, in words: "1 span", "3 log records".
func count(b *batch.Batch) string {
	name := map[batch.Signal]string{batch.Traces: "span", batch.Metrics: "data point", batch.Logs: "log record"}[b.Signal()]
	if b.Items() != 1 {
		name += "s"
	}
	return fmt.Sprintf("%d %s", b.Items(), name)
}

// refuse records that the backend refused p for good.
func (st *attempt) refuse(p *batch.Batch, err error) {
	st.rejected += p.Items()
	st.why = append(st.why, err.Error())
	if st.first == nil {
		st.first = err
	}
}

// outcome is what the sender hears once every part was sent or refused.
func (st *attempt) outcome(b *batch.Batch) error {
	switch {
	case st.rejected == 0 && len(st.why) == 0:
		return nil
	case !st.accepted:
		// Nothing got through: the batch was refused, as it would have been whole.
		if len(st.why) > 1 {
			return consumererror.NewPermanent(fmt.Errorf("%w (and %d more parts refused)", st.first, len(st.why)-1))
		}
		return consumererror.NewPermanent(st.first)
	}
	msg := strings.Join(st.why, "; ")
	if len(st.why) > 3 {
		msg = strings.Join(st.why[:3], "; ") + fmt.Sprintf("; and %d more", len(st.why)-3)
	}
	return &consumererror.Partial{Rejected: min(st.rejected, b.Items()), Message: msg}
}

// halve cuts a request the backend refused as too large into (about) halves; false when it is a
// single item, or cannot be cut.
func (s *Splitter) halve(p *batch.Batch, refusal error) ([]*batch.Batch, bool) {
	if p.Items() < 2 {
		return nil, false
	}
	size := p.EncodedSize()
	parts, err := cut(p, (size+1)/2)
	if err != nil || len(parts) < 2 {
		return nil, false
	}
	s.splits.WithLabelValues(p.Signal().String(), splitTooLarge).Inc()
	s.warn.Warn(s.log, "backend refused a request as too large; sending it in smaller parts (set max_request_bytes below the backend's limit to spare the round trip)",
		"bytes", size, "items", p.Items(), "parts", len(parts), "error", refusal.Error())
	return parts, true
}

// cut splits b by encoded size without changing it: b is the sender's, and may be attempted
// again. A decoded batch is encoded first (and keeps its encoding, which the export needs too),
// so that the cut never decodes.
func cut(b *batch.Batch, max int) ([]*batch.Batch, error) {
	if !b.IsEncoded() {
		if _, err := b.Encoded(); err != nil {
			return nil, err
		}
	}
	return batch.SplitBytes(b.Share(), max)
}

// take removes and returns what an earlier attempt at b left to send, if anything. Attempts
// whose batch is gone are forgotten on the way.
func (s *Splitter) take(b *batch.Batch) *attempt {
	if s.pending.Load() == 0 {
		return nil
	}
	key := weak.Make(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *attempt
	s.retrying = slices.DeleteFunc(s.retrying, func(st *attempt) bool {
		switch {
		case st.key == key:
			found = st
			return true
		case st.key.Value() == nil:
			return true
		}
		return false
	})
	s.pending.Store(int32(len(s.retrying)))
	return found
}

// keep remembers st for the next attempt at b.
func (s *Splitter) keep(b *batch.Batch, st *attempt) {
	st.key = weak.Make(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retrying = slices.DeleteFunc(s.retrying, func(st *attempt) bool { return st.key.Value() == nil })
	if len(s.retrying) >= maxRetrying {
		s.retrying = slices.Delete(s.retrying, 0, len(s.retrying)-maxRetrying+1)
	}
	s.retrying = append(s.retrying, st)
	s.pending.Store(int32(len(s.retrying)))
}
