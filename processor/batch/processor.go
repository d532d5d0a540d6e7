package batchprocessor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/ratelog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// errLogEvery bounds how often a failing downstream is logged: a dead backend would otherwise
// log once per batch.
const errLogEvery = 10 * time.Second

// processor buffers batches and sends them on joined. Consume only appends under a short lock;
// joining, splitting and the downstream call happen outside it, in whichever goroutine tipped
// the size over (a receiver's goroutine or a pipeline worker) or in the timer loop.
//
// Acknowledgements: Consume answers before the data moved on, so it holds the completion
// handles of every batch it buffers (ack.Set.Hold) and releases them with the outcome of the
// send that carried the batch. A client waiting for its acknowledgement is therefore answered
// when its data reached the exporters (durably, under the default mode), not when it reached
// this buffer; and a refusal downstream reaches the client instead of being logged and lost.
type processor struct {
	set      component.Settings
	sig      batch.Signal
	next     component.Consumer
	size     int
	max      int // 0: no cap
	maxBytes int // 0: no cap
	timeout  time.Duration
	// The idle timeout (Config.IdleTimeout) moves within [idleLo, idleHi]: 0 is off.
	idleLo, idleHi time.Duration
	errLog         ratelog.Limiter

	mu      sync.Mutex
	pending []*batch.Batch
	items   int
	firstAt time.Time // when the oldest pending item arrived
	lastAt  time.Time // when the newest batch arrived (pending or sent since)
	waiting bool      // some pending batch's client waits for its acknowledgement
	// The adaptive idle timeout follows gap, the smoothed time between batches, unless the
	// last sends each carried a lone batch (singles): see idleLocked.
	gap     time.Duration
	singles int
	started bool
	closed  bool
	// flushes counts sends running outside the lock, so Shutdown can wait for them. Add is
	// called only under mu while !closed, so it never races with Shutdown's Wait.
	flushes sync.WaitGroup

	kick     chan struct{} // the first item arrived: the loop arms its timer
	stop     chan struct{}
	loopDone chan struct{}
}

var _ component.Processor = (*processor)(nil)

func newProcessor(set component.Settings, cfg *Config, sig batch.Signal, next component.Consumer) *processor {
	lo, hi := cfg.idleBounds()
	return &processor{
		set:      set,
		sig:      sig,
		next:     next,
		size:     int(cfg.SendBatchSize),
		max:      int(cfg.SendBatchMaxSize),
		maxBytes: int(cfg.SendBatchMaxBytes),
		timeout:  cfg.Timeout,
		idleLo:   lo,
		idleHi:   hi,
		errLog:   ratelog.Limiter{Every: errLogEvery},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
}

// Start runs the timer loop. With timeout 0 every batch is sent at once and no loop is needed.
func (p *processor) Start(context.Context, component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return nil
	}
	p.started = true
	if p.timeout > 0 {
		go p.loop()
	} else {
		close(p.loopDone)
	}
	return nil
}

// Consume takes ownership of b and returns nil once it is buffered. Errors from downstream are
// logged, counted by the framework on this processor's output edge, and released into the
// completion handles of the batches they concern, so that waiting clients hear them.
func (p *processor) Consume(ctx context.Context, b *batch.Batch) error {
	if b.Signal() != p.sig {
		return fmt.Errorf("%s: got %s in a %s pipeline", p.set.ID, b.Signal(), p.sig)
	}
	b.Acks().Hold() // released by send, once the send carrying b is done
	p.mu.Lock()
	if p.closed {
		// Stopped: pass through rather than hold data nobody would send.
		p.mu.Unlock()
		p.send(ctx, pendingSet{batches: []*batch.Batch{b}, items: b.Items()}, false)
		return nil
	}
	now := time.Now()
	p.noteArrivalLocked(now)
	if len(p.pending) == 0 {
		p.firstAt = now
		p.kickLocked()
	}
	if len(b.Acks()) > 0 {
		if !p.waiting && p.idleHi > 0 {
			p.kickLocked() // the idle deadline may come before the timeout
		}
		p.waiting = true
	}
	p.pending = append(p.pending, b)
	p.items += b.Items()
	if p.timeout > 0 && p.items < p.size {
		p.mu.Unlock()
		return nil
	}
	set := p.take()
	p.flushes.Add(1)
	p.mu.Unlock()
	defer p.flushes.Done()
	// The set holds other callers' data, acknowledged already: this caller giving up (deadline,
	// disconnect) must not cancel its delivery. Downstream bounds the send itself.
	p.send(context.WithoutCancel(ctx), set, true)
	return nil
}

