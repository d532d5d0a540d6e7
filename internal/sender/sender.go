package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/queue"
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

// TimeoutPerRequest tells the sender that its SendFunc bounds each request it makes by
// Config.Timeout itself (an exporter that sends one batch as several requests within one
// attempt), so that the attempt as a whole is not bounded: parts sent one after the other must
// not share one request's time. A request that timed out is reported by wrapping
// context.DeadlineExceeded, and counted with reason "timeout".
func TimeoutPerRequest() Option { return func(s *Sender) { s.perRequest = true } }

// QueueFullRetryAfter is the delay suggested to clients whose data met a full queue.
const QueueFullRetryAfter = time.Second

// maxServerDelay caps the delay a backend may ask for (Retry-After, RetryInfo), so that a
// buggy or hostile answer cannot park a batch for days; max_elapsed_time still applies.
const maxServerDelay = 5 * time.Minute

// logEvery is how often one reason for a failure is logged.
const logEvery = time.Minute

// Reasons for dropped items, the reason label of vigil_exporter_dropped_items_total.
const (
	dropQueueFull   = "queue_full"        // refused by a full queue under when_full: drop_newest
	dropOldest      = "drop_oldest"       // discarded from a full queue under when_full: drop_oldest
	dropPermanent   = "permanent"         // the backend refused the data for good
	dropRejected    = "rejected"          // partial success: the items the backend rejected
	dropExhausted   = "retries_exhausted" // max_elapsed_time passed (or retries are off)
	dropShutdown    = "shutdown"          // a memory queue's leftovers at shutdown
	dropUnmergeable = "unmergeable"       // queue-level batching could not merge the parts
	dropInvalid     = "invalid"           // the queue cannot hold the batch (unencodable, oversize)
)

var (
	errNotStarted = errors.New("sending queue not open: the exporter has not started")
	errQueueFull  = errors.New("sending queue is full")
)

