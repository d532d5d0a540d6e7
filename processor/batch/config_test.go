package batchprocessor

import (
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/componenttest"
)

// load decodes a testdata file the way the config loader does: strictly, over the defaults.
func load(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := NewConfig()
	return cfg, componenttest.LoadConfig(t, name, cfg)
}

func TestConfig(t *testing.T) {
	f := func(name string, want *Config, wantErrs ...string) {
		t.Helper()
		got, err := load(t, name)
		componenttest.CheckErrors(t, name, err, wantErrs...)
		if want != nil && got != nil && *got != *want {
			t.Errorf("%s: got %+v, want %+v", name, *got, *want)
		}
	}
	f("otelcol.yaml", &Config{SendBatchSize: 8192, SendBatchMaxSize: 10000, Timeout: 200 * time.Millisecond, IdleTimeout: AutoIdle})
	f("minimal.yaml", &Config{SendBatchSize: 8192, Timeout: time.Second, IdleTimeout: AutoIdle})
	f("idle.yaml", &Config{SendBatchSize: 8192, Timeout: 5 * time.Second, IdleTimeout: 0})
	f("max-bytes.yaml", &Config{SendBatchSize: 8192, SendBatchMaxBytes: 4_000_000, Timeout: 200 * time.Millisecond, IdleTimeout: AutoIdle})
	f("max-below-size.bad.yaml", nil,
		"send_batch_max_size: must be 0 (no cap) or ≥ send_batch_size (10000), got 1000",
		"timeout: must be ≥ 0, got -1s",
		"idle_timeout: must be ≥ 0, got -5ms")
	f("metadata-keys.bad.yaml", nil, "metadata_keys")
}

func TestIdleTimeoutBounds(t *testing.T) {
	f := func(timeout, idle, lo, hi time.Duration) {
		t.Helper()
		c := &Config{Timeout: timeout, IdleTimeout: idle}
		if gotLo, gotHi := c.idleBounds(); gotLo != lo || gotHi != hi {
			t.Errorf("timeout %s, idle_timeout %s: bounds [%s, %s], want [%s, %s]", timeout, idle, gotLo, gotHi, lo, hi)
		}
	}
	f(200*time.Millisecond, AutoIdle, MinAutoIdle, MaxAutoIdle)
	f(50*time.Millisecond, AutoIdle, MinAutoIdle, 5*time.Millisecond)
	f(5*time.Millisecond, AutoIdle, 500*time.Microsecond, 500*time.Microsecond)
	f(5*time.Second, 0, 0, 0)
	f(5*time.Second, time.Second, time.Second, time.Second)
	f(0, AutoIdle, 0, 0)
}
