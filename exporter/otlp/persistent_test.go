package otlp

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// TestPersistentZeroLoss: with persistent: true, data acknowledged while the backend is down
// survives a restart of the exporter and reaches the backend, every item exactly once, when it
// comes up. Consume returning nil is the promise being tested.
func TestPersistentZeroLoss(t *testing.T) {
	addr := unusedAddr(t) // down: nothing listens yet
	dir := t.TempDir()
	newCfg := func() *Config {
		cfg := testConfig(addr)
		cfg.Sender.Timeout = time.Second
		cfg.Sender.Retry.MaxElapsedTime = 0 // retry until it works or the exporter stops
		cfg.Sender.Queue.Enabled = true
		cfg.Sender.Queue.NumConsumers = 2
		cfg.Sender.Queue.Persistent = true
		cfg.Sender.Queue.Directory = dir
		return cfg
	}
	next := 0
	consume := func(exp component.Exporter, batches int) {
		t.Helper()
		for i := range batches {
			sig := batch.Signals[i%3]
			b, _ := items(t, sig, 4, next, i%2 == 0)
			if err := exp.Consume(context.Background(), b); err != nil {
				t.Fatalf("Consume while the backend is down: %v", err)
			}
			next += 4
		}
	}

	// First run: the backend is down the whole time; Shutdown leaves everything in the WAL.
	set, cnt, _ := settings()
	exp, err := NewFactory().Create(set, newCfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	consume(exp, 9)
	time.Sleep(50 * time.Millisecond) // some attempts fail
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if cnt.Get(component.Sent) != 0 || cnt.Get(component.Dropped) != 0 {
		t.Fatalf("first run: sent %d dropped %d, want 0 and 0", cnt.Get(component.Sent), cnt.Get(component.Dropped))
	}

	// Second run: still down at first, more data comes in, then the backend starts.
	set2, cnt2, _ := settings()
	exp2 := startExporter(t, set2, newCfg())
	consume(exp2, 6)
	time.Sleep(50 * time.Millisecond)
	be := &backend{}
	startBackendAt(t, be, addr)
	deadline := time.Now().Add(20 * time.Second)
	for cnt2.Get(component.Sent) < next && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := exp2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []int64
	perSignal := map[batch.Signal]int{}
	for _, r := range be.requests() {
		got = append(got, r.seqs...)
		perSignal[r.sig] += len(r.seqs)
	}
	slices.Sort(got)
	if !slices.Equal(got, seqRange(0, next)) || cnt2.Get(component.Sent) != next {
		t.Fatalf("backend got %d items (counted %d), want seq 0..%d exactly once: %v", len(got), cnt2.Get(component.Sent), next-1, got)
	}
	if perSignal[batch.Traces] != 20 || perSignal[batch.Metrics] != 20 || perSignal[batch.Logs] != 20 {
		t.Fatalf("per signal %v", perSignal)
	}
}