// Sender delivers batches for an exporter: queue → (batch) → retry → timeout → send. With the
// queue on, Consume returns as soon as the batch is queued (for a persistent queue: written to
// the WAL) and consumers deliver it in the background; with it off, Consume delivers (with
// retries) in the caller's goroutine and returns the outcome.
type Sender struct {
	set        component.Settings
	cfg        Config
	send       SendFunc
	log        *slog.Logger
	counters   component.Counters
	throttle   *throttle
	metrics    *metrics
	health     *health
	persistent bool
	perRequest bool   // TimeoutPerRequest
	dir        string // the persistent queue's directory: Directory/<component id>

	// open builds the queue: a memory one from the options, or the WAL (whose options include
	// them) when wal is set. Tests replace it to inject faults.
	open func(opts queue.Options, wal *queue.WALOptions) (queue.Queue, error)
	// q is the queue (nil: none, or a persistent one not yet open). Start opens the WAL while
	// Consume may already be called, hence atomic.
	q atomic.Pointer[queueRef]

	// stopCtx is cancelled when Shutdown begins: a persistent queue's consumers stop taking
	// batches and stop waiting to retry (the WAL keeps what they hold). A memory queue's go on
	// retrying until runCtx ends, since whatever they give up is lost.
	stopCtx  context.Context
	stopNow  context.CancelFunc
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

type queueRef struct{ queue.Queue }

// New builds a Sender. Nothing is sent until Start; a memory queue already takes data, a
// persistent one opens at Start.
func New(set component.Settings, cfg Config, send SendFunc, opts ...Option) (*Sender, error) {
	if send == nil {
		return nil, errors.New("sender: nil send function")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sender{
		set:        set,
		cfg:        cfg,
		send:       send,
		log:        set.Logger,
		counters:   set.Counters,
		throttle:   newThrottle(logEvery),
		metrics:    newMetrics(),
		health:     newHealth(set.ReportHealth, cfg.Retry.UnhealthyAfter),
		persistent: cfg.Queue.Enabled && cfg.Queue.Persistent,
		open:       openQueue,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.counters == nil {
		s.counters = nopCounters{}
	}
	if s.persistent {
		s.dir = filepath.Join(cfg.Queue.Directory, DirName(set.ID))
	}
	for _, o := range opts {
		o(s)
	}
	if cfg.Queue.Enabled && !s.persistent {
		q, err := s.open(s.queueOptions(), nil)
		if err != nil {
			return nil, fmt.Errorf("sender: %w", err)
		}
		s.q.Store(&queueRef{q})
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	return s, nil
}

// DirName is the subdirectory of sending_queue.directory that the exporter id uses, so that
// several exporters can share one directory: "otlp/primary" → "otlp-primary". A component type
// has no '-' and bytes outside [A-Za-z0-9._-] in the name are %-escaped, so distinct ids never
// share a directory.
func DirName(id component.ID) string {
	if id.Name == "" {
		return id.Type
	}
	var b strings.Builder
	b.WriteString(id.Type)
	b.WriteByte('-')
	for i := 0; i < len(id.Name); i++ {
		c := id.Name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Sender) queueOptions() queue.Options {
	qc := s.cfg.Queue
	policy := qc.WhenFull
	if policy == queue.Block && qc.BlockTimeout == 0 {
		// Refuse at once rather than wait; Consume turns the refusal into backpressure.
		policy = queue.DropNewest
	}
	return queue.Options{Sizer: qc.Sizer, Capacity: qc.QueueSize, WhenFull: policy, OnDrop: s.onDrop}
}

func openQueue(opts queue.Options, wal *queue.WALOptions) (queue.Queue, error) {
	if wal == nil {
		return queue.NewMemory(opts), nil
	}
	return queue.OpenWAL(*wal)
}

func (s *Sender) queue() queue.Queue {
	if r := s.q.Load(); r != nil {
		return r.Queue
	}
	return nil
}

type nopCounters struct{}

func (nopCounters) Add(component.Outcome, batch.Signal, int) {}

// Start opens a persistent queue (which replays what an earlier run left), registers the
// sender's metrics and starts the queue consumers.
func (s *Sender) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("sender: start after shutdown")
	}
	if s.started {
		return nil
	}
	if s.persistent {
		q, err := s.open(s.queueOptions(), &queue.WALOptions{
			Options:       s.queueOptions(),
			Dir:           s.dir,
			MaxBytes:      int64(s.cfg.Queue.MaxSizeMiB) << 20,
			Fsync:         s.cfg.Queue.Fsync,
			FsyncInterval: s.cfg.Queue.FsyncInterval,
			Logger:        s.log,
		})
		if err != nil {
			return fmt.Errorf("sender: open persistent queue in %s: %w", s.dir, err)
		}
		s.q.Store(&queueRef{q}) // the WAL logs what it replays
	}
	if err := s.metrics.register(s.set.Registerer, s.queue(), s.cfg.Queue.Sizer, s.persistent); err != nil {
		if s.persistent {
			_ = s.queue().Close()
		}
		return err
	}
	s.started = true
	if q := s.queue(); q != nil {
		for range s.cfg.Queue.NumConsumers {
			s.wg.Add(1)
			go s.consume(q)
		}
	}
	return nil
}

// Consume takes b. With the queue on it returns nil once b is queued (or dropped by a
// drop_oldest/drop_newest policy), backpressure if the queue is full, or a retryable error if
// it is closed or cannot write. With the queue off it delivers b and returns the outcome: nil,
// a *consumererror.Partial, a permanent error, or a retryable one once retries are exhausted.
//
// Acknowledgements: a batch marked EndToEnd keeps its completion handles through the queue and
// the sender holds them until delivery is finished (released with its outcome: nil, partial,
// permanent, or retryable when retries ran out or shutdown cut it short). Any other batch loses
// them on the way in: queued is as acknowledged as it gets (durable mode). From here on, a
// batch with handles is one the sender holds.
func (s *Sender) Consume(ctx context.Context, b *batch.Batch) error {
	if !s.cfg.Queue.Enabled {
		return s.consumeSync(ctx, b)
	}
	held := b.Acks()
	if b.EndToEnd() {
		held.Hold()
	} else {
		held = nil
		b.SetAcks(nil)
	}
	err := s.consumeQueued(ctx, b)
	if err != nil {
		held.Release(err)
	}
	return err
}

func (s *Sender) consumeQueued(ctx context.Context, b *batch.Batch) error {
	q := s.queue()
	if q == nil || s.stopping.Load() {
		// A persistent queue opens at Start, and closes only after its consumers stopped.
		err := errNotStarted
		if s.stopping.Load() {
			err = queue.ErrClosed
		}
		s.metrics.enqueueFailures.WithLabelValues("closed").Inc()
		s.counters.Add(component.Failed, b.Signal(), b.Items())
		return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, err), 0)
	}
	return s.enqueue(ctx, q, b)
}

func (s *Sender) enqueue(ctx context.Context, q queue.Queue, b *batch.Batch) error {
	sig, n := b.Signal(), b.Items() // b belongs to the queue once Put succeeds
	held := b.Acks()
	qc := s.cfg.Queue
	if qc.WhenFull == queue.Block && qc.BlockTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, qc.BlockTimeout)
		defer cancel()
	}
	err := q.Put(ctx, b)
	if err == nil {
		s.health.diskOK()
		return nil
	}
	switch {
	case errors.Is(err, queue.ErrDisk):
		// The WAL could not write. A full disk also wraps ErrFull: push back as for a full
		// queue; any other failure may pass, and the client keeps the data meanwhile.
		s.metrics.enqueueFailures.WithLabelValues("disk").Inc()
		s.counters.Add(component.Failed, sig, n)
		s.health.diskFailed(err)
		s.logThrottled(slog.LevelError, "persistent queue write failed; refusing data", err, sig, n)
		err = fmt.Errorf("exporter %s: %w", s.set.ID, err)
		if errors.Is(err, queue.ErrFull) {
			return consumererror.NewBackpressure(err, QueueFullRetryAfter)
		}
		return consumererror.NewRetryable(err, QueueFullRetryAfter)
	case errors.Is(err, queue.ErrFull):
		s.metrics.enqueueFailures.WithLabelValues("full").Inc()
		s.health.queueFull()
		if qc.WhenFull != queue.Block {
			// The operator chose shedding over backpressure: the client is not asked to retry.
			s.drop(sig, n, dropQueueFull)
			s.logThrottled(slog.LevelWarn, "sending queue full; dropping the newest data (when_full: "+string(qc.WhenFull)+")", err, sig, n)
			// The client is not asked to retry; one waiting end to end hears that it was dropped.
			held.Release(s.errDropped(qc.WhenFull))
			return nil
		}
		s.counters.Add(component.Failed, sig, n)
		s.logThrottled(slog.LevelWarn, "sending queue full; pushing back on the client", err, sig, 0)
		return consumererror.NewBackpressure(fmt.Errorf("exporter %s: %w (queue_size %d %s)", s.set.ID, errQueueFull, qc.QueueSize, qc.Sizer), QueueFullRetryAfter)
	case errors.Is(err, queue.ErrClosed):
		s.metrics.enqueueFailures.WithLabelValues("closed").Inc()
		s.counters.Add(component.Failed, sig, n)
		return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, err), 0)
	default:
		// Not written because of the batch itself (it cannot be encoded, or is larger than a WAL
		// record may be): retrying the same data would fail the same way.
		s.metrics.enqueueFailures.WithLabelValues("invalid").Inc()
		s.drop(sig, n, dropInvalid)
		err = fmt.Errorf("exporter %s: %w", s.set.ID, err)
		s.logThrottled(slog.LevelError, "sending queue refused the data for good; dropping it", err, sig, n)
		return consumererror.NewPermanent(err)
	}
}

