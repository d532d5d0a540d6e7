package componenttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

func validate(t *testing.T, cfg component.Config) {
	t.Helper()
	if v, ok := cfg.(component.Validator); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("config does not validate: %v", err)
		}
	}
}

// lifecycle runs the contract on components made by create: Shutdown without Start is safe;
// Start, then Shutdown twice, is safe; and a second instance can start after the first stopped
// (listeners released their ports).
func lifecycle(t *testing.T, create func() (component.Component, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := create()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown without start: %v", err)
	}
	for round := 0; round < 2; round++ {
		c, err := create()
		if err != nil {
			t.Fatalf("create (round %d): %v", round, err)
		}
		if err := c.Start(ctx, component.NopHost{}); err != nil {
			t.Fatalf("start (round %d): %v", round, err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown (round %d): %v", round, err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatalf("second shutdown (round %d): %v", round, err)
		}
	}
}

// CheckReceiver runs the lifecycle contract on a receiver built from f with cfg (nil: the
// factory's default) for every signal the factory supports.
func CheckReceiver(t *testing.T, f component.ReceiverFactory, cfg component.Config) {
	t.Helper()
	if cfg == nil {
		cfg = f.NewConfig()
	}
	validate(t, cfg)
	next := map[batch.Signal]component.Consumer{}
	for _, s := range f.Signals {
		next[s] = component.Discard
	}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: f.Type})
	lifecycle(t, func() (component.Component, error) { return f.Create(set, cfg, next) })
}

// CheckProcessor runs the lifecycle contract on a processor for every signal it supports.
func CheckProcessor(t *testing.T, f component.ProcessorFactory, cfg component.Config) {
	t.Helper()
	if cfg == nil {
		cfg = f.NewConfig()
	}
	validate(t, cfg)
	set := component.NopSettings(component.KindProcessor, component.ID{Type: f.Type})
	for _, s := range f.Signals {
		lifecycle(t, func() (component.Component, error) { return f.Create(set, cfg, s, component.Discard) })
	}
}

// CheckExporter runs the lifecycle contract on an exporter.
func CheckExporter(t *testing.T, f component.ExporterFactory, cfg component.Config) {
	t.Helper()
	if cfg == nil {
		cfg = f.NewConfig()
	}
	validate(t, cfg)
	set := component.NopSettings(component.KindExporter, component.ID{Type: f.Type})
	lifecycle(t, func() (component.Component, error) { return f.Create(set, cfg) })
}

// Sink is a consumer that keeps every batch it receives, for assertions.
type Sink struct {
	mu      sync.Mutex
	batches []*batch.Batch
	items   int
	// Err, if set, is returned from Consume (and the batch is not kept).
	Err error
}

// Consume records b.
func (s *Sink) Consume(_ context.Context, b *batch.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.batches = append(s.batches, b)
	s.items += b.Items()
	return nil
}

// Batches returns what was received so far.
func (s *Sink) Batches() []*batch.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*batch.Batch(nil), s.batches...)
}

// Items returns the number of items received so far.
func (s *Sink) Items() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items
}

// WaitItems polls until at least n items arrived or the timeout passes, and reports success.
func (s *Sink) WaitItems(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s.Items() >= n {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.Items() >= n
}
