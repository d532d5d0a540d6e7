package sender

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/queue"
)

// TestHealthFailingBackend: health degrades once every attempt has failed for unhealthy_after,
// not before, and clears on the next success.
func TestHealthFailingBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := queueConfig(10, 1, queue.Block, time.Second)
		cfg.Retry.InitialInterval, cfg.Retry.MaxInterval, cfg.Retry.MaxElapsedTime = time.Second, time.Second, 0
		cfg.Retry.UnhealthyAfter = 30 * time.Second
		var up atomic.Bool
		s := mustNew(t, e, cfg, func(context.Context, *batch.Batch) error {
			if up.Load() {
				return nil
			}
			return errBoom
		})
		_ = s.Consume(context.Background(), traces(1))
		time.Sleep(30*time.Second - time.Millisecond)
		synctest.Wait()
		if e.health.count() != 0 {
			t.Fatalf("degraded before unhealthy_after: %v", e.health.current())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if h := e.health.current(); h == nil || !strings.Contains(h.Error(), "every send has failed for 30s") || !strings.Contains(h.Error(), "connection reset") {
			t.Fatalf("health %v, want degraded by failing sends", h)
		}
		up.Store(true)
		time.Sleep(time.Second)
		synctest.Wait()
		if h := e.health.current(); h != nil {
			t.Fatalf("health %v after a success, want cleared", h)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHealthIntermittent: failures broken by successes never add up to unhealthy_after.
func TestHealthIntermittent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := fastConfig()
		cfg.Retry.Enabled = false
		cfg.Retry.UnhealthyAfter = 10 * time.Second
		var n atomic.Int64
		s := mustNew(t, e, cfg, func(context.Context, *batch.Batch) error {
			if n.Add(1)%3 == 0 {
				return nil
			}
			return errBoom
		})
		for range 30 {
			_ = s.Consume(context.Background(), traces(1))
			time.Sleep(4 * time.Second)
		}
		if e.health.count() != 0 {
			t.Fatalf("degraded by intermittent failures: %v", e.health.current())
		}
	})
}

// TestHealthOff: unhealthy_after 0 never degrades.
func TestHealthOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv()
		cfg := fastConfig()
		cfg.Retry.Enabled = false
		cfg.Retry.UnhealthyAfter = 0
		s := mustNew(t, e, cfg, func(context.Context, *batch.Batch) error { return errBoom })
		for range 10 {
			_ = s.Consume(context.Background(), traces(1))
			time.Sleep(time.Minute)
		}
		if e.health.count() != 0 {
			t.Fatalf("degraded with unhealthy_after 0: %v", e.health.current())
		}
	})
}

func TestFill(t *testing.T) {
	f := func(st queue.Stats, sizer queue.Sizer, want float64) {
		t.Helper()
		if got := fill(st, sizer); got != want {
			t.Errorf("fill(%+v, %s) = %v, want %v", st, sizer, got, want)
		}
	}
	st := queue.Stats{Batches: 5, Items: 50, Bytes: 500, Capacity: 100}
	f(st, queue.SizeRequests, 0.05)
	f(st, queue.SizeItems, 0.5)
	f(st, queue.SizeBytes, 5)
	st.CapacityBytes = 1000
	f(st, queue.SizeRequests, 0.5)
}
