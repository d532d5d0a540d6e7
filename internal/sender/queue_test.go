package sender

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/queue"
)

// gate is a SendFunc that blocks each attempt until released or cancelled.
type gate struct {
	release chan struct{}
	mu      sync.Mutex
	sent    int
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) send(ctx context.Context, b *batch.Batch) error {
	select {
	case <-g.release:
		g.mu.Lock()
		g.sent += b.Items()
		g.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) items() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent
}

// sink is a SendFunc that accepts everything and keeps it.
type sink struct {
	mu      sync.Mutex
	batches []*batch.Batch
	times   []time.Time
}

func (k *sink) send(_ context.Context, b *batch.Batch) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.batches = append(k.batches, b)
	k.times = append(k.times, time.Now())
	return nil
}

func (k *sink) got() []*batch.Batch {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*batch.Batch(nil), k.batches...)
}

func (k *sink) at(i int) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.times[i]
}

func (k *sink) items() int {
	n := 0
	for _, b := range k.got() {
		n += b.Items()
	}
	return n
}

// queueConfig is fastConfig with a memory queue of size batches.
func queueConfig(size, consumers int, when queue.WhenFull, blockTimeout time.Duration) Config {
	cfg := fastConfig()
	cfg.Queue.Enabled = true
	cfg.Queue.NumConsumers = consumers
	cfg.Queue.QueueSize = size
	cfg.Queue.WhenFull = when
	cfg.Queue.BlockTimeout = blockTimeout
	return cfg
}

// metric returns the value of a gauge or counter in the registry, summed over the series whose
// labels include every name=value pair of want.
func metric(t *testing.T, e *env, name string, want ...string) (float64, bool) {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		v := 0.0
	series:
		for _, m := range mf.GetMetric() {
			for _, w := range want {
				k, val, _ := strings.Cut(w, "=")
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == val)
				}
				if !found {
					continue series
				}
			}
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return v, true
	}
	return 0, false
}

// TestWhenFull fills a queue of two batches (consumers not yet started) and offers a third of
// 4 items under each policy: what Consume returns, how long it takes, what is counted, what is
// sent once the consumers run, and the queue's health.
func TestWhenFull(t *testing.T) {
	type want struct {
		wait                  time.Duration
		backpressure          bool
		failed, dropped, sent int
		reason                string // dropped_items_total reason
	}
	f := func(name string, when queue.WhenFull, blockTimeout time.Duration, w want) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv()
				k := &sink{}
				s := mustNewStopped(t, e, queueConfig(2, 1, when, blockTimeout), k.send)
				ctx := context.Background()
				for _, n := range []int{1, 2} {
					if err := s.Consume(ctx, traces(n)); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				err := s.Consume(ctx, traces(4))
				if got := time.Since(start); got != w.wait {
					t.Errorf("Consume took %v, want %v", got, w.wait)
				}
				if w.backpressure {
					d, ok := consumererror.RetryAfter(err)
					if !consumererror.IsBackpressure(err) || !ok || d != QueueFullRetryAfter || !strings.Contains(err.Error(), "queue is full") {
						t.Errorf("Consume returned %v, want backpressure after %v", err, QueueFullRetryAfter)
					}
				} else if err != nil {
					t.Errorf("Consume returned %v, want nil (the policy drops)", err)
				}
				if e.health.current() == nil || !strings.Contains(e.health.current().Error(), "queue is full") {
					t.Errorf("health %v, want degraded by a full queue", e.health.current())
				}
				if err := s.Start(ctx); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if got, _ := metric(t, e, "vigil_exporter_enqueue_failures_total", "reason=full"); w.reason != dropOldest && got != 1 {
					t.Errorf("enqueue_failures_total{reason=full} %v, want 1", got)
				}
				if w.reason != "" {
					if got, _ := metric(t, e, "vigil_exporter_dropped_items_total", "reason="+w.reason); got != float64(w.dropped) {
						t.Errorf("dropped_items_total{reason=%s} %v, want %d", w.reason, got, w.dropped)
					}
				}
				if e.health.current() != nil {
					t.Errorf("health still degraded after the queue drained: %v", e.health.current())
				}
				if err := s.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				got := want{wait: w.wait, backpressure: w.backpressure, reason: w.reason,
					failed: e.cnt.Get(component.Failed), dropped: e.cnt.Get(component.Dropped), sent: e.cnt.Get(component.Sent)}
				if got != w || k.items() != w.sent {
					t.Errorf("counted %+v (backend got %d), want %+v", got, k.items(), w)
				}
			})
		})
	}
	f("block waits block_timeout then pushes back", queue.Block, 2*time.Second,
		want{wait: 2 * time.Second, backpressure: true, failed: 4, sent: 3})
	f("block_timeout 0 pushes back at once", queue.Block, 0,
		want{backpressure: true, failed: 4, sent: 3})
	f("drop_newest refuses the new batch", queue.DropNewest, time.Hour,
		want{dropped: 4, sent: 3, reason: dropQueueFull})
	f("drop_oldest discards the first batch", queue.DropOldest, time.Hour,
		want{dropped: 1, sent: 6, reason: dropOldest})
}

