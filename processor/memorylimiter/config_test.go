package memorylimiter

import (
	"errors"
	"strings"
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
	f("otelcol.yaml", &Config{CheckInterval: time.Second, LimitMiB: 512, SpikeLimitMiB: 128})
	f("percentage.yaml", &Config{CheckInterval: 5 * time.Second, LimitPercentage: 80, SpikeLimitPercentage: 15})
	f("empty.bad.yaml", nil, "check_interval: must be > 0", "limit_mib: set limit_mib or limit_percentage")
	f("both-limits.bad.yaml", nil, "limit_percentage: set limit_mib (512) or limit_percentage (80), not both")
	f("spike-too-big.bad.yaml", nil, "spike_limit_mib: must be < limit_mib (512), got 512",
		"spike_limit_percentage: goes with limit_percentage")
	f("percentage-out-of-range.bad.yaml", nil, "check_interval: must be > 0 (1s is usual), got -1s",
		"limit_percentage: must be 1..100, got 150", "spike_limit_percentage: must be < limit_percentage (150), got 160",
		"spike_limit_mib: goes with limit_mib")
}

func TestLimits(t *testing.T) {
	const total = 1000 * mib
	f := func(cfg Config, wantHard, wantSoft uint64) {
		t.Helper()
		hard, soft, err := cfg.limits(func() (uint64, error) { return total, nil })
		if err != nil {
			t.Fatal(err)
		}
		if hard != wantHard || soft != wantSoft {
			t.Errorf("%+v: hard %d soft %d, want %d %d", cfg, hard, soft, wantHard, wantSoft)
		}
	}
	f(Config{LimitMiB: 500}, 500*mib, 400*mib)                                 // spike defaults to 20%
	f(Config{LimitMiB: 500, SpikeLimitMiB: 50}, 500*mib, 450*mib)              // explicit spike
	f(Config{LimitPercentage: 80}, 800*mib, 640*mib)                           // of the total, spike 20% of the limit
	f(Config{LimitPercentage: 80, SpikeLimitPercentage: 30}, 800*mib, 500*mib) // spike of the total

	_, _, err := (&Config{LimitPercentage: 50}).limits(func() (uint64, error) { return 0, errors.New("no /proc") })
	if err == nil || !strings.Contains(err.Error(), "set limit_mib instead") {
		t.Errorf("unknown total: err = %v", err)
	}
	if _, _, err := (&Config{LimitMiB: 1}).limits(func() (uint64, error) { panic("asked for the total") }); err != nil {
		t.Error(err)
	}
}
