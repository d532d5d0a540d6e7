// Package ratelog logs a recurring warning at most once per interval, saying how many times it
// was left out, so that a flood of bad data cannot flood the log.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Limiter is one rate-limited message source. The zero value logs every time; set Every.
type Limiter struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Warn logs msg with args at warning level unless it logged less than Every ago.
func (r *Limiter) Warn(l *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.Every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	skipped := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	l.Warn(msg, append(args, "suppressed_since_last", skipped)...)
}
