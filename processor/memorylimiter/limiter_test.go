package memorylimiter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckProcessor(t, NewFactory(), &Config{CheckInterval: time.Second, LimitMiB: 64 << 10})
	componenttest.CheckProcessor(t, NewFactory(), &Config{CheckInterval: time.Second, LimitPercentage: 90})
}

// fake drives a limiter: heap is what the next sample reads, and a forced GC sets it to afterGC
// (when afterGC is non-zero).
type fake struct {
	heap, afterGC atomic.Uint64
	gcs           atomic.Int64
}

// newFake builds a limiter with hard limit 100 MiB, soft limit 80 MiB, checked every second.
func newFake(t *testing.T, next component.Consumer, gate *gcGate) (*limiter, *fake, *prometheus.Registry) {
	t.Helper()
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	reg := prometheus.NewRegistry()
	set.Registerer = reg
	l := newLimiter(set, &Config{CheckInterval: time.Second}, 100*mib, 80*mib, next)
	f := &fake{}
	l.readHeap = f.heap.Load
	l.gc = func() {
		f.gcs.Add(1)
		if v := f.afterGC.Load(); v != 0 {
			f.heap.Store(v)
		}
	}
	l.gcGate = gate
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	return l, f, reg
}

func traces() *batch.Batch { return batch.FromTraces(testdata.Traces(1, 3, 0)) }

// refused reports whether Consume refused, and checks the refusal is the documented one.
func refused(t *testing.T, l *limiter) bool {
	t.Helper()
	err := l.Consume(context.Background(), traces())
	if err == nil {
		return false
	}
	if !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("refusal does not wrap ErrMemoryLimit: %v", err)
	}
	if after, ok := consumererror.RetryAfter(err); !ok || after != time.Second {
		t.Fatalf("refusal is not retryable after 1s: %v", err)
	}
	if consumererror.IsPermanent(err) {
		t.Fatalf("refusal is permanent: %v", err)
	}
	return true
}

func TestCheckLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		l, f, _ := newFake(t, sink, &gcGate{})
		f.heap.Store(50 * mib)
		if err := l.Start(context.Background(), component.NopHost{}); err != nil {
			t.Fatal(err)
		}
		if refused(t, l) || sink.Items() != 3 {
			t.Fatal("below the soft limit a batch did not pass")
		}

		f.heap.Store(85 * mib) // above soft, below hard
		if refused(t, l) {
			t.Fatal("refused before the next check")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !refused(t, l) {
			t.Fatal("above the soft limit a batch passed")
		}
		if sink.Items() != 6 { // the batch before the check passed; the refused one did not
			t.Errorf("sink holds %d items, want 6: a refused batch reached the next consumer", sink.Items())
		}
		if f.gcs.Load() != 0 {
			t.Errorf("forced %d GCs below the hard limit", f.gcs.Load())
		}

		f.heap.Store(79 * mib)
		time.Sleep(time.Second)
		synctest.Wait()
		if refused(t, l) {
			t.Fatal("back below the soft limit, still refusing")
		}
	})
}

func TestStartSamplesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, f, _ := newFake(t, component.Discard, &gcGate{})
		f.heap.Store(90 * mib)
		if err := l.Start(context.Background(), component.NopHost{}); err != nil {
			t.Fatal(err)
		}
		if !refused(t, l) {
			t.Error("the first batch after Start passed although the heap was above the soft limit")
		}
	})
}

func TestHardLimitForcesGC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, f, _ := newFake(t, component.Discard, &gcGate{})
		f.heap.Store(120 * mib)
		f.afterGC.Store(60 * mib)
		if err := l.Start(context.Background(), component.NopHost{}); err != nil {
			t.Fatal(err)
		}
		if f.gcs.Load() != 1 {
			t.Fatalf("%d GCs above the hard limit, want 1", f.gcs.Load())
		}
		if refused(t, l) {
			t.Error("refusing although the GC brought the heap under the soft limit")
		}

		// A GC that frees too little: refuse, and GC at most once per interval.
		f.afterGC.Store(0)
		f.heap.Store(150 * mib)
		time.Sleep(time.Second)
		synctest.Wait()
		if !refused(t, l) {
			t.Error("above the hard limit after GC, still accepting")
		}
		for range 3 {
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if got := f.gcs.Load(); got != 5 {
			t.Errorf("%d GCs after 4 more checks above the hard limit, want 5 (one per check)", got)
		}
	})
}

// TestGCGateShared checks that limiters of several pipelines force one GC per interval between
// them, not one each.
func TestGCGateShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &gcGate{}
		var total atomic.Int64
		for range 3 {
			l, f, _ := newFake(t, component.Discard, gate)
			f.heap.Store(200 * mib)
			inner := l.gc
			l.gc = func() { total.Add(1); inner() }
			if err := l.Start(context.Background(), component.NopHost{}); err != nil {
				t.Fatal(err)
			}
		}
		if total.Load() != 1 {
			t.Fatalf("%d GCs at start across 3 limiters, want 1", total.Load())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := total.Load(); got < 10 || got > 11 {
			t.Errorf("%d GCs in 10 intervals across 3 limiters, want 10 or 11", got)
		}
	})
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, f, reg := newFake(t, component.Discard, &gcGate{})
		f.heap.Store(90 * mib)
		if err := l.Start(context.Background(), component.NopHost{}); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{
			"vigil_memory_limiter_refusing":         1,
			"vigil_memory_limiter_limit_bytes":      100 * mib,
			"vigil_memory_limiter_soft_limit_bytes": 80 * mib,
			"vigil_memory_limiter_heap_bytes":       90 * mib,
			"vigil_memory_limiter_forced_gc_total":  0,
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != len(want) {
			t.Errorf("gathered %d metrics, want %d", len(mfs), len(want))
		}
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if w, ok := want[mf.GetName()]; !ok || got != w {
				t.Errorf("%s = %v, want %v", mf.GetName(), got, w)
			}
		}
		f.heap.Store(10 * mib)
		time.Sleep(time.Second)
		synctest.Wait()
		if n, err := testutil.GatherAndCount(reg, "vigil_memory_limiter_refusing"); err != nil || n != 1 {
			t.Fatalf("count %d, %v", n, err)
		}
		if err := l.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, _ := testutil.GatherAndCount(reg); n != 0 {
			t.Errorf("%d metrics left registered after Shutdown", n)
		}
	})
}

func TestRealHeap(t *testing.T) {
	// The real reader must see this test's own heap.
	if got := heapObjects()(); got == 0 {
		t.Error("heap reads as 0 bytes")
	}
}

func TestCreate(t *testing.T) {
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	if _, err := NewFactory().Create(set, &struct{}{}, batch.Logs, component.Discard); err == nil {
		t.Error("Create accepted a config of another type")
	}
	p, err := NewFactory().Create(set, &Config{CheckInterval: time.Second, LimitMiB: 10}, batch.Logs, component.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := p.(*limiter)
	if l.hard != 10*mib || l.soft != 8*mib {
		t.Errorf("limits %d/%d, want 10/8 MiB", l.hard/mib, l.soft/mib)
	}
}
