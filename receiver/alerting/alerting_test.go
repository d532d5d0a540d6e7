package alerting

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

// TestReceivesRuleResults: once started, every evaluation's results reach the pipeline as a
// remote-write batch; after Shutdown none do.
func TestReceivesRuleResults(t *testing.T) {
	ec := engine.NewConfig()
	ec.RuleFiles = []string{"testdata/rules.yaml"}
	ec.Store.Path = t.TempDir()
	eng, err := engine.New(ec, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	sink := &componenttest.Sink{}
	next := map[batch.Signal]component.Consumer{batch.Metrics: sink}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	cfg := NewConfig()
	if _, err := NewFactory().Create(set, cfg, next); err == nil {
		t.Fatal("created without an engine")
	}
	cfg.Attach(eng)
	r, err := NewFactory().Create(set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	if !sink.WaitItems(2, 10*time.Second) {
		t.Fatalf("%d items from the rules within 10s, want 2 evaluations", sink.Items())
	}
	for _, b := range sink.Batches() {
		if !b.IsPromRW() {
			t.Fatal("rule results are not a remote-write batch")
		}
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := sink.Items()
	time.Sleep(400 * time.Millisecond) // several evaluations
	if sink.Items() != n {
		t.Errorf("results still arrive after Shutdown: %d, then %d", n, sink.Items())
	}
}
