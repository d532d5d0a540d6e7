package prometheusremotewrite

import (
	"math"
	"sync"
	"time"
)

// resharder picks the number of shards from measurements, in the spirit of Prometheus's queue
// manager: what matters is whether the shards keep up with what comes in. Each interval it
// looks at the fraction of wall time spent sending (utilisation). Sending all the time means the
// exporter is falling behind, so it scales the shard count by utilisation / target; idling most
// of the time means fewer shards (fewer, larger requests) would do. Changes within ±30% of the
// current count are ignored, as Prometheus does, so the count does not flap.
type resharder struct {
	mu       sync.Mutex
	cfg      ShardsConfig
	shards   int
	since    time.Time     // start of the measuring interval
	busy     time.Duration // time spent sending in the interval
	smoothed float64       // utilisation, exponentially smoothed
}

const (
	targetUtilisation = 0.5
	reshardTolerance  = 0.3
)

func newResharder(cfg ShardsConfig, now time.Time) *resharder {
	return &resharder{cfg: cfg, shards: cfg.Min, since: now}
}

func (r *resharder) current() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shards
}

// observeSend records one send of a batch (all its shards, in parallel) and, once an interval
// has passed, reconsiders the shard count. It returns the new count.
func (r *resharder) observeSend(took time.Duration, now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.busy += took
	elapsed := now.Sub(r.since)
	if elapsed < r.cfg.ReshardInterval {
		return r.shards
	}
	u := min(float64(r.busy)/float64(elapsed), 1)
	if r.smoothed == 0 {
		r.smoothed = u
	} else {
		r.smoothed = 0.5*r.smoothed + 0.5*u
	}
	r.since, r.busy = now, 0
	desired := int(math.Ceil(float64(r.shards) * r.smoothed / targetUtilisation))
	desired = min(max(desired, r.cfg.Min), r.cfg.Max)
	lo := float64(r.shards) * (1 - reshardTolerance)
	hi := float64(r.shards) * (1 + reshardTolerance)
	if float64(desired) < lo || float64(desired) > hi || (desired != r.shards && (desired == r.cfg.Min || desired == r.cfg.Max)) {
		r.shards = desired
	}
	return r.shards
}
