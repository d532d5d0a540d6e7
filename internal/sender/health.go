package sender

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

// drainedBelow is the fill level under which a queue that was full counts as healthy again. The
// gap to 100% keeps health from flapping while a queue hovers at capacity.
const drainedBelow = 0.9

// health turns the sender's troubles into component health (set.ReportHealth): a full queue, a
// backend that has failed every attempt for longer than unhealthy_after, a WAL that cannot be
// written. Each has its own condition for clearing; the component is degraded while any holds.
// The flags make the common case (nothing wrong) a single atomic load on the hot paths.
type health struct {
	report    func(error)
	threshold time.Duration

	fullFlag, failFlag, diskFlag atomic.Bool

	mu        sync.Mutex
	full      error
	failing   error
	disk      error
	failSince time.Time
	lastErr   error
	timer     *time.Timer
	reported  bool // the last report was a problem
	closed    bool
}

func newHealth(report func(error), threshold time.Duration) *health {
	return &health{report: report, threshold: threshold}
}

// publish reports the joined problems, or clears them. Called with mu held.
func (h *health) publish() {
	if h.closed || h.report == nil {
		return
	}
	err := errors.Join(h.full, h.failing, h.disk)
	if err == nil && !h.reported {
		return
	}
	h.reported = err != nil
	h.report(err)
}

func (h *health) queueFull() {
	if h.fullFlag.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fullFlag.Load() {
		return
	}
	h.fullFlag.Store(true)
	h.full = errors.New("sending queue is full")
	h.publish()
}

// queueProgress clears the full state once the queue has drained below drainedBelow.
func (h *health) queueProgress(q queue.Queue, sizer queue.Sizer) {
	if !h.fullFlag.Load() || fill(q.Stats(), sizer) >= drainedBelow {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fullFlag.Load() {
		h.fullFlag.Store(false)
		h.full = nil
		h.publish()
	}
}

// fill is how full the queue is, from 0 to 1, by its sizer and its byte cap.
func fill(st queue.Stats, sizer queue.Sizer) float64 {
	used := float64(st.Batches)
	switch sizer {
	case queue.SizeItems:
		used = float64(st.Items)
	case queue.SizeBytes:
		used = float64(st.Bytes)
	}
	f := 0.0
	if st.Capacity > 0 {
		f = used / float64(st.Capacity)
	}
	if st.CapacityBytes > 0 {
		f = max(f, float64(st.Bytes)/float64(st.CapacityBytes))
	}
	return f
}

// sendFailed starts (or continues) a run of failed attempts; once it has lasted threshold
// without a success, the component is degraded.
func (h *health) sendFailed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if h.failFlag.Load() || h.threshold <= 0 || h.closed {
		return
	}
	h.failFlag.Store(true)
	since := time.Now()
	h.failSince = since
	h.timer = time.AfterFunc(h.threshold, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failFlag.Load() && h.failSince.Equal(since) {
			h.failing = fmt.Errorf("every send has failed for %s; last error: %v", h.threshold, h.lastErr)
			h.publish()
		}
	})
}

func (h *health) sendOK() {
	if !h.failFlag.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failFlag.Load() {
		return
	}
	h.failFlag.Store(false)
	h.timer.Stop()
	if h.failing != nil {
		h.failing = nil
		h.publish()
	}
}

func (h *health) diskFailed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.diskFlag.Store(true)
	h.disk = fmt.Errorf("persistent queue cannot write: %w", err)
	h.publish()
}

func (h *health) diskOK() {
	if !h.diskFlag.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.diskFlag.Load() {
		h.diskFlag.Store(false)
		h.disk = nil
		h.publish()
	}
}

// close clears what the sender reported and ignores later events: a stopped exporter has no
// health of its own.
func (h *health) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
	}
	h.full, h.failing, h.disk = nil, nil, nil
	h.publish()
	h.closed = true
}
