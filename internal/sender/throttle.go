package sender

import (
	"sync"
	"time"
)

// throttle lets one log line per distinct reason through per interval and counts the rest, so a
// backend that rejects every batch for the same reason produces one line a minute, not thousands,
// while a new reason is still logged at once.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

// maxReasons bounds memory when reasons carry varying details (ids, counts).
const (
	maxReasons   = 128
	maxReasonLen = 256
)

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, seen: map[string]*throttled{}}
}

// allow reports whether a line for reason may be logged now, and how many were held back since
// the last one.
func (t *throttle) allow(reason string) (bool, int) {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.seen[reason]
	if !ok {
		if len(t.seen) >= maxReasons {
			// Forget quiet reasons first; if all are recent, start over rather than grow.
			for k, v := range t.seen {
				if now.Sub(v.last) >= t.every {
					delete(t.seen, k)
				}
			}
			if len(t.seen) >= maxReasons {
				clear(t.seen)
			}
		}
		t.seen[reason] = &throttled{last: now}
		return true, 0
	}
	if now.Sub(e.last) < t.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}
