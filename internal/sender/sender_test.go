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

func mustNew(t *testing.T, e *env, cfg Config, send SendFunc, opts ...Option) *Sender {
	t.Helper()
	s := mustNewStopped(t, e, cfg, send, opts...)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// mustNewStopped builds a sender without starting it; Cleanup shuts it down.
func mustNewStopped(t *testing.T, e *env, cfg Config, send SendFunc, opts ...Option) *Sender {
	t.Helper()
	s, err := New(e.set, cfg, send, opts...)
	if err != nil {
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
			if got := e.cnt.Get(wantOutcome); got != 4 {
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
			got := want{sent: e.cnt.Get(component.Sent), failed: e.cnt.Get(component.Failed),
				dropped: e.cnt.Get(component.Dropped), attempts: sc.attempts()}
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
		if e.cnt.Get(component.Dropped) != 6 {
			t.Fatalf("dropped %d, want 6", e.cnt.Get(component.Dropped))
		}
	})
}
