package serieslimit

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/ratelog"
	"github.com/vigilhq/vigil/internal/selftelemetry"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promrw"
)

// logEvery bounds how often the limit is logged: once reached, it is hit by every batch.
const logEvery = 10 * time.Second

// limiter passes series it knows and new series while fewer than max are known, and drops the
// rest.
//
// Known series are the 64-bit hashes of their labels, kept in two fastcache generations: cur
// holds the series seen in the current window, prev those of the window before. Every window
// prev is emptied and the two swap. A series counts against the limit while it is in either
// generation, i.e. from the first time it is seen until one to two windows after the last, and
// a series of prev that shows up again moves into cur without taking a new slot. So established
// series keep their place across rotations, and series that stopped free theirs.
type limiter struct {
	set    component.Settings
	next   component.Consumer
	max    int64
	window time.Duration

	// gens is read without the lock on the fast path (a series already in cur); a miss is
	// re-checked under mu against the current generations, so a stale read only costs time.
	gens atomic.Pointer[generations]
	// rotateAt is when the current window ends (Unix ns): checked without the lock per batch.
	rotateAt atomic.Int64

	mu        sync.Mutex // guards the slow path: admitting series, rotating
	windowEnd time.Time
	inCur     int64        // distinct series in cur
	known     atomic.Int64 // distinct series in cur ∪ prev: what the limit applies to

	droppedSeries prometheus.Counter
	warn          ratelog.Limiter

	regMu      sync.Mutex
	collectors *selftelemetry.Running
}

type generations struct{ cur, prev *fastcache.Cache }

var _ component.Processor = (*limiter)(nil)

func newLimiter(set component.Settings, cfg *Config, next component.Consumer) *limiter {
	l := &limiter{
		set:    set,
		next:   next,
		max:    int64(cfg.MaxSeries),
		window: cfg.Window,
		droppedSeries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_series_limit_dropped_series_total",
			Help: "Series refused because the limit was reached, counted once per batch they were in.",
		}),
		warn: ratelog.Limiter{Every: logEvery},
	}
	l.gens.Store(&generations{cur: fastcache.New(cfg.genBytes()), prev: fastcache.New(cfg.genBytes())})
	l.windowEnd = time.Now().Add(l.window)
	l.rotateAt.Store(l.windowEnd.UnixNano())
	return l
}

// Start registers the metrics. They are registered at Start and removed at Shutdown, so that an
// instance that is built but never run leaves no series behind.
func (l *limiter) Start(context.Context, component.Host) error {
	l.regMu.Lock()
	defer l.regMu.Unlock()
	if l.set.Registerer == nil || l.collectors != nil {
		return nil
	}
	cs := []prometheus.Collector{
		l.droppedSeries,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_series_limit_series",
			Help: "Distinct series known: seen in the current or the previous window.",
		}, func() float64 { return float64(l.series()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_series_limit_max_series",
			Help: "The configured limit on distinct series.",
		}, func() float64 { return float64(l.max) }),
	}
	l.collectors = selftelemetry.RegisterRunning(l.set.Registerer, l.set.Logger, cs...)
	return nil
}

// Shutdown removes the metrics and gives the caches' memory back to fastcache's free list; safe
// without Start and twice.
func (l *limiter) Shutdown(context.Context) error {
	l.regMu.Lock()
	l.collectors.Unregister()
	l.collectors = nil
	l.regMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gens.Load()
	g.cur.Reset()
	g.prev.Reset()
	l.inCur = 0
	l.known.Store(0)
	return nil
}

// maybeRotate starts a new window if the current one is over. After two or more windows
// without data both generations are emptied.
func (l *limiter) maybeRotate(now time.Time) {
	if now.UnixNano() < l.rotateAt.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.windowEnd) {
		return // another call rotated
	}
	g := l.gens.Load()
	passed := 1 + int64(now.Sub(l.windowEnd)/l.window)
	g.prev.Reset()
	if passed >= 2 {
		g.cur.Reset()
		l.known.Store(0)
	} else {
		l.known.Store(l.inCur)
	}
	l.inCur = 0
	l.gens.Store(&generations{cur: g.prev, prev: g.cur})
	l.windowEnd = l.windowEnd.Add(time.Duration(passed) * l.window)
	l.rotateAt.Store(l.windowEnd.UnixNano())
}

// series returns the number of series known now. It rotates first, so that the gauge is right
// while no data flows.
func (l *limiter) series() int64 {
	l.maybeRotate(time.Now())
	return l.known.Load()
}

// admit reports whether the series with this label hash may pass, recording it as seen.
func (l *limiter) admit(hash uint64) bool {
	var key [8]byte
	binary.LittleEndian.PutUint64(key[:], hash)
	if l.gens.Load().cur.Has(key[:]) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gens.Load()
	switch {
	case g.cur.Has(key[:]):
		return true
	case g.prev.Has(key[:]):
		// Known from the previous window: it keeps its slot.
	case l.known.Load() < l.max:
		l.known.Add(1)
	default:
		return false
	}
	g.cur.Set(key[:], nil)
	l.inCur++
	return true
}

// Consume drops the series the limit refuses and passes the rest on.
func (l *limiter) Consume(ctx context.Context, b *batch.Batch) error {
	l.maybeRotate(time.Now())
	if body, ok := b.PromRW(); ok {
		out, dropped, series, example, err := l.limitRW(body)
		if err != nil {
			return consumererror.NewPermanent(fmt.Errorf("%s: %w", l.set.ID, err))
		}
		if out == nil {
			return l.next.Consume(ctx, b)
		}
		l.report(dropped, series, example)
		items := b.Items() - dropped
		if items <= 0 {
			return nil
		}
		nb := batch.FromPromRWTrusted(out, items)
		nb.SetAcks(b.Acks()) // the new body carries the old one's requests
		return l.next.Consume(ctx, nb)
	}
	return l.consumePData(ctx, b)
}

// report counts and logs what a batch lost.
func (l *limiter) report(items, series int, example string) {
	if series == 0 {
		return
	}
	l.droppedSeries.Add(float64(series))
	if items > 0 {
		l.set.Counters.Add(component.Dropped, batch.Metrics, items)
	}
	l.warn.Warn(l.set.Logger, "series limit reached; new series dropped",
		"max_series", l.max, "window", l.window.String(), "series", series, "items", items, "example", example)
}

// limitRW checks each series of a remote-write body. Runs of admitted series (and metadata)
// are copied as byte ranges; refused series are left out. out is nil when every series passed.
func (l *limiter) limitRW(body []byte) (out []byte, dropped, series int, example string, err error) {
	sc := promrw.Scanner{Trusted: true} // receivers validated client bodies; Vigil built the others
	run := 0
	err = sc.ScanV1(body, func(s promrw.SeriesV1) error {
		if l.admit(s.Hash()) {
			return nil
		}
		if out == nil {
			out = make([]byte, 0, len(body))
			example = string(s.MetricName())
		}
		out = append(out, body[run:s.Start]...)
		run = s.End
		dropped += s.Samples + s.Histograms
		series++
		return nil
	})
	if err != nil {
		return nil, 0, 0, "", fmt.Errorf("series limit on remote write: %w", err)
	}
	if out != nil {
		out = append(out, body[run:]...)
	}
	return out, dropped, series, example, nil
}
