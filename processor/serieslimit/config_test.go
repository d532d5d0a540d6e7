package serieslimit

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
		if want != nil && *got != *want {
			t.Errorf("%s: got %+v, want %+v", name, *got, *want)
		}
	}
	f("minimal.yaml", &Config{MaxSeries: 100000, Window: time.Hour})
	f("full.yaml", &Config{MaxSeries: 50000, Window: 30 * time.Minute, MaxCacheBytes: 128 << 20})
	f("empty.bad.yaml", nil, "max_series: must be > 0, got 0")
	f("bad-values.bad.yaml", nil, "max_series: must be > 0, got -5", "window: must be > 0 (1h is usual), got 0s",
		"max_cache_bytes: must be >= 0")
	f("cache-too-small.bad.yaml", nil,
		"max_cache_bytes: 100000000 bytes cannot hold max_series 10000000 in two generations without forgetting known series; set at least 480000000")
	f("unknown-field.bad.yaml", nil, "field max_hourly_series not found")
}

func TestCacheSize(t *testing.T) {
	f := func(c Config, want int) {
		t.Helper()
		if got := c.genBytes(); got != want {
			t.Errorf("%+v: %d bytes per generation, want %d", c, got, want)
		}
	}
	f(Config{MaxSeries: 1000}, 32<<20)                               // fastcache's minimum
	f(Config{MaxSeries: 10_000_000}, 10_000_000*entryBytes*headroom) // sized from max_series
	f(Config{MaxSeries: 1000, MaxCacheBytes: 256 << 20}, 128<<20)    // split between the two
	f(Config{MaxSeries: 1000, MaxCacheBytes: 1 << 20}, 32<<20)       // rounded up as fastcache does
}