// onDrop counts what a drop_oldest queue discarded to make room. The queue may hold its lock
// while calling, so this must not call back into it.
func (s *Sender) onDrop(b *batch.Batch) {
	s.health.queueFull()
	s.drop(b.Signal(), b.Items(), dropOldest)
	b.Acks().Release(s.errDropped(queue.DropOldest))
	s.logThrottled(slog.LevelWarn, "sending queue full; dropped the oldest data (when_full: drop_oldest)", errQueueFull, b.Signal(), b.Items())
}

func (s *Sender) drop(sig batch.Signal, n int, reason string) {
	s.counters.Add(component.Dropped, sig, n)
	s.metrics.dropped.WithLabelValues(sig.String(), reason).Add(float64(n))
}

func (s *Sender) consumeSync(ctx context.Context, b *batch.Batch) error {
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		s.counters.Add(component.Failed, b.Signal(), b.Items())
		return consumererror.NewRetryable(fmt.Errorf("exporter %s: %w", s.set.ID, queue.ErrClosed), 0)
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
		if rejected > 0 {
			s.drop(sig, rejected, dropRejected)
		}
		s.logThrottled(slog.LevelWarn, "backend accepted the data in part", errors.New(p.Message), sig, rejected)
		return true, err
	}
	err = fmt.Errorf("exporter %s: %w", s.set.ID, err)
	if consumererror.IsPermanent(err) {
		s.drop(sig, n, dropPermanent)
		s.logThrottled(slog.LevelError, "backend refused the data for good; dropping it", err, sig, n)
		return true, err
	}
	if queued && s.stopping.Load() {
		s.lose(b)
		if !s.persistent {
			s.logThrottled(slog.LevelError, "exporter shutting down; dropping data it could not send", err, sig, n)
		}
		return false, err
	}
	if queued {
		// Nobody upstream can retry what the queue took: it is lost for good.
		s.drop(sig, n, dropExhausted)
		s.logThrottled(slog.LevelError, "sending failed after retries; dropping data", err, sig, n)
		return true, err
	}
	s.counters.Add(component.Failed, sig, n)
	s.logThrottled(slog.LevelWarn, "sending failed after retries; returning the error upstream", err, sig, n)
	if _, ok := consumererror.RetryAfter(err); !ok {
		err = consumererror.NewRetryable(err, 0)
	}
	return true, err
}

