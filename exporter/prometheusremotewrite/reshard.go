package prometheusremotewrite

import (
	"math"
	"sync"
	"time"
)

// resharder picks the number of shards from measurements, as Prometheus's queue manager does:
// the shards needed are the rate at which samples come in times the time one request takes per
// sample (its round trip, divided by its samples). A backend that answers slowly gets more
// shards, so that more requests are in flight; a fast one gets few, with larger requests, since
// more shards would only cut the same work into smaller pieces. Rates are exponentially
// smoothed, 20% headroom is added, and changes within ±30% of the current count are ignored, so
// the count does not flap.
type resharder struct {
	mu     sync.Mutex
	cfg    QueueConfig
	shards int
	since  time.Time // start of the measuring interval

	in              int64         // items that came in during the interval
	sendTime        time.Duration // summed round trips of the requests in the interval
	sent            int64         // items in those requests
	inRate, perItem float64       // smoothed: items/s in, seconds of round trip per item
}

const (
	reshardHeadroom  = 1.2
	reshardTolerance = 0.3
	smoothing        = 0.5 // weight of the newest interval
)

func newResharder(cfg QueueConfig, now time.Time) *resharder {
	return &resharder{cfg: cfg, shards: cfg.MinShards, since: now}
}

func (r *resharder) current() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shards
}

// observeIn records items given to the exporter.
func (r *resharder) observeIn(items int) {
	r.mu.Lock()
	r.in += int64(items)
	r.mu.Unlock()
}

// observeRequest records one request's round trip and size.
func (r *resharder) observeRequest(took time.Duration, items int) {
	r.mu.Lock()
	r.sendTime += took
	r.sent += int64(items)
	r.mu.Unlock()
}

// reshard reconsiders the shard count once an interval has passed and returns the count to use.
func (r *resharder) reshard(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := now.Sub(r.since)
	if elapsed < r.cfg.ReshardInterval {
		return r.shards
	}
	inRate := float64(r.in) / elapsed.Seconds()
	r.inRate = smooth(r.inRate, inRate)
	if r.sent > 0 {
		r.perItem = smooth(r.perItem, r.sendTime.Seconds()/float64(r.sent))
	}
	r.since, r.in, r.sendTime, r.sent = now, 0, 0, 0
	if r.perItem == 0 {
		return r.shards // nothing sent yet: nothing to go by
	}
	desired := int(math.Ceil(r.inRate * r.perItem * reshardHeadroom))
	desired = min(max(desired, r.cfg.MinShards), r.cfg.MaxShards)
	lo := float64(r.shards) * (1 - reshardTolerance)
	hi := float64(r.shards) * (1 + reshardTolerance)
	if float64(desired) < lo || float64(desired) > hi || (desired != r.shards && (desired == r.cfg.MinShards || desired == r.cfg.MaxShards)) {
		r.shards = desired
	}
	return r.shards
}

func smooth(old, v float64) float64 {
	if old == 0 {
		return v
	}
	return (1-smoothing)*old + smoothing*v
}