// TestBlockWaits: under block, a caller whose context ends first gets backpressure then, and
// one that waits gets in as soon as a consumer makes room.
func TestBlockWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNewStopped(t, e, queueConfig(1, 1, queue.Block, time.Minute), g.send)
		ctx := context.Background()
		_ = s.Consume(ctx, traces(1))

		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		err := s.Consume(short, traces(1))
		if !consumererror.IsBackpressure(err) || time.Since(start) != 2*time.Second {
			t.Fatalf("blocked Consume returned %v after %v, want backpressure after 2s", err, time.Since(start))
		}

		done := make(chan error)
		go func() { done <- s.Consume(ctx, traces(1)) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Consume returned %v before there was room", err)
		default:
		}
		if err := s.Start(ctx); err != nil { // the consumer takes the first batch and blocks in send
			t.Fatal(err)
		}
		synctest.Wait()
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if g.items() != 2 || e.cnt.Get(component.Sent) != 2 || e.cnt.Get(component.Failed) != 1 {
			t.Fatalf("sent %d (counted %d) failed %d, want 2, 2, 1", g.items(), e.cnt.Get(component.Sent), e.cnt.Get(component.Failed))
		}
	})
}

// TestQueuedRetriesExhausted: data the queue took and the backend never accepted is dropped and
// counted once max_elapsed_time passes; nobody upstream could retry it.
func TestQueuedRetriesExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := queueConfig(10, 1, queue.Block, time.Second)
		cfg.Retry.MaxElapsedTime = 5 * time.Second
		sc := &script{answers: []error{errBoom}}
		s := mustNew(t, e, cfg, sc.send)
		_ = s.Consume(context.Background(), traces(3))
		time.Sleep(time.Minute)
		synctest.Wait()
		if sc.attempts() != 3 || e.cnt.Get(component.Dropped) != 3 || e.cnt.Get(component.Failed) != 0 {
			t.Fatalf("attempts %d dropped %d failed %d, want 3, 3, 0", sc.attempts(), e.cnt.Get(component.Dropped), e.cnt.Get(component.Failed))
		}
		if got, _ := metric(t, e, "vigil_exporter_dropped_items_total", "reason="+dropExhausted); got != 3 {
			t.Fatalf("dropped_items_total{reason=retries_exhausted} %v", got)
		}
	})
}

// TestShutdownDrains: what a memory queue held before Shutdown is sent.
func TestShutdownDrains(t *testing.T) {
	e := newEnv()
	k := &sink{}
	s := mustNewStopped(t, e, queueConfig(100, 3, queue.Block, time.Second), k.send)
	ctx := context.Background()
	for range 50 {
		if err := s.Consume(ctx, traces(2)); err != nil { // queued before Start: nothing sends yet
			t.Fatal(err)
		}
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if k.items() != 100 || e.cnt.Get(component.Sent) != 100 {
		t.Fatalf("sent %d, counted %d; want 100", k.items(), e.cnt.Get(component.Sent))
	}
	err := s.Consume(ctx, traces(1))
	if _, ok := consumererror.RetryAfter(err); !ok || !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Consume after Shutdown: %v, want retryable ErrClosed", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownGracePeriod: when Shutdown's context ends, in-flight sends are cancelled and what
// a memory queue still holds is counted as dropped and reported.
func TestShutdownGracePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate() // never released: the backend hangs
		s := mustNew(t, e, queueConfig(10, 2, queue.Block, time.Second), g.send)
		for range 5 {
			_ = s.Consume(context.Background(), traces(3))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := s.Shutdown(ctx)
		if time.Since(start) != 10*time.Second {
			t.Fatalf("Shutdown took %v, want the 10s grace period", time.Since(start))
		}
		if err == nil || !strings.Contains(err.Error(), "dropped 15 items in 5 batches") {
			t.Fatalf("Shutdown returned %v", err)
		}
		if e.cnt.Get(component.Dropped) != 15 || e.cnt.Get(component.Sent) != 0 {
			t.Fatalf("dropped %d sent %d, want 15 and 0", e.cnt.Get(component.Dropped), e.cnt.Get(component.Sent))
		}
		if !strings.Contains(e.logs.String(), "items=15") {
			t.Fatalf("loss not logged:\n%s", e.logs)
		}
	})
}

