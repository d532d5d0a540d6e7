package serieslimit

import (
	"errors"
	"fmt"
	"time"
)

const (
	// entryBytes is what one known series costs in a generation's cache: fastcache's 4-byte
	// length header and the 8-byte hash. The cache's own index (a Go map) is not counted.
	entryBytes = 4 + 8
	// headroom covers the uneven spread of series over the cache's 512 buckets: a full bucket
	// would forget its oldest series, which would then count as new.
	headroom = 2
	// minGenBytes is fastcache's smallest size (512 buckets of one 64 KiB chunk); smaller
	// requests are rounded up to it.
	minGenBytes = 32 << 20
)

// Config is the series limit's configuration.
type Config struct {
	// MaxSeries is the number of distinct series allowed within the window. Required.
	MaxSeries int `yaml:"max_series"`
	// Window is how long a series counts after it was last seen: the set of known series is
	// kept in two generations, rotated every window.
	Window time.Duration `yaml:"window"`
	// MaxCacheBytes bounds the memory of both generations together; 0 sizes them from
	// MaxSeries.
	MaxCacheBytes int `yaml:"max_cache_bytes"`
}

// NewConfig returns the defaults: a one-hour window (as vmagent's -remoteWrite.maxHourlySeries)
// and a cache sized from max_series, which has no default.
func NewConfig() *Config { return &Config{Window: time.Hour} }

// needBytes is the smallest max_cache_bytes that holds max_series in both generations.
func (c *Config) needBytes() int { return 2 * c.MaxSeries * entryBytes * headroom }

// genBytes is the size of one generation's cache.
func (c *Config) genBytes() int {
	if c.MaxCacheBytes > 0 {
		return max(c.MaxCacheBytes/2, minGenBytes)
	}
	return max(c.needBytes()/2, minGenBytes)
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series: must be > 0, got %d", c.MaxSeries))
	} else if c.MaxSeries > 1<<31 {
		errs = append(errs, fmt.Errorf("max_series: must be at most %d, got %d", 1<<31, c.MaxSeries))
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window: must be > 0 (1h is usual), got %s", c.Window))
	}
	switch {
	case c.MaxCacheBytes < 0:
		errs = append(errs, fmt.Errorf("max_cache_bytes: must be >= 0 (0 sizes the cache from max_series), got %d", c.MaxCacheBytes))
	case c.MaxCacheBytes > 0 && c.MaxSeries > 0 && c.MaxSeries <= 1<<31 && c.MaxCacheBytes < c.needBytes():
		errs = append(errs, fmt.Errorf("max_cache_bytes: %d bytes cannot hold max_series %d in two generations without forgetting known series; "+
			"set at least %d, or leave it unset", c.MaxCacheBytes, c.MaxSeries, c.needBytes()))
	}
	return errors.Join(errs...)
}
