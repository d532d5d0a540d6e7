package sender

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counters records outcomes per signal.
type counters struct {
	mu sync.Mutex
	n  map[component.Outcome]int
}

func (c *counters) Add(o component.Outcome, _ batch.Signal, items int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[component.Outcome]int{}
	}
	c.n[o] += items
}

func (c *counters) get(o component.Outcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type env struct {
	set  component.Settings
	cnt  *counters
	logs *logBuffer
	reg  *prometheus.Registry
}

func newEnv() *env {
	e := &env{cnt: &counters{}, logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	e.set = component.Settings{
		ID:         component.ID{Type: "test"},
		Kind:       component.KindExporter,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Counters:   e.cnt,
		Registerer: e.reg,
	}
	return e
}

// traces returns a batch of n spans.
func traces(n int) *batch.Batch { return batch.FromTraces(testdata.Traces(1, n, 0)) }

// fastConfig has deterministic backoff: 1s, 2s, 4s, … up to 10s, no jitter, no queue.
func fastConfig() Config {
	c := NewConfig()
	c.Timeout = 0
	c.Retry = RetryConfig{Enabled: true, InitialInterval: time.Second, Multiplier: 2, MaxInterval: 10 * time.Second}
	c.Queue.Enabled = false
	return c
}