// TestShutdownKeepsRetryingWithinGrace: a memory queue's batch waiting between retries would be
// lost at shutdown, so it goes on being retried until the grace period ends: delivered if the
// backend recovers in time, dropped and counted if not.
func TestShutdownKeepsRetryingWithinGrace(t *testing.T) {
	f := func(interval, grace time.Duration, wantSent, wantDropped int) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			cfg := queueConfig(10, 1, queue.Block, time.Second)
			cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = interval, interval
			cfg.Retry.RandomizationFactor = 0
			sc := &script{answers: []error{errBoom, nil}}
			s := mustNew(t, e, cfg, sc.send)
			_ = s.Consume(context.Background(), traces(2))
			synctest.Wait() // the consumer now waits to retry
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			start := time.Now()
			err := s.Shutdown(ctx)
			took := time.Since(start)
			if got := e.cnt.Get(component.Sent); got != wantSent || e.cnt.Get(component.Dropped) != wantDropped {
				t.Fatalf("interval %v, grace %v: sent %d dropped %d; want %d and %d (err %v)",
					interval, grace, got, e.cnt.Get(component.Dropped), wantSent, wantDropped, err)
			}
			if (err != nil) != (wantDropped > 0) {
				t.Fatalf("Shutdown error %v with %d dropped", err, wantDropped)
			}
			if took > grace {
				t.Fatalf("Shutdown took %v, past the %v grace period", took, grace)
			}
		})
	}
	f(3*time.Second, 20*time.Second, 2, 0) // the retry fits in the grace period and succeeds
	f(time.Hour, 10*time.Second, 0, 2)     // it does not: dropped when the grace period ends
}

// TestShutdownSync: without a queue, Shutdown waits for deliveries in progress.
func TestShutdownSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNew(t, e, fastConfig(), g.send)
		done := make(chan error)
		go func() { done <- s.Consume(context.Background(), traces(1)) }()
		synctest.Wait()
		shut := make(chan error)
		go func() { shut <- s.Shutdown(context.Background()) }()
		synctest.Wait()
		select {
		case <-shut:
			t.Fatal("Shutdown returned while a send was in progress")
		default:
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-shut; err != nil {
			t.Fatal(err)
		}
		if err := s.Consume(context.Background(), traces(1)); !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("Consume after Shutdown: %v", err)
		}
	})
}

