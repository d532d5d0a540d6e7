package batchprocessor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/componenttest"
)

// load decodes a testdata file the way the config loader does: strictly, over the defaults.
func load(t *testing.T, name string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	return cfg, componenttest.DecodeConfig(data, cfg)
}

func TestConfig(t *testing.T) {
	f := func(name string, want *Config, wantErrs ...string) {
		t.Helper()
		got, err := load(t, name)
		for _, w := range wantErrs {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", name, err, w)
			}
		}
		if len(wantErrs) == 0 && err != nil {
			t.Errorf("%s: %v", name, err)
		}
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
