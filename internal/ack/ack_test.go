package ack

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/consumererror"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNothingHeldCompletesAtRelease(t *testing.T) {
	h := New()
	if h.Done() {
		t.Fatal("a new handle is done before its owner released it")
	}
	h.Release(nil)
	if !h.Done() {
		t.Fatal("not done after the only reference was released")
	}
	if err := h.Wait(context.Background()); err != nil {
		t.Fatalf("Wait = %v, want nil", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		h := New()
		h.Release(nil)
		_ = h.Wait(context.Background())
	})
	if allocs > 1 {
		t.Errorf("a handle nobody held costs %.0f allocations, want 1 (the handle)", allocs)
	}
}

// TestHoldsDecideTheOutcome: the owner's Wait returns only when the last hold is released,
// with the outcome the holds released, combined so that a retryable failure anywhere wins.
func TestHoldsDecideTheOutcome(t *testing.T) {
	permanent := consumererror.NewPermanent(errors.New("backend refused"))
	retry := consumererror.NewRetryable(errors.New("queue full"), time.Second)
	f := func(name string, outcomes []error, check func(error) bool) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			h := New()
			s := h.Set()
			for range outcomes {
				s.Hold()
			}
			h.Release(nil)
			got := make(chan error, 1)
			go func() { got <- h.Wait(context.Background()) }()
			for i, err := range outcomes {
				synctest.Wait()
				select {
				case err := <-got:
					t.Fatalf("%s: Wait returned %v with %d holds still out", name, err, len(outcomes)-i)
				default:
				}
				s.Release(err)
			}
			err := <-got
			if !check(err) {
				t.Errorf("%s: outcome %v", name, err)
			}
		})
	}
	f("all fine", []error{nil, nil}, func(err error) bool { return err == nil })
	f("one refused for good", []error{nil, permanent}, consumererror.IsPermanent)
	f("retryable wins over permanent", []error{permanent, retry, nil}, func(err error) bool {
		after, ok := consumererror.RetryAfter(err)
		return ok && after == time.Second && !consumererror.IsPermanent(err) && strings.Contains(err.Error(), "backend refused")
	})
	f("partial stays partial", []error{&consumererror.Partial{Rejected: 3, Message: "bad"}}, func(err error) bool {
		p, ok := consumererror.AsPartial(err)
		return ok && p.Rejected == 3
	})
}

// TestWaitGivesUpWithTheClient: a client that stops waiting is told to retry; the holds that
// remain are released later without harm and the handle then completes.
func TestWaitGivesUpWithTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New()
		h.Set().Hold()
		h.Release(nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := h.Wait(ctx)
		if !errors.Is(err, ErrGaveUp) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want ErrGaveUp and the deadline", err)
		}
		if _, ok := consumererror.RetryAfter(err); !ok {
			t.Fatalf("giving up must be retryable for the client, got %v", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("waited %s, want the client's 1s", d)
		}
		h.Set().Release(nil)
		if !h.Done() {
			t.Error("the last hold's release did not complete the handle")
		}
	})
}

// TestAbandonedHandleNeverCompletes: an owner that never releases (the pipeline refused the
// request with a retryable error, the client resends) leaves a handle that holds and releases
// keep working on and that never completes or calls back.
func TestAbandonedHandleNeverCompletes(t *testing.T) {
	called := false
	h := NewFunc(func(error) { called = true })
	s := h.Set()
	s.Hold()
	s.Release(errors.New("x"))
	s.Hold()
	s.Release(nil)
	if h.Done() || called {
		t.Fatalf("an abandoned handle completed (done=%v, callback=%v)", h.Done(), called)
	}
}

func TestCallbackRunsOnceWithTheOutcome(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []error
	)
	h := NewFunc(func(err error) {
		mu.Lock()
		calls = append(calls, err)
		mu.Unlock()
	})
	s := h.Set()
	const holders = 64
	for range holders {
		s.Hold()
	}
	h.Release(nil)
	refused := consumererror.NewPermanent(errors.New("refused"))
	var wg sync.WaitGroup
	for i := range holders {
		wg.Go(func() {
			if i == 17 {
				s.Release(refused)
				return
			}
			s.Release(nil)
		})
	}
	wg.Wait()
	if len(calls) != 1 || !errors.Is(calls[0], refused) {
		t.Fatalf("callback calls %v, want one with the refusal", calls)
	}
	// A stray release after completion (a bug elsewhere) must not call back again.
	s.Release(nil)
	if len(calls) != 1 {
		t.Fatalf("callback ran %d times", len(calls))
	}
}

// TestUnion: a union keeps every handle as often as it appears, and shares a lone non-empty set.
func TestUnion(t *testing.T) {
	sets := func(s Set) Set { return s }
	Join := func(ss ...Set) Set { return Union(ss, sets) }
	a, b := New(), New()
	if got := Join(nil, Set{}, nil); got != nil {
		t.Errorf("Join of empties = %v, want nil", got)
	}
	one := a.Set()
	if got := Join(nil, one, Set{}); len(got) != 1 || &got[0] != &one[0] {
		t.Errorf("Join with one non-empty set must return that set, got %v", got)
	}
	u := Join(one, b.Set(), one)
	if len(u) != 3 || u[0] != a || u[1] != b || u[2] != a {
		t.Fatalf("Join = %v", u)
	}
	u.Hold() // a twice, b once
	a.Release(nil)
	b.Release(nil)
	u.Release(nil)
	if !a.Done() || !b.Done() {
		t.Errorf("after releasing the union: a done=%v b done=%v", a.Done(), b.Done())
	}
}

func BenchmarkHandle(b *testing.B) {
	b.Run("nothing held", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := New()
			h.Release(nil)
			_ = h.Wait(context.Background())
		}
	})
	b.Run("held and released before the wait", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := New()
			s := h.Set()
			s.Hold()
			s.Release(nil)
			h.Release(nil)
			_ = h.Wait(context.Background())
		}
	})
	b.Run("waited for", func(b *testing.B) {
		b.ReportAllocs()
		hs := make(chan *Handle, 1)
		done := make(chan struct{})
		go func() {
			for h := range hs {
				h.Set().Release(nil)
			}
			close(done)
		}()
		for b.Loop() {
			h := New()
			h.Set().Hold()
			h.Release(nil)
			hs <- h
			_ = h.Wait(context.Background())
		}
		close(hs)
		<-done
	})
}
