package memorylimiter

import (
	"errors"
	"fmt"
	"time"
)

// Config is the memory limiter's configuration, with the OpenTelemetry Collector's key names.
// The limit is set either in MiB or as a percentage of the memory available to the process (the
// cgroup limit, else the machine's memory). The soft limit, where refusing starts, is the limit
// less the spike allowance.
type Config struct {
	// CheckInterval is the time between two samples of the heap. Required.
	CheckInterval time.Duration `yaml:"check_interval"`
	// LimitMiB is the hard limit in MiB.
	LimitMiB uint32 `yaml:"limit_mib"`
	// SpikeLimitMiB is the growth expected between two samples; 0: 20% of LimitMiB.
	SpikeLimitMiB uint32 `yaml:"spike_limit_mib"`
	// LimitPercentage is the hard limit as a percentage of the available memory.
	LimitPercentage uint32 `yaml:"limit_percentage"`
	// SpikeLimitPercentage is the spike allowance as a percentage of the available memory; 0: 20%
	// of the limit.
	SpikeLimitPercentage uint32 `yaml:"spike_limit_percentage"`
}

// NewConfig returns an empty configuration: check_interval and one limit must be set, as in the
// Collector, because no default fits every machine.
func NewConfig() *Config { return &Config{} }

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	if c.CheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("check_interval: must be > 0 (1s is usual), got %s", c.CheckInterval))
	}
	switch {
	case c.LimitMiB == 0 && c.LimitPercentage == 0:
		errs = append(errs, errors.New("limit_mib: set limit_mib or limit_percentage"))
	case c.LimitMiB > 0 && c.LimitPercentage > 0:
		errs = append(errs, fmt.Errorf("limit_percentage: set limit_mib (%d) or limit_percentage (%d), not both",
			c.LimitMiB, c.LimitPercentage))
	case c.LimitMiB > 0:
		if c.SpikeLimitMiB >= c.LimitMiB {
			errs = append(errs, fmt.Errorf("spike_limit_mib: must be < limit_mib (%d), got %d", c.LimitMiB, c.SpikeLimitMiB))
		}
		if c.SpikeLimitPercentage > 0 {
			errs = append(errs, errors.New("spike_limit_percentage: goes with limit_percentage; with limit_mib use spike_limit_mib"))
		}
	default:
		if c.LimitPercentage > 100 {
			errs = append(errs, fmt.Errorf("limit_percentage: must be 1..100, got %d", c.LimitPercentage))
		}
		if c.SpikeLimitPercentage >= c.LimitPercentage {
			errs = append(errs, fmt.Errorf("spike_limit_percentage: must be < limit_percentage (%d), got %d",
				c.LimitPercentage, c.SpikeLimitPercentage))
		}
		if c.SpikeLimitMiB > 0 {
			errs = append(errs, errors.New("spike_limit_mib: goes with limit_mib; with limit_percentage use spike_limit_percentage"))
		}
	}
	return errors.Join(errs...)
}

const mib = 1 << 20

// limits resolves the configured limits to bytes. total is asked for the available memory only
// when the limit is a percentage.
func (c *Config) limits(total func() (uint64, error)) (hard, soft uint64, err error) {
	var spike uint64
	if c.LimitMiB > 0 {
		hard, spike = uint64(c.LimitMiB)*mib, uint64(c.SpikeLimitMiB)*mib
	} else {
		t, err := total()
		if err != nil {
			return 0, 0, fmt.Errorf("limit_percentage needs the available memory (set limit_mib instead): %w", err)
		}
		hard, spike = t/100*uint64(c.LimitPercentage), t/100*uint64(c.SpikeLimitPercentage)
	}
	if spike == 0 {
		spike = hard / 5
	}
	return hard, hard - spike, nil
}