func (s *Sender) logThrottled(level slog.Level, msg string, err error, sig batch.Signal, items int) {
	ok, suppressed := s.throttle.allow(msg + ": " + err.Error())
	if !ok {
		return
	}
	attrs := []any{"error", err.Error(), "signal", sig.String()}
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
		// At shutdown a persistent queue keeps the batch for the next start, so there is no
		// point waiting; anything else would be lost, so it goes on retrying until the grace
		// period (ctx) ends.
		if s.persistent && s.stopping.Load() {
			return fmt.Errorf("%w (not retried: shutting down; kept in the queue)", err)
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
		stop := s.stopCtx.Done()
		if !s.persistent {
			stop = nil // a nil channel never fires: keep waiting, within ctx
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %v)", err, ctx.Err())
		case <-stop:
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: shutting down; kept in the queue)", err)
		}
		s.metrics.retries.WithLabelValues(b.Signal().String()).Inc()
	}
}

// attempt makes one try and records its outcome for metrics and health.
func (s *Sender) attempt(ctx context.Context, b *batch.Batch) error {
	actx := ctx
	if s.cfg.Timeout > 0 && !s.perRequest {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	err := s.send(actx, b)
	if err == nil {
		s.health.sendOK()
		return nil
	}
	reason := "retryable"
	if _, ok := consumererror.AsPartial(err); ok {
		// The backend answered: it is up, whatever it thought of some items.
		s.health.sendOK()
		s.metrics.sendFailures.WithLabelValues(b.Signal().String(), "partial").Inc()
		return err
	}
	switch {
	case consumererror.IsPermanent(err):
		reason = "permanent"
	case ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded),
		ctx.Err() == nil && s.perRequest && errors.Is(err, context.DeadlineExceeded):
		reason = "timeout"
	}
	s.metrics.sendFailures.WithLabelValues(b.Signal().String(), reason).Inc()
	if ctx.Err() == nil { // an attempt cancelled by shutdown or the caller says nothing of the backend
		s.health.sendFailed(err)
	}
	return err
}

