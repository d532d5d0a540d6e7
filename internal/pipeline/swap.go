package pipeline

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// route is a consumer whose destination a reload replaces while data flows: a receiver's
// consumer for one signal (over the pipelines it feeds) and a pipeline's tail (over its
// exporters). A swap is one atomic store; a batch already on its way finishes where it went.
type route struct {
	p atomic.Pointer[component.Consumer]
}

func newRoute(c component.Consumer) *route {
	r := &route{}
	r.set(c)
	return r
}

func (r *route) set(c component.Consumer) { r.p.Store(&c) }

func (r *route) Consume(ctx context.Context, b *batch.Batch) error {
	return (*r.p.Load()).Consume(ctx, b)
}

// gate is the consumer in front of an exporter. Replacing the exporter closes the gate: new
// batches wait (as under backpressure) while the batches inside finish, the old instance stops,
// the new one starts, and the gate opens onto it.
type gate struct {
	mu   sync.RWMutex
	next component.Consumer
}

func (g *gate) Consume(ctx context.Context, b *batch.Batch) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.next.Consume(ctx, b)
}

// close waits for the batches inside to finish and holds new ones, until open; it gives up
// (the gate stays open) when ctx ends first.
func (g *gate) close(ctx context.Context) error {
	locked := make(chan struct{})
	go func() { g.mu.Lock(); close(locked) }()
	select {
	case <-locked:
		return nil
	case <-ctx.Done():
		go func() { <-locked; g.mu.Unlock() }()
		return ctx.Err()
	}
}

// open lets batches through to next.
func (g *gate) open(next component.Consumer) {
	g.next = next
	g.mu.Unlock()
}

// tracker is a component's registerer that remembers what it registered, so that a reload can
// take a replaced component's metrics away before its successor registers the same names.
type tracker struct {
	inner prometheus.Registerer
	mu    sync.Mutex
	cs    []prometheus.Collector
}

func newTracker(inner prometheus.Registerer) *tracker { return &tracker{inner: inner} }

func (t *tracker) Register(c prometheus.Collector) error {
	if err := t.inner.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *tracker) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *tracker) Unregister(c prometheus.Collector) bool {
	t.mu.Lock()
	t.cs = slices.DeleteFunc(t.cs, func(x prometheus.Collector) bool { return x == c })
	t.mu.Unlock()
	return t.inner.Unregister(c)
}

// withdraw unregisters everything, keeping the list for restore.
func (t *tracker) withdraw() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		t.inner.Unregister(c)
	}
}

// restore registers again what withdraw took away (a replacement failed).
func (t *tracker) restore() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		_ = t.inner.Register(c)
	}
}
