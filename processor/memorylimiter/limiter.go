package memorylimiter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// ErrMemoryLimit is wrapped by the error Consume returns while refusing data.
var ErrMemoryLimit = errors.New("memory limit reached")

// retryAfter is what refused clients are told to wait: about one check interval, after which
// the limiter may have recovered.
const retryAfter = time.Second

// limiter passes batches on while the heap is below the soft limit and refuses them above it.
// The decision is made by a background loop and read with one atomic load per Consume.
type limiter struct {
	set      component.Settings
	next     component.Consumer
	interval time.Duration
	hard     uint64
	soft     uint64
	// readHeap returns the bytes of live heap objects; gc forces a collection. Both are fields so
	// tests can drive the loop deterministically.
	readHeap func() uint64
	gc       func()
	gcGate   *gcGate

	refusing atomic.Bool
	heap     atomic.Uint64 // last sample
	forcedGC atomic.Uint64

	mu         sync.Mutex
	started    bool
	closed     bool
	stop       chan struct{}
	done       chan struct{}
	collectors *selftelemetry.Running
}

var _ component.Processor = (*limiter)(nil)

// gcGate lets at most one forced GC happen per interval across every limiter instance (one runs
// per pipeline, and the heap they watch is the same).
type gcGate struct {
	mu   sync.Mutex
	last time.Time
}

var processGate = &gcGate{}

func (g *gcGate) allow(every time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !g.last.IsZero() && now.Sub(g.last) < every {
		return false
	}
	g.last = now
	return true
}

func newLimiter(set component.Settings, cfg *Config, hard, soft uint64, next component.Consumer) *limiter {
	return &limiter{
		set:      set,
		next:     next,
		interval: cfg.CheckInterval,
		hard:     hard,
		soft:     soft,
		readHeap: heapObjects(),
		gc:       runtime.GC,
		gcGate:   processGate,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// heapObjects reads the live heap from runtime/metrics, which unlike runtime.ReadMemStats does
// not stop the world.
func heapObjects() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var mu sync.Mutex
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
}

// Start takes a first sample, so the limiter is right from the first batch, registers the
// gauges and runs the check loop.
func (l *limiter) Start(context.Context, component.Host) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return nil
	}
	l.started = true
	l.register()
	l.check()
	go l.loop()
	return nil
}

func (l *limiter) loop() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.check()
		}
	}
}

// check samples the heap and sets the refusing state. Above the hard limit it forces a GC first
// (when the gate allows) and decides on the heap left after it.
func (l *limiter) check() {
	used := l.readHeap()
	if used >= l.hard && l.gcGate.allow(l.interval) {
		l.gc()
		l.forcedGC.Add(1)
		after := l.readHeap()
		l.set.Logger.Warn("heap above the hard limit; forced a garbage collection",
			"heap_mib", used/mib, "after_gc_mib", after/mib, "limit_mib", l.hard/mib)
		used = after
	}
	l.heap.Store(used)
	refuse := used >= l.soft
	switch was := l.refusing.Swap(refuse); {
	case refuse && !was:
		l.set.Logger.Warn("heap above the soft limit; refusing data",
			"heap_mib", used/mib, "soft_limit_mib", l.soft/mib)
	case !refuse && was:
		l.set.Logger.Info("heap back under the soft limit; accepting data",
			"heap_mib", used/mib, "soft_limit_mib", l.soft/mib)
	}
}

// Consume passes b on, or refuses it with a retryable error while the heap is above the soft
// limit. A refused batch is dropped here; the sender keeps its own copy to retry.
func (l *limiter) Consume(ctx context.Context, b *batch.Batch) error {
	if l.refusing.Load() {
		return consumererror.NewRetryable(fmt.Errorf("%s: %w: heap %d MiB ≥ soft limit %d MiB",
			l.set.ID, ErrMemoryLimit, l.heap.Load()/mib, l.soft/mib), retryAfter)
	}
	return l.next.Consume(ctx, b)
}

// Shutdown stops the loop and removes the gauges; safe without Start and twice.
func (l *limiter) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	started := l.started
	l.mu.Unlock()
	if !started {
		return nil
	}
	close(l.stop)
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("%s: stopping the check loop: %w", l.set.ID, ctx.Err())
	}
	l.unregister()
	return nil
}

// register adds the gauges. They are registered at Start and removed at Shutdown, not at
// creation, so that an instance that is built but never run leaves no stale series.
func (l *limiter) register() {
	if l.set.Registerer == nil {
		return
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_memory_limiter_refusing",
			Help: "1 while the heap is above the soft limit and batches are refused, else 0.",
		}, func() float64 { return b2f(l.refusing.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_memory_limiter_limit_bytes",
			Help: "Hard limit: above it a garbage collection is forced.",
		}, func() float64 { return float64(l.hard) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_memory_limiter_soft_limit_bytes",
			Help: "Soft limit (limit less spike allowance): above it batches are refused.",
		}, func() float64 { return float64(l.soft) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_memory_limiter_heap_bytes",
			Help: "Live heap at the last check.",
		}, func() float64 { return float64(l.heap.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vigil_memory_limiter_forced_gc_total",
			Help: "Garbage collections forced because the heap was above the hard limit.",
		}, func() float64 { return float64(l.forcedGC.Load()) }),
	}
	l.collectors = selftelemetry.RegisterRunning(l.set.Registerer, l.set.Logger, cs...)
}

func (l *limiter) unregister() { l.collectors.Unregister() }