// pendingSet is what one send takes out of the buffer.
type pendingSet struct {
	batches []*batch.Batch
	items   int
	firstAt time.Time
}

// take empties the buffer; the caller holds mu.
func (p *processor) take() pendingSet {
	s := pendingSet{batches: p.pending, items: p.items, firstAt: p.firstAt}
	p.pending, p.items, p.waiting = nil, 0, false
	// Counted before the send answers its clients, whose next batches must see it.
	if len(s.batches) == 1 {
		p.singles++
	} else {
		p.singles = 0
	}
	return s
}

// kickLocked tells the loop that its next deadline may have moved earlier.
func (p *processor) kickLocked() {
	select {
	case p.kick <- struct{}{}:
	default: // a kick is already waiting
	}
}

// deadlineLocked is when the buffer is sent: timeout after its first item, or, while a client
// waits for pending data, the idle timeout after its last batch, whichever comes first.
func (p *processor) deadlineLocked() time.Time {
	d := p.firstAt.Add(p.timeout)
	if p.idleHi > 0 && p.waiting {
		if i := p.lastAt.Add(p.idleLocked()); i.Before(d) {
			d = i
		}
	}
	return d
}

// noteArrivalLocked records a batch's arrival, folding the time since the previous one into the
// smoothed gap (weight 1/8 for the newest) when the idle timeout adapts; each gap counts at most
// twice the longest idle timeout, so that one long pause is soon forgotten.
func (p *processor) noteArrivalLocked(now time.Time) {
	if p.idleLo != p.idleHi && !p.lastAt.IsZero() {
		g := min(now.Sub(p.lastAt), 2*p.idleHi)
		p.gap += (g - p.gap) / 8
	}
	p.lastAt = now
}

// loneSends is how many sends in a row must carry a single batch for idleLocked to stop
// lingering, and probeEvery how often it tries lingering again.
const (
	loneSends  = 3
	probeEvery = 16
)

// idleLocked is the idle timeout now: twice the usual gap between batches, within its bounds.
// Steady arrivals (an open-loop rate) keep their batches filling, since a gap twice the usual
// is rare (one in seven even for random arrivals); a burst from clients that all wait for their
// answer (a closed loop) is sent soon after its last batch, since nothing more comes until it
// is. A lone client that waits for each answer before it sends again makes the usual gap its
// own wait, and every send carries its one batch: after loneSends such sends in a row the
// processor stops lingering (the lower bound) until a send carries more than one again. A
// trickle of independent batches closer together than twice their gap looks the same once it
// is sent alone; so every probeEvery-th lone send lingers as usual, and if another batch joins
// it, the trickle is batched again.
func (p *processor) idleLocked() time.Duration {
	if p.singles >= loneSends && p.singles%probeEvery != 0 {
		return p.idleLo
	}
	return min(max(2*p.gap, p.idleLo), p.idleHi)
}

// send joins and splits a taken set and hands the parts downstream. Encoded and decoded batches
// are joined separately, so encoded data stays encoded even in a pipeline that mixes both. When
// the size triggered the send and a cap split the result, a last part smaller than the trigger
// goes back to the buffer to wait for more, as in the Collector. Remote-write batches are joined
// among themselves the same way.
//
// Every batch in s was held in Consume; send releases those holds with the combined outcome of
// the parts it sent. A remainder put back in the buffer is held anew, as any buffered batch.
func (p *processor) send(ctx context.Context, s pendingSet, sizeTriggered bool) {
	var groups [3][]*batch.Batch // by batch.Form
	for _, b := range s.batches {
		groups[b.Form()] = append(groups[b.Form()], b)
	}
	for _, f := range []batch.Form{batch.FormOTLP, batch.FormPromRW, batch.FormPData} {
		group := groups[f]
		if len(group) == 0 {
			continue
		}
		joined, err := batch.Concat(group)
		if err != nil {
			// Only a mix of signals gets here, which Consume refuses; count it rather than hide it.
			n := 0
			for _, b := range group {
				n += b.Items()
				b.Acks().Release(consumererror.NewPermanent(err))
			}
			p.set.Counters.Add(component.Dropped, p.sig, n)
			p.set.Logger.Error("cannot join batches; dropped", "error", err, "items", n)
			continue
		}
		held := joined.Acks() // every part of group's holds, once each
		parts := []*batch.Batch{joined}
		if p.max > 0 && joined.Items() > p.max {
			if parts, err = batch.Split(joined, p.max); err != nil {
				// Split leaves its input whole on error: better late and big than lost.
				p.set.Logger.Warn("cannot split batch; sending it whole", "error", err, "items", joined.Items())
				parts = []*batch.Batch{joined}
			}
		}
		if p.maxBytes > 0 {
			parts = p.splitBytes(parts)
		}
		if last := parts[len(parts)-1]; sizeTriggered && p.timeout > 0 && len(parts) > 1 && last.Items() < p.size {
			// Held before it is back in the buffer, where another send may take it at once.
			last.Acks().Hold()
			if p.keep(last, s.firstAt) {
				parts = parts[:len(parts)-1]
			} else {
				last.Acks().Release(nil) // sent below after all; held covers it
			}
		}
		var errs []error
		for _, part := range parts {
			n := part.Items()
			if err := p.next.Consume(ctx, part); err != nil {
				p.errLog.Warn(p.set.Logger, "downstream refused a batch", "error", err, "items", n)
				errs = append(errs, err)
			}
		}
		held.Release(consumererror.Combine(errs...))
	}
}

