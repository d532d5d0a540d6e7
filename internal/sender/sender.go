package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// SendFunc makes one attempt to deliver a batch. It must honour ctx (which carries the
// per-attempt timeout) and must not mutate b. Its error decides what happens next:
//   - nil: delivered;
//   - *consumererror.Partial: delivered except Rejected items, which are dropped;
//   - consumererror.Permanent: dropped without retry;
//   - anything else: retried, after the consumererror.Retryable delay if one is given.
type SendFunc func(ctx context.Context, b *batch.Batch) error

// Option changes how New builds a Sender.
type Option func(*Sender)

// WithQueue replaces the memory queue (when sending_queue is enabled) with q, such as a
// persistent queue.
func WithQueue(q Queue) Option { return func(s *Sender) { s.queue = q } }

// QueueFullRetryAfter is the delay suggested to clients whose data met a full queue.
const QueueFullRetryAfter = time.Second

// maxServerDelay caps the delay a backend may ask for (Retry-After, RetryInfo), so that a
// buggy or hostile answer cannot park a batch for days; max_elapsed_time still applies.
const maxServerDelay = 5 * time.Minute

// logEvery is how often one reason for a failure is logged.
const logEvery = time.Minute

// Sender delivers batches for an exporter: queue → retry → timeout → send. With the queue on,
// Consume returns as soon as the batch is queued and consumers deliver it in the background;
// with it off, Consume delivers (with retries) in the caller's goroutine and returns the outcome.
type Sender struct {
	set      component.Settings
	cfg      Config
	send     SendFunc
	queue    Queue // nil: no queue
	log      *slog.Logger
	counters component.Counters
	throttle *throttle

	retries    *prometheus.CounterVec
	registered []prometheus.Collector

	// stop is closed when Shutdown begins: waits between retries end and no new retry starts.
	stop     chan struct{}
	stopping atomic.Bool
	// runCtx bounds every delivery; it is cancelled when Shutdown's context ends.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// lostItems and lostBatches count what shutdown cut short, for Shutdown's error.
	lostItems   atomic.Int64
	lostBatches atomic.Int64

	mu      sync.RWMutex // guards started/stopped and Adds to wg
	started bool
	stopped bool
	wg      sync.WaitGroup // consumers and in-flight synchronous deliveries
}

// New builds a Sender. Nothing runs until Start.
func New(set component.Settings, cfg Config, send SendFunc, opts ...Option) (*Sender, error) {
	if send == nil {
		return nil, errors.New("sender: nil send function")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sender{
		set:      set,
		cfg:      cfg,
		send:     send,
		log:      set.Logger,
		counters: set.Counters,
		throttle: newThrottle(logEvery),
		stop:     make(chan struct{}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_exporter_retries_total",
			Help: "Send attempts repeated after a retryable failure.",
		}, []string{"signal"}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.counters == nil {
		s.counters = nopCounters{}
	}
	if cfg.Queue.Enabled {
		s.queue = NewMemoryQueue(cfg.Queue.QueueSize, cfg.Queue.BlockOnOverflow)
	}
	for _, o := range opts {
		o(s)
	}
	if !cfg.Queue.Enabled {
		s.queue = nil
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	return s, nil
}

type nopCounters struct{}

func (nopCounters) Add(component.Outcome, batch.Signal, int) {}

// Start registers the sender's metrics and starts the queue consumers.
func (s *Sender) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("sender: start after shutdown")
	}
	if s.started {
		return nil
	}
	if err := s.register(); err != nil {
		return err
	}
	s.started = true
	if s.queue != nil {
		for range s.cfg.Queue.NumConsumers {
			s.wg.Add(1)
			go s.consume()
		}
	}
	return nil
}

// register adds the metrics at Start rather than New, and Shutdown removes them, so that an
// exporter can be created, stopped and created again against one registry.
func (s *Sender) register() error {
	reg := s.set.Registerer
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{s.retries}
	if q := s.queue; q != nil {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "vigil_exporter_queue_size",
				Help: "Batches waiting in the exporter's sending queue.",
			}, func() float64 { return float64(q.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "vigil_exporter_queue_capacity",
				Help: "Capacity of the exporter's sending queue, in batches.",
			}, func() float64 { return float64(q.Cap()) }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			s.unregister()
			return fmt.Errorf("sender: register metrics: %w", err)
		}
		s.registered = append(s.registered, c)
	}
	return nil
}

