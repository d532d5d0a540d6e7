package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/queue"
)

// consume is one of the queue's consumers: it takes batches (merging them when batching is on),
// delivers them, and tells the queue when each is done.
func (s *Sender) consume(q queue.Queue) {
	defer s.wg.Done()
	if bc := s.cfg.Queue.Batch; bc != nil {
		s.consumeBatched(q, *bc)
		return
	}
	for {
		if s.persistent && s.stopping.Load() {
			return // what is left stays in the WAL
		}
		b, done, ok := q.Get(s.getCtx())
		if !ok {
			return
		}
		s.process(q, &pending{parts: []*batch.Batch{b}, dones: []func(bool){done}, items: b.Items()})
	}
}

// getCtx bounds a consumer's wait for the next batch. A memory queue's consumers wait until
// the queue is closed and empty, to send what it holds at shutdown; a persistent queue's stop
// waiting when Shutdown begins, since what is left is safe in the WAL (which Shutdown closes
// only after they stopped).
func (s *Sender) getCtx() context.Context {
	if s.persistent {
		return s.stopCtx
	}
	return s.runCtx
}

// pending is what a batching consumer holds for one signal: parts taken from the queue and not
// yet sent, and their done handles.
type pending struct {
	parts    []*batch.Batch
	dones    []func(bool)
	items    int
	deadline time.Time // when flush_timeout sends it, whatever its size
}

// consumeBatched merges batches of a signal until min_size items or flush_timeout, never past
// max_size, and sends the result as one request. Merging encoded batches concatenates bytes
// (batch.Concat) and decodes nothing. Parts are acknowledged (done) only after the request that
// carries them is finished, so batching holds nothing the queue has forgotten: this is why
// batching belongs here, after a persistent queue, rather than in a processor before it.
func (s *Sender) consumeBatched(q queue.Queue, bc BatchConfig) {
	held := map[batch.Signal]*pending{}
	flush := func(sig batch.Signal) {
		p := held[sig]
		delete(held, sig)
		s.process(q, p)
	}
	flushAll := func() {
		for _, sig := range batch.Signals {
			if held[sig] != nil {
				flush(sig)
			}
		}
	}
	poll, endPoll := context.WithCancel(context.Background())
	endPoll() // Get with an ended context returns only what already waits
	for {
		if s.persistent && s.stopping.Load() {
			flushAll() // process gives the parts back to the WAL without sending
			return
		}
		var (
			b    *batch.Batch
			done func(bool)
			ok   bool
		)
		if len(held) > 0 {
			b, done, ok = q.Get(poll)
			// Held parts keep their room in the queue. When nothing waits and the queue is
			// (nearly) full, the consumers hold its room and nothing more can come in until they
			// send: waiting for flush_timeout would only stall the clients.
			if !ok && !s.stopping.Load() && fill(q.Stats(), s.cfg.Queue.Sizer) >= drainedBelow {
				flushAll()
				continue
			}
		}
		if !ok {
			var first time.Time // the earliest flush_timeout of what is held
			for _, p := range held {
				if first.IsZero() || p.deadline.Before(first) {
					first = p.deadline
				}
			}
			ctx, cancel := s.getCtx(), context.CancelFunc(nil)
			if !first.IsZero() {
				ctx, cancel = context.WithDeadline(ctx, first)
			}
			b, done, ok = q.Get(ctx)
			timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
			if cancel != nil {
				cancel()
			}
			if !ok && timedOut && s.getCtx().Err() == nil {
				for _, sig := range batch.Signals {
					if p := held[sig]; p != nil && !p.deadline.After(first) {
						flush(sig)
					}
				}
				continue
			}
		}
		if !ok { // the queue is closed and empty, or the run is over
			flushAll()
			return
		}
		sig := b.Signal()
		p := held[sig]
		if p != nil && bc.MaxSize > 0 && p.items+b.Items() > bc.MaxSize {
			flush(sig)
			p = nil
		}
		if p == nil {
			p = &pending{deadline: time.Now().Add(bc.FlushTimeout)}
			held[sig] = p
		}
		p.parts = append(p.parts, b)
		p.dones = append(p.dones, done)
		p.items += b.Items()
		if p.items >= bc.MinSize {
			flush(sig)
		}
	}
}

// process delivers what p holds, finishes its parts with the queue, and releases the
// completion handles the sender holds for them (end_to_end) with the outcome.
func (s *Sender) process(q queue.Queue, p *pending) {
	finished, err := s.sendParts(p)
	for _, done := range p.dones {
		done(finished)
	}
	if !finished {
		err = s.errCutShort()
	}
	for _, b := range p.parts {
		b.Acks().Release(err)
	}
	s.health.queueProgress(q, s.cfg.Queue.Sizer)
}

// sendParts merges p's parts, splits the result if it exceeds max_size, and delivers it, and
// returns the outcome. finished is false when shutdown cut delivery short: a persistent queue
// then keeps every part (some may have gone out; the next start sends them again, at least once).
func (s *Sender) sendParts(p *pending) (finished bool, err error) {
	if s.persistent && s.stopping.Load() {
		return false, nil
	}
	if s.runCtx.Err() != nil { // Shutdown's grace period is over
		for _, b := range p.parts {
			s.lose(b)
		}
		return false, nil
	}
	b := p.parts[0]
	if len(p.parts) > 1 {
		sig := b.Signal()
		merged, err := batch.Concat(p.parts)
		if err != nil {
			// Only a part that cannot be decoded makes Concat fail: no retry would help.
			err = fmt.Errorf("exporter %s: %w", s.set.ID, err)
			s.drop(sig, p.items, dropUnmergeable)
			s.logThrottled(slog.LevelError, "could not merge queued batches; dropping them", err, sig, p.items)
			return true, consumererror.NewPermanent(err)
		}
		b = merged
	}
	sends := []*batch.Batch{b}
	if bc := s.cfg.Queue.Batch; bc != nil && bc.MaxSize > 0 && b.Items() > bc.MaxSize {
		if parts, err := batch.Split(b, bc.MaxSize); err == nil {
			sends = parts
		} else {
			s.log.Debug("could not split an oversize batch; sending it whole", "error", err.Error())
		}
	}
	finished = true
	var errs []error
	for _, b := range sends {
		f, err := s.deliver(s.runCtx, b, true)
		finished = finished && f
		errs = append(errs, err)
	}
	return finished, consumererror.Combine(errs...)
}
