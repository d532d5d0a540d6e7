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
	f("otelcol.yaml", &Config{SendBatchSize: 8192, SendBatchMaxSize: 10000, Timeout: 200 * time.Millisecond})
	f("minimal.yaml", &Config{SendBatchSize: 8192, Timeout: time.Second})
	f("max-below-size.bad.yaml", nil,
		"send_batch_max_size: must be 0 (no cap) or ≥ send_batch_size (10000), got 1000",
		"timeout: must be ≥ 0, got -1s")
	f("metadata-keys.bad.yaml", nil, "metadata_keys")
}