func (s *Sender) unregister() {
	for _, c := range s.registered {
		s.set.Registerer.Unregister(c)
	}
	s.registered = nil
}

// Consume takes b. With the queue on it returns nil once b is queued, or a retryable error if
// the queue is full or closed. With the queue off it delivers b and returns the outcome: nil,
// a *consumererror.Partial, a permanent error, or a retryable one once retries are exhausted.
func (s *Sender) Consume(ctx context.Context, b *batch.Batch) error {
	if s.queue == nil {
		return s.consumeSync(ctx, b)
	}
	err := s.queue.Put(ctx, b)
	if err == nil {
		return nil
	}
	s.counters.Add(component.Failed, b.Signal(), b.Items())
	if errors.Is(err, ErrFull) {
		s.logThrottled(slog.LevelWarn, "sending queue full; refusing data", err, b, 0)
		return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, err), QueueFullRetryAfter)
	}
	return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, err), 0)
}

func (s *Sender) consumeSync(ctx context.Context, b *batch.Batch) error {
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		s.counters.Add(component.Failed, b.Signal(), b.Items())
		return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, ErrClosed), 0)
	}
	s.wg.Add(1)
	s.mu.RUnlock()
	defer s.wg.Done()
	// The caller's context bounds the delivery, and so does the end of Shutdown's grace period.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.runCtx, cancel)()
	_, err := s.deliver(ctx, b, false)
	return err
}

func (s *Sender) consume() {
	defer s.wg.Done()
	for {
		b, release, ok := s.queue.Get(s.runCtx)
		if !ok {
			return
		}
		if s.runCtx.Err() != nil {
			s.lose(b) // Shutdown's grace period is over
			continue
		}
		if finished, _ := s.deliver(s.runCtx, b, true); finished {
			release()
		}
	}
}

// deliver sends b with retries, counts the outcome and logs failures. finished is false when
// shutdown cut the delivery short, so a persistent queue keeps the batch.
func (s *Sender) deliver(ctx context.Context, b *batch.Batch, queued bool) (finished bool, err error) {
	sig, n := b.Signal(), b.Items()
	err = s.retry(ctx, b)
	if err == nil {
		s.counters.Add(component.Sent, sig, n)
		return true, nil
	}
	if p, ok := consumererror.AsPartial(err); ok {
		rejected := min(max(p.Rejected, 0), n)
		s.counters.Add(component.Sent, sig, n-rejected)
		s.counters.Add(component.Dropped, sig, rejected)
		s.logThrottled(slog.LevelWarn, "backend accepted the data in part", errors.New(p.Message), b, rejected)
		return true, err
	}
	err = fmt.Errorf("exporter %s: %w", s.set.ID, err)
	if consumererror.IsPermanent(err) {
		s.counters.Add(component.Dropped, sig, n)
		s.logThrottled(slog.LevelError, "backend refused the data for good; dropping it", err, b, n)
		return true, err
	}
	if queued && s.stopping.Load() {
		// The client was told the data was taken; shutdown lost it.
		s.lose(b)
		s.logThrottled(slog.LevelError, "exporter shutting down; dropping data it could not send", err, b, n)
		return false, err
	}
	s.counters.Add(component.Failed, sig, n)
	if queued {
		s.logThrottled(slog.LevelError, "sending failed after retries; dropping data", err, b, n)
	} else {
		s.logThrottled(slog.LevelWarn, "sending failed after retries; returning the error upstream", err, b, n)
	}
	if _, ok := consumererror.RetryAfter(err); !ok {
		err = consumererror.NewRetryable(err, 0)
	}
	return true, err
}

