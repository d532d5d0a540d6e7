package sender

import (
	"math/rand/v2"
	"time"
)

// backoff yields the waits between attempts of one batch.
type backoff struct {
	cfg  RetryConfig
	next time.Duration // un-randomized wait for the coming retry
}

func newBackoff(cfg RetryConfig) *backoff { return &backoff{cfg: cfg, next: cfg.InitialInterval} }

// wait returns the next randomized wait and grows the interval for the one after.
func (b *backoff) wait() time.Duration {
	cur := b.next
	if grown := time.Duration(float64(cur) * b.cfg.Multiplier); grown > b.cfg.MaxInterval || grown < cur {
		b.next = b.cfg.MaxInterval // the second test catches overflow
	} else {
		b.next = grown
	}
	// Jitter spreads the retries of many senders that failed together, so a recovering backend
	// is not hit by all of them at the same instant.
	f := b.cfg.RandomizationFactor
	if f == 0 {
		return cur
	}
	delta := f * float64(cur)
	lo := float64(cur) - delta
	return time.Duration(lo + rand.Float64()*(2*delta+1))
}