// Shutdown stops taking data. A memory queue's consumers then send what it holds, retrying as
// usual, until ctx ends; in-flight sends are cancelled and
// everything left is counted as dropped, and the error says how much was lost. A persistent
// queue's consumers finish the attempt in progress (cancelled when ctx ends) and stop; what is
// left stays in the WAL for the next start, and the count is logged. Safe without Start and
// safe twice.
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
	s.stopNow()
	q := s.queue()
	var errs []error
	closeQueue := func() {
		if err := q.Close(); err != nil {
			errs = append(errs, fmt.Errorf("exporter %s: close sending queue: %w", s.set.ID, err))
		}
	}
	if q != nil && !s.persistent {
		closeQueue() // Put now fails; Get goes on returning what waits, for the consumers to send
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

	if q != nil && !s.persistent {
		s.drain(q)
		if batches := s.lostBatches.Load(); batches > 0 {
			items := s.lostItems.Load()
			s.log.Error("exporter shut down before it could send everything; dropped the rest",
				"batches", batches, "items", items, "grace_period_ended", cut)
			err := fmt.Errorf("exporter %s: dropped %d items in %d batches at shutdown", s.set.ID, items, batches)
			if cut {
				err = fmt.Errorf("%w: %w", err, ctx.Err())
			}
			errs = append(errs, err)
		}
	}
	if q != nil && s.persistent {
		// Closed only now: a WAL's Close waits for every batch handed out to be done, and the
		// consumers have finished with theirs.
		closeQueue()
		if st := q.Stats(); st.Batches > 0 {
			s.log.Warn("persistent queue keeps unsent data for the next start", "dir", s.dir,
				"batches", st.Batches, "items", st.Items, "bytes", st.Bytes, "grace_period_ended", cut)
		} else {
			s.log.Info("persistent queue is empty", "dir", s.dir)
		}
	}
	s.health.close()
	if started {
		s.mu.Lock()
		s.metrics.unregister(s.set.Registerer)
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// drain empties a closed memory queue after the consumers stopped, counting what it held as lost.
func (s *Sender) drain(q queue.Queue) {
	for {
		b, done, ok := q.Get(s.runCtx) // runCtx is cancelled: Get returns only what waits
		if !ok {
			return
		}
		s.lose(b)
		b.Acks().Release(s.errCutShort())
		done(false)
	}
}

// errDropped is what a client waiting end to end hears when a full queue dropped its data by
// policy: permanent, since the operator chose shedding over a retry.
func (s *Sender) errDropped(policy queue.WhenFull) error {
	return consumererror.NewPermanent(fmt.Errorf("exporter %s: dropped: %w (when_full: %s)", s.set.ID, errQueueFull, policy))
}

// errCutShort is what a client waiting end to end hears when shutdown stopped its data's
// delivery: retryable, since a memory queue lost it and a persistent queue keeps it for a later
// start (which the client cannot wait for).
func (s *Sender) errCutShort() error {
	what := "dropped it"
	if s.persistent {
		what = "kept it in the persistent queue for the next start"
	}
	return consumererror.NewRetryable(fmt.Errorf("exporter %s: shut down before delivering the data; %s", s.set.ID, what), 0)
}

// lose records a queued batch that shutdown kept from being delivered. A memory queue's is
// dropped and counted; a persistent queue's stays in the WAL (its done(false) keeps it).
func (s *Sender) lose(b *batch.Batch) {
	if s.persistent {
		return
	}
	s.drop(b.Signal(), b.Items(), dropShutdown)
	s.lostItems.Add(int64(b.Items()))
	s.lostBatches.Add(1)
}
