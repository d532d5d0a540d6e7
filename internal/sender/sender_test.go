package sender

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// script is a SendFunc that answers attempts from a list (the last answer repeats) and records
// when each attempt happened.
type script struct {
	mu      sync.Mutex
	answers []error
	times   []time.Time
}

func (s *script) send(context.Context, *batch.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	i := min(len(s.times)-1, len(s.answers)-1)
	return s.answers[i]
}

func (s *script) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(s.times); i++ {
		g = append(g, s.times[i].Sub(s.times[i-1]))
	}
	return g
}

func (s *script) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

var errBoom = errors.New("connection reset")

func mustNew(t *testing.T, e *env, cfg Config, send SendFunc) *Sender {
	t.Helper()
	s, err := New(e.set, cfg, send)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetryTiming checks the backoff schedule, server-requested delays and max_elapsed_time on
// the fake clock of a synctest bubble.
func TestRetryTiming(t *testing.T) {
	f := func(name string, mutate func(*RetryConfig), answers []error, wantGaps []time.Duration, wantOutcome component.Outcome) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			e := newEnv()
			cfg := fastConfig()
			mutate(&cfg.Retry)
			sc := &script{answers: answers}
			snd := mustNew(t, e, cfg, sc.send)
			err := snd.Consume(context.Background(), traces(4))
			if got := sc.gaps(); !equalDurations(got, wantGaps) {
				t.Errorf("%s: gaps between attempts %v, want %v", name, got, wantGaps)
			}
			if got := e.cnt.get(wantOutcome); got != 4 {
				t.Errorf("%s: %v count %d, want 4 (err %v)", name, wantOutcome, got, err)
			}
			if (err == nil) != (wantOutcome == component.Sent) {
				t.Errorf("%s: Consume returned %v", name, err)
			}
			if got, _ := metric(t, e, "vigil_exporter_retries_total"); got != float64(len(wantGaps)) {
				t.Errorf("%s: retries_total %v, want %d", name, got, len(wantGaps))
			}
		})
	}
	s := time.Second
	none := func(*RetryConfig) {}
	f("exponential then success", none, []error{errBoom, errBoom, errBoom, nil}, []time.Duration{s, 2 * s, 4 * s}, component.Sent)
	f("capped at max_interval", none, []error{errBoom, errBoom, errBoom, errBoom, errBoom, nil},
		[]time.Duration{s, 2 * s, 4 * s, 8 * s, 10 * s}, component.Sent)
	f("server delay longer than backoff wins", none,
		[]error{consumererror.NewRetryable(errBoom, 7*s), nil}, []time.Duration{7 * s}, component.Sent)
	f("server delay shorter than backoff loses", none,
		[]error{consumererror.NewRetryable(errBoom, s/10), nil}, []time.Duration{s}, component.Sent)
	f("server delay capped", none,
		[]error{consumererror.NewRetryable(errBoom, 24*time.Hour), nil}, []time.Duration{maxServerDelay}, component.Sent)
	f("gives up before passing max_elapsed_time",
		func(r *RetryConfig) { r.MaxElapsedTime = 5 * s },
		[]error{errBoom}, []time.Duration{s, 2 * s}, component.Failed) // next wait 4s would end at 7s
	f("server delay beyond max_elapsed_time gives up at once",
		func(r *RetryConfig) { r.MaxElapsedTime = 5 * s },
		[]error{consumererror.NewRetryable(errBoom, time.Minute)}, nil, component.Failed)
	f("permanent is never retried", none, []error{consumererror.NewPermanent(errBoom)}, nil, component.Dropped)
	f("retry disabled", func(r *RetryConfig) { r.Enabled = false }, []error{errBoom}, nil, component.Failed)
}

func TestBackoffJitter(t *testing.T) {
	cfg := RetryConfig{InitialInterval: time.Second, RandomizationFactor: 0.5, Multiplier: 1.5, MaxInterval: 30 * time.Second}
	for range 100 {
		bo := newBackoff(cfg)
		base := float64(time.Second)
		for range 12 {
			w := float64(bo.wait())
			if w < base*0.5 || w > base*1.5+1 {
				t.Fatalf("wait %v outside [%v, %v]", time.Duration(w), time.Duration(base*0.5), time.Duration(base*1.5))
			}
			base = min(base*1.5, float64(cfg.MaxInterval))
		}
	}
}

