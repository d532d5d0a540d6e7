package sender

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type counters = componenttest.Counters

type logBuffer = componenttest.LogBuffer

type env struct {
	set    component.Settings
	cnt    *counters
	logs   *logBuffer
	reg    *prometheus.Registry
	health *healthLog
}

// healthLog records what the sender reported through Settings.ReportHealth.
type healthLog struct {
	mu      sync.Mutex
	reports []error
}

func (h *healthLog) report(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, err)
}

// current is the last report: nil when healthy (or never reported).
func (h *healthLog) current() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) == 0 {
		return nil
	}
	return h.reports[len(h.reports)-1]
}

func (h *healthLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reports)
}

func newEnv() *env {
	e := &env{cnt: &counters{}, logs: &logBuffer{}, reg: prometheus.NewRegistry(), health: &healthLog{}}
	e.set = component.Settings{
		ID:           component.ID{Type: "test"},
		Kind:         component.KindExporter,
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Counters:     e.cnt,
		Registerer:   e.reg,
		ReportHealth: e.health.report,
	}
	return e
}

// traces returns a batch of n spans.
func traces(n int) *batch.Batch { return batch.FromTraces(testdata.Traces(1, n, 0)) }

// encodedTraces returns an encoded batch of n spans numbered from first.
func encodedTraces(t testing.TB, n, first int) *batch.Batch {
	t.Helper()
	wire, err := batch.FromTraces(testdata.Traces(1, n, first)).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, wire)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withOpen replaces the queue constructor, to wrap the real queue with faults.
func withOpen(open func(queue.Options, *queue.WALOptions) (queue.Queue, error)) Option {
	return func(s *Sender) { s.open = open }
}

// fastConfig has deterministic backoff: 1s, 2s, 4s, … up to 10s, no jitter, no queue.
func fastConfig() Config {
	c := NewConfig()
	c.Timeout = 0
	c.Retry = RetryConfig{Enabled: true, InitialInterval: time.Second, Multiplier: 2, MaxInterval: 10 * time.Second}
	c.Queue.Enabled = false
	return c
}