// splitBytes cuts the parts larger than send_batch_max_bytes. Each piece carries the acks of
// its part, which are all of the joined batch's: held covers them.
func (p *processor) splitBytes(parts []*batch.Batch) []*batch.Batch {
	var out []*batch.Batch // nil until a part needs cutting
	for i, part := range parts {
		if part.EncodedSize() <= p.maxBytes {
			if out != nil {
				out = append(out, part)
			}
			continue
		}
		if out == nil {
			out = append(make([]*batch.Batch, 0, len(parts)+1), parts[:i]...)
		}
		pieces, err := batch.SplitBytes(part, p.maxBytes)
		if err != nil {
			// As for Split: the part is left whole, and sent so.
			p.set.Logger.Warn("cannot split batch by size; sending it whole", "error", err, "items", part.Items(), "bytes", part.EncodedSize())
			pieces = []*batch.Batch{part}
		}
		out = append(out, pieces...)
	}
	if out == nil {
		return parts
	}
	return out
}

// keep puts a remainder back at the head of the buffer, unless the processor is stopping.
func (p *processor) keep(b *batch.Batch, firstAt time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if len(p.pending) == 0 || firstAt.Before(p.firstAt) {
		p.firstAt = firstAt // the remainder has waited since its own first item
	}
	p.pending = append([]*batch.Batch{b}, p.pending...)
	p.items += b.Items()
	p.waiting = p.waiting || len(b.Acks()) > 0
	p.kickLocked()
	return true
}

// loop sends the buffer at its deadline (deadlineLocked). It sleeps on kick while the buffer is
// empty, so an idle pipeline costs no wake-ups.
func (p *processor) loop() {
	defer close(p.loopDone)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			if len(p.pending) == 0 {
				p.mu.Unlock()
				break
			}
			wait := time.Until(p.deadlineLocked())
			if wait <= 0 {
				s := p.take()
				p.mu.Unlock()
				p.send(context.Background(), s, false)
				continue
			}
			p.mu.Unlock()
			// The deadline may move (a size-triggered send took the buffer, a waiting client's
			// batch arrived): check again on wake-up.
			t := time.NewTimer(wait)
			select {
			case <-p.stop:
				t.Stop()
				return
			case <-t.C:
			case <-p.kick:
				t.Stop()
			}
		}
	}
}

// Shutdown sends what is buffered, stops the timer loop and waits for sends in flight. It is
// idempotent; a Consume after it passes batches straight through.
func (p *processor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	started := p.started
	s := p.take()
	p.mu.Unlock()

	if started {
		close(p.stop)
		if err := wait(ctx, p.loopDone); err != nil {
			return fmt.Errorf("%s: stopping the timer: %w", p.set.ID, err)
		}
	}
	if len(s.batches) > 0 {
		p.send(ctx, s, false)
	}
	flushed := make(chan struct{})
	go func() {
		p.flushes.Wait()
		close(flushed)
	}()
	if err := wait(ctx, flushed); err != nil {
		return fmt.Errorf("%s: waiting for sends in flight: %w", p.set.ID, err)
	}
	return nil
}

func wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