func TestShutdownWithoutStart(t *testing.T) {
	e := newEnv()
	s := mustNewStopped(t, e, queueConfig(10, 1, queue.Block, time.Second), func(context.Context, *batch.Batch) error { return nil })
	_ = s.Consume(context.Background(), traces(3))
	if err := s.Shutdown(context.Background()); err == nil {
		t.Fatal("queued data lost without an error")
	}
	if e.cnt.Get(component.Dropped) != 3 {
		t.Fatalf("dropped %d, want 3", e.cnt.Get(component.Dropped))
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

// faultyQueue fails Put with a disk error while fail is set.
type faultyQueue struct {
	queue.Queue
	mu   sync.Mutex
	fail error
}

func (q *faultyQueue) Put(ctx context.Context, b *batch.Batch) error {
	q.mu.Lock()
	err := q.fail
	q.mu.Unlock()
	if err != nil {
		return err
	}
	return q.Queue.Put(ctx, b)
}

// TestEnqueueErrors: a queue that cannot write refuses with a retryable error (backpressure
// when the disk is full), counts the data as failed and degrades health until a write
// succeeds; a batch the queue cannot hold at all is dropped with a permanent error.
func TestEnqueueErrors(t *testing.T) {
	f := func(name string, putErr error, check func(error) bool, reason string, health bool, failed, dropped int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			var fq *faultyQueue
			open := func(o queue.Options, w *queue.WALOptions) (queue.Queue, error) {
				q, err := openQueue(o, w)
				fq = &faultyQueue{Queue: q, fail: putErr}
				return fq, err
			}
			s := mustNew(t, e, queueConfig(10, 1, queue.Block, time.Second), (&sink{}).send, withOpen(open))
			err := s.Consume(context.Background(), traces(2))
			if !check(err) || !errors.Is(err, putErr) {
				t.Errorf("Consume returned %v", err)
			}
			if e.cnt.Get(component.Failed) != failed || e.cnt.Get(component.Dropped) != dropped {
				t.Errorf("failed %d dropped %d, want %d and %d", e.cnt.Get(component.Failed), e.cnt.Get(component.Dropped), failed, dropped)
			}
			if got, _ := metric(t, e, "vigil_exporter_enqueue_failures_total", "reason="+reason); got != 1 {
				t.Errorf("enqueue_failures_total{reason=%s} %v", reason, got)
			}
			if h := e.health.current(); (h != nil) != health || (health && !strings.Contains(h.Error(), "persistent queue cannot write")) {
				t.Errorf("health %v", h)
			}
			fq.mu.Lock()
			fq.fail = nil
			fq.mu.Unlock()
			if err := s.Consume(context.Background(), traces(2)); err != nil {
				t.Fatal(err)
			}
			if h := e.health.current(); h != nil {
				t.Errorf("health still %v after a successful write", h)
			}
		})
	}
	isRetryable := func(err error) bool {
		_, ok := consumererror.RetryAfter(err)
		return ok && !consumererror.IsBackpressure(err)
	}
	f("I/O error", fmt.Errorf("persistent queue d: %w: write: input/output error", queue.ErrDisk),
		isRetryable, "disk", true, 2, 0)
	f("disk full", fmt.Errorf("persistent queue d: %w (%w): no space left on device", queue.ErrFull, queue.ErrDisk),
		consumererror.IsBackpressure, "disk", true, 2, 0)
	f("batch too large for a record", errors.New("persistent queue d: batch of 2000000000 bytes is larger than a record may be"),
		consumererror.IsPermanent, "invalid", false, 0, 2)
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := queueConfig(7, 1, queue.Block, time.Second)
		cfg.Timeout = time.Second
		cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = time.Second, time.Second
		n := 0
		var mu sync.Mutex
		s := mustNew(t, e, cfg, func(ctx context.Context, _ *batch.Batch) error {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			switch i {
			case 1:
				return errBoom
			case 2:
				<-ctx.Done() // the attempt times out
				return ctx.Err()
			case 3:
				return &consumererror.Partial{Rejected: 1, Message: "bad span"}
			default:
				return consumererror.NewPermanent(errBoom)
			}
		})
		_ = s.Consume(context.Background(), traces(3))
		_ = s.Consume(context.Background(), traces(2))
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"vigil_exporter_queue_capacity", []string{"sizer=requests"}, 7},
			{"vigil_exporter_queue_size", nil, 0},
			{"vigil_exporter_queue_items", nil, 0},
			{"vigil_exporter_queue_bytes", nil, 0},
			{"vigil_exporter_queue_oldest_item_age_seconds", nil, 0},
			{"vigil_exporter_retries_total", []string{"signal=traces"}, 2},
			{"vigil_exporter_send_failures_total", []string{"reason=retryable"}, 1},
			{"vigil_exporter_send_failures_total", []string{"reason=timeout"}, 1},
			{"vigil_exporter_send_failures_total", []string{"reason=partial"}, 1},
			{"vigil_exporter_send_failures_total", []string{"reason=permanent"}, 1},
			{"vigil_exporter_dropped_items_total", []string{"reason=rejected"}, 1},
			{"vigil_exporter_dropped_items_total", []string{"reason=permanent", "signal=traces"}, 2},
			{"vigil_exporter_enqueue_failures_total", []string{"reason=closed"}, 0},
		} {
			if got, ok := metric(t, e, c.name, c.labels...); !ok || got != c.want {
				t.Errorf("%s%v = %v (registered %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
		if _, ok := metric(t, e, "vigil_exporter_wal_segments"); ok {
			t.Error("WAL metrics registered for a memory queue")
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := metric(t, e, "vigil_exporter_queue_capacity"); ok {
			t.Error("metrics still registered after Shutdown")
		}
		// A new sender can register against the same registry.
		s2 := mustNew(t, e, cfg, (&sink{}).send)
		_ = s2.Shutdown(context.Background())
	})
}

func TestOldestAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNew(t, e, queueConfig(7, 1, queue.Block, time.Second), g.send)
		_ = s.Consume(context.Background(), traces(3)) // taken by the consumer, which hangs
		time.Sleep(30 * time.Second)
		_ = s.Consume(context.Background(), traces(2)) // waits
		time.Sleep(90 * time.Second)
		if got, _ := metric(t, e, "vigil_exporter_queue_oldest_item_age_seconds"); got != 90 {
			t.Errorf("oldest age %v, want 90", got)
		}
		if got, _ := metric(t, e, "vigil_exporter_queue_items"); got != 5 {
			t.Errorf("queue_items %v, want 5", got)
		}
		close(g.release)
		_ = s.Shutdown(context.Background())
	})
}

func TestDirName(t *testing.T) {
	f := func(id component.ID, want string) {
		t.Helper()
		if got := DirName(id); got != want {
			t.Errorf("DirName(%v) = %q, want %q", id, got, want)
		}
	}
	f(component.ID{Type: "otlp"}, "otlp")
	f(component.ID{Type: "otlp", Name: "primary"}, "otlp-primary")
	f(component.ID{Type: "otlp", Name: "a_b"}, "otlp-a_b")
	f(component.ID{Type: "otlp_a", Name: "b"}, "otlp_a-b")
	f(component.ID{Type: "otlp", Name: ".."}, "otlp-..")
	f(component.ID{Type: "otlp", Name: "eu:west%1"}, "otlp-eu%3Awest%251")
	f(component.ID{Type: "otlp", Name: "ü"}, "otlp-%C3%BC")
}