func (s *Sender) logThrottled(level slog.Level, msg string, err error, b *batch.Batch, items int) {
	ok, suppressed := s.throttle.allow(msg + ": " + err.Error())
	if !ok {
		return
	}
	attrs := []any{"error", err.Error(), "signal", b.Signal().String()}
	if items > 0 {
		attrs = append(attrs, "items", items)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_since_last_log", suppressed)
	}
	s.log.Log(context.Background(), level, msg, attrs...)
}

// retryable reports whether err is worth another attempt: anything not marked permanent or
// partial, since an unclassified error (a reset connection, say) is usually transient.
func retryable(err error) bool {
	if consumererror.IsPermanent(err) {
		return false
	}
	_, partial := consumererror.AsPartial(err)
	return !partial
}

func (s *Sender) retry(ctx context.Context, b *batch.Batch) error {
	start := time.Now()
	var bo *backoff
	for {
		err := s.attempt(ctx, b)
		if err == nil || !retryable(err) || !s.cfg.Retry.Enabled {
			return err
		}
		if s.stopping.Load() {
			return fmt.Errorf("%w (not retried: shutting down)", err)
		}
		if bo == nil {
			bo = newBackoff(s.cfg.Retry)
		}
		wait := bo.wait()
		if after, _ := consumererror.RetryAfter(err); after > 0 {
			// The backend knows best when it can take more; never come back sooner.
			wait = max(wait, min(after, maxServerDelay))
		}
		if limit := s.cfg.Retry.MaxElapsedTime; limit > 0 && time.Since(start)+wait > limit {
			return fmt.Errorf("%w (gave up: next retry in %s would pass max_elapsed_time %s)", err, wait.Round(time.Millisecond), limit)
		}
		s.log.Debug("send failed; will retry", "error", err.Error(), "signal", b.Signal().String(), "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %v)", err, ctx.Err())
		case <-s.stop:
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: shutting down)", err)
		}
		s.retries.WithLabelValues(b.Signal().String()).Inc()
	}
}

func (s *Sender) attempt(ctx context.Context, b *batch.Batch) error {
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	return s.send(ctx, b)
}

// Shutdown stops taking data, aborts waits between retries, and lets the consumers send what
// the queue holds (one attempt per batch) until ctx ends. In-flight sends are then cancelled and
// everything left is counted as dropped; the error says how much was lost. Safe without Start
// and safe twice.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()

	s.stopping.Store(true)
	close(s.stop)
	if s.queue != nil {
		s.queue.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	cut := false
	select {
	case <-done:
	case <-ctx.Done():
		cut = true
		s.cancelRun()
		<-done
	}
	s.cancelRun()

	s.drain()
	var err error
	if batches := s.lostBatches.Load(); batches > 0 {
		items := s.lostItems.Load()
		s.log.Error("exporter shut down before it could send everything; dropped the rest",
			"batches", batches, "items", items, "grace_period_ended", cut)
		err = fmt.Errorf("exporter %s: dropped %d items in %d batches at shutdown", s.set.ID, items, batches)
		if cut {
			err = fmt.Errorf("%w: %w", err, ctx.Err())
		}
	}
	if started {
		s.mu.Lock()
		s.unregister()
		s.mu.Unlock()
	}
	return err
}

// drain empties the closed queue after the consumers stopped, counting what it held as lost.
func (s *Sender) drain() {
	if s.queue == nil {
		return
	}
	for {
		b, _, ok := s.queue.Get(s.runCtx) // runCtx is cancelled: Get returns only what waits
		if !ok {
			return
		}
		s.lose(b)
	}
}

// lose counts a queued batch that shutdown kept from being delivered. It is not released: a
// persistent queue still holds it for the next start.
func (s *Sender) lose(b *batch.Batch) {
	s.counters.Add(component.Dropped, b.Signal(), b.Items())
	s.lostItems.Add(int64(b.Items()))
	s.lostBatches.Add(1)
}