// TestOutcomes checks what each kind of send result is counted as and what Consume returns.
func TestOutcomes(t *testing.T) {
	type want struct {
		sent, failed, dropped int
		attempts              int
		check                 func(error) bool
	}
	isNil := func(err error) bool { return err == nil }
	isPermanent := consumererror.IsPermanent
	isRetryable := func(err error) bool { _, ok := consumererror.RetryAfter(err); return ok }
	isPartial := func(err error) bool { _, ok := consumererror.AsPartial(err); return ok }
	cases := []struct {
		name   string
		answer error
		want   want
	}{
		{"accepted", nil, want{sent: 10, attempts: 1, check: isNil}},
		{"permanent", consumererror.NewPermanent(errBoom), want{dropped: 10, attempts: 1, check: isPermanent}},
		{"partial", &consumererror.Partial{Rejected: 3, Message: "bad span ids"}, want{sent: 7, dropped: 3, attempts: 1, check: isPartial}},
		{"partial claims too many", &consumererror.Partial{Rejected: 99}, want{sent: 0, dropped: 10, attempts: 1, check: isPartial}},
		{"partial warning only", &consumererror.Partial{Message: "deprecated field"}, want{sent: 10, attempts: 1, check: isPartial}},
		{"plain error becomes retryable", errBoom, want{failed: 10, attempts: 1, check: isRetryable}},
		{"retryable keeps its delay", consumererror.NewRetryable(errBoom, time.Minute), want{failed: 10, attempts: 1,
			check: func(err error) bool { d, ok := consumererror.RetryAfter(err); return ok && d == time.Minute }}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			cfg := fastConfig()
			cfg.Retry.Enabled = false
			sc := &script{answers: []error{c.answer}}
			s := mustNew(t, e, cfg, sc.send)
			err := s.Consume(context.Background(), traces(10))
			if !c.want.check(err) {
				t.Errorf("Consume returned %v", err)
			}
			got := want{sent: e.cnt.get(component.Sent), failed: e.cnt.get(component.Failed),
				dropped: e.cnt.get(component.Dropped), attempts: sc.attempts()}
			if got.sent != c.want.sent || got.failed != c.want.failed || got.dropped != c.want.dropped || got.attempts != c.want.attempts {
				t.Errorf("got sent %d failed %d dropped %d attempts %d; want %d %d %d %d", got.sent, got.failed, got.dropped,
					got.attempts, c.want.sent, c.want.failed, c.want.dropped, c.want.attempts)
			}
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := fastConfig()
		cfg.Timeout = 3 * time.Second
		cfg.Retry.Enabled = false
		start := time.Now()
		s := mustNew(t, e, cfg, func(ctx context.Context, _ *batch.Batch) error {
			<-ctx.Done()
			return ctx.Err()
		})
		err := s.Consume(context.Background(), traces(1))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("attempt lasted %v, want 3s", d)
		}
	})
}

// TestLogThrottle: one line per reason per minute, the count of held-back lines on the next one.
func TestLogThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := fastConfig()
		cfg.Retry.Enabled = false
		perm := consumererror.NewPermanent(errors.New("invalid span id"))
		s := mustNew(t, e, cfg, func(context.Context, *batch.Batch) error { return perm })
		for range 5 {
			_ = s.Consume(context.Background(), traces(1))
		}
		if n := strings.Count(e.logs.String(), "invalid span id"); n != 1 {
			t.Fatalf("logged %d times in a burst, want 1:\n%s", n, e.logs)
		}
		time.Sleep(logEvery)
		_ = s.Consume(context.Background(), traces(1))
		out := e.logs.String()
		if n := strings.Count(out, "invalid span id"); n != 2 {
			t.Fatalf("logged %d times after a minute, want 2:\n%s", n, out)
		}
		if !strings.Contains(out, "suppressed_since_last_log=4") {
			t.Fatalf("second line does not report the 4 held back:\n%s", out)
		}
		if e.cnt.get(component.Dropped) != 6 {
			t.Fatalf("dropped %d, want 6", e.cnt.get(component.Dropped))
		}
	})
}

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

func queueConfig(size, consumers int, block bool) Config {
	cfg := fastConfig()
	cfg.Queue = QueueConfig{Enabled: true, NumConsumers: consumers, QueueSize: size, BlockOnOverflow: block}
	return cfg
}

func TestQueueFullRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNew(t, e, queueConfig(1, 1, false), g.send)
		ctx := context.Background()
		if err := s.Consume(ctx, traces(1)); err != nil { // taken by the consumer, which blocks
			t.Fatal(err)
		}
		synctest.Wait()
		if err := s.Consume(ctx, traces(2)); err != nil { // waits in the queue
			t.Fatal(err)
		}
		err := s.Consume(ctx, traces(4))
		if d, ok := consumererror.RetryAfter(err); !ok || d != QueueFullRetryAfter || !errors.Is(err, ErrFull) {
			t.Fatalf("full queue returned %v, want retryable ErrFull after %v", err, QueueFullRetryAfter)
		}
		if got := e.cnt.get(component.Failed); got != 4 {
			t.Fatalf("failed %d, want 4", got)
		}
		if got, _ := metric(t, e, "vigil_exporter_queue_size"); got != 1 {
			t.Fatalf("queue_size %v, want 1", got)
		}
		close(g.release)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if g.sent != 3 || e.cnt.get(component.Sent) != 3 {
			t.Fatalf("sent %d (counted %d), want 3", g.sent, e.cnt.get(component.Sent))
		}
	})
}

func TestQueueBlockOnOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate()
		s := mustNew(t, e, queueConfig(1, 1, true), g.send)
		ctx := context.Background()
		_ = s.Consume(ctx, traces(1))
		synctest.Wait()
		_ = s.Consume(ctx, traces(1))

		// A caller that gives up gets a retryable error after its deadline.
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		err := s.Consume(short, traces(1))
		if _, ok := consumererror.RetryAfter(err); !ok || time.Since(start) != 2*time.Second {
			t.Fatalf("blocked Consume returned %v after %v", err, time.Since(start))
		}

		// A patient caller gets in once the sender makes room.
		done := make(chan error)
		go func() { done <- s.Consume(ctx, traces(1)) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Consume returned %v before there was room", err)
		default:
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if e.cnt.get(component.Sent) != 3 || e.cnt.get(component.Failed) != 1 {
			t.Fatalf("sent %d failed %d, want 3 and 1", e.cnt.get(component.Sent), e.cnt.get(component.Failed))
		}
	})
}

// TestShutdownDrains: what was queued before Shutdown is sent.
func TestShutdownDrains(t *testing.T) {
	e := newEnv()
	var mu sync.Mutex
	sent := 0
	s, err := New(e.set, queueConfig(100, 3, false), func(_ context.Context, b *batch.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		sent += b.Items()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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
	if sent != 100 || e.cnt.get(component.Sent) != 100 {
		t.Fatalf("sent %d, counted %d; want 100", sent, e.cnt.get(component.Sent))
	}
	if err := s.Consume(ctx, traces(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Consume after Shutdown: %v, want ErrClosed", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownGracePeriod: when Shutdown's context ends, in-flight sends are cancelled and what
// is left is counted as dropped and reported.
func TestShutdownGracePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		g := newGate() // never released: the backend hangs
		s := mustNew(t, e, queueConfig(10, 2, false), g.send)
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
		if e.cnt.get(component.Dropped) != 15 || e.cnt.get(component.Sent) != 0 {
			t.Fatalf("dropped %d sent %d, want 15 and 0", e.cnt.get(component.Dropped), e.cnt.get(component.Sent))
		}
		if !strings.Contains(e.logs.String(), "items=15") {
			t.Fatalf("loss not logged:\n%s", e.logs)
		}
	})
}

// TestShutdownStopsRetrying: a batch waiting between retries is given up at once.
func TestShutdownStopsRetrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := queueConfig(10, 1, false)
		cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = time.Hour, time.Hour
		sc := &script{answers: []error{errBoom}}
		s := mustNew(t, e, cfg, sc.send)
		_ = s.Consume(context.Background(), traces(2))
		synctest.Wait() // the consumer now waits an hour to retry
		start := time.Now()
		err := s.Shutdown(context.Background())
		if time.Since(start) != 0 {
			t.Fatalf("Shutdown waited %v for a retry", time.Since(start))
		}
		if err == nil || sc.attempts() != 1 || e.cnt.get(component.Dropped) != 2 {
			t.Fatalf("err %v, attempts %d, dropped %d; want an error, 1, 2", err, sc.attempts(), e.cnt.get(component.Dropped))
		}
	})
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
		if err := s.Consume(context.Background(), traces(1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Consume after Shutdown: %v", err)
		}
	})
}

func TestShutdownWithoutStart(t *testing.T) {
	e := newEnv()
	s, err := New(e.set, queueConfig(10, 1, false), func(context.Context, *batch.Batch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Consume(context.Background(), traces(3))
	if err := s.Shutdown(context.Background()); err == nil {
		t.Fatal("queued data lost without an error")
	}
	if e.cnt.get(component.Dropped) != 3 {
		t.Fatalf("dropped %d, want 3", e.cnt.get(component.Dropped))
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

// metric returns the value of a gauge or counter in the registry, summed over labels.
func metric(t *testing.T, e *env, name string) (float64, bool) {
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
		for _, m := range mf.GetMetric() {
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return v, true
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := queueConfig(7, 1, false)
		sc := &script{answers: []error{errBoom, nil}}
		s := mustNew(t, e, cfg, sc.send)
		_ = s.Consume(context.Background(), traces(1))
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		for name, want := range map[string]float64{
			"vigil_exporter_queue_capacity": 7,
			"vigil_exporter_queue_size":     0,
			"vigil_exporter_retries_total":  1,
		} {
			if got, ok := metric(t, e, name); !ok || got != want {
				t.Errorf("%s = %v (registered %v), want %v", name, got, ok, want)
			}
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := metric(t, e, "vigil_exporter_queue_capacity"); ok {
			t.Error("metrics still registered after Shutdown")
		}
		// A new sender can register against the same registry.
		s2 := mustNew(t, e, cfg, sc.send)
		_ = s2.Shutdown(context.Background())
	})
}
