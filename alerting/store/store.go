package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vigilhq/vigil/alerting/rulefiles"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/ratelog"
)

// Config is alerting.store.
type Config struct {
	// Path is the directory of the head's WAL (and of blocks, should the head be cut).
	Path string `yaml:"path"`
	// Retention is how far back the rules can look.
	Retention time.Duration `yaml:"retention"`
	// MaxSeries bounds the series held; a new series beyond it is refused and counted.
	MaxSeries int `yaml:"max_series"`
	// Keep adds series selectors to what the rules select (`{job="api"}`), for queries.
	Keep []string `yaml:"keep"`
}

// Defaults for alerting.store.
const (
	DefaultPath      = "data/alerting"
	DefaultRetention = 6 * time.Hour
	DefaultMaxSeries = 200_000
)

// NewConfig returns the defaults.
func NewConfig() Config {
	return Config{Path: DefaultPath, Retention: DefaultRetention, MaxSeries: DefaultMaxSeries}
}

// Validate checks the config; paths are relative to alerting.store.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: must be set (the directory of the store's WAL)"))
	}
	if c.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("retention: must be at least 1m, got %s", c.Retention))
	}
	if c.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series: must be > 0, got %d", c.MaxSeries))
	}
	for i, k := range c.Keep {
		if _, err := rulefiles.Parser.ParseMetricSelector(k); err != nil {
			errs = append(errs, fmt.Errorf("keep[%d]: %q: %w", i, k, err))
		}
	}
	return errors.Join(errs...)
}

// Store is the alerting engine's local store: a tsdb head with its WAL, fed only the series
// the selection picks, at most MaxSeries of them. It is what the rules query and where their
// results (recording rules, ALERTS, ALERTS_FOR_STATE) are written.
type Store struct {
	db        *tsdb.DB
	sel       atomic.Pointer[Selection]
	keep      []string
	max       int
	retention time.Duration
	logger    *slog.Logger
	limitLog  ratelog.Limiter

	mu     sync.Mutex
	series map[uint64]int64 // hash of every series admitted → unix ms it was last appended
	// oldest is at most the least time in series: forgetOld has nothing to drop while it is
	// within the retention, so a full store refuses new series without scanning the map.
	oldest int64

	appended, skipped, refused prometheus.Counter
}

// Open opens (or creates) the store in cfg.Path. sel says which series to keep; cfg.Keep is
// added to it. reg takes the store's metrics and tsdb's own.
func Open(cfg Config, sel *Selection, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("alerting store: %w", err)
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	db, err := tsdb.Open(cfg.Path, logger.With("component", "tsdb"), nil, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("alerting store: open %s: %w", cfg.Path, err)
	}
	s := &Store{
		db:        db,
		keep:      cfg.Keep,
		max:       cfg.MaxSeries,
		logger:    logger,
		retention: cfg.Retention,
		limitLog:  ratelog.Limiter{Every: time.Minute},
		series:    map[uint64]int64{},
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerting_store_samples_appended_total",
			Help: "Samples appended to the alerting store.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerting_store_samples_skipped_total",
			Help: "Samples of series no rule selects (and not in alerting.store.keep): not stored.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerting_store_refused_series_total",
			Help: "Samples of new series refused because the store holds alerting.store.max_series series.",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.appended, s.skipped, s.refused, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_alerting_store_series",
			Help: "Series the alerting store holds in its head.",
		}, func() float64 { return float64(db.Head().NumSeries()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_alerting_store_max_series",
			Help: "alerting.store.max_series.",
		}, func() float64 { return float64(cfg.MaxSeries) }))
	}
	if err := s.SetSelection(sel); err != nil {
		_ = db.Close()
		return nil, err
	}
	// Series the WAL brought back count against the limit.
	s.seedFromHead()
	return s, nil
}

// SetSelection makes the store keep what sel selects (and alerting.store.keep) from now on:
// new rules after a reload. Series already stored stay until the retention drops them.
func (s *Store) SetSelection(sel *Selection) error {
	for _, k := range s.keep {
		if err := sel.AddSelector(k); err != nil {
			return err
		}
	}
	s.sel.Store(sel)
	return nil
}

// seedFromHead counts the series replayed from the WAL, so that a restart does not double the
// limit.
func (s *Store) seedFromHead() {
	q, err := s.db.Querier(0, 1<<62)
	if err != nil {
		return
	}
	defer q.Close()
	now := time.Now().UnixMilli()
	s.oldest = now
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+"))
	for ss.Next() {
		s.series[ss.At().Labels().Hash()] = now
	}
}

// Close closes the store, flushing its WAL.
func (s *Store) Close() error { return s.db.Close() }

// Queryable is what the engine queries.
func (s *Store) Queryable() storage.Queryable { return s.db }

// AppenderV2 returns the appender for the rules' own output (recording rules, ALERTS,
// ALERTS_FOR_STATE): stored without selection, but within max_series like everything else, so
// that a rule producing a hundred thousand series is refused and counted, not held.
func (s *Store) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &FeedAppender{s: s, app: s.db.AppenderV2(ctx), all: true}
}

// Feed returns an appender that stores only the series the selection picks, within
// max_series. Its Commit reports what was appended, skipped and refused through the counters.
func (s *Store) Feed(ctx context.Context) *FeedAppender {
	return &FeedAppender{s: s, app: s.db.AppenderV2(ctx)}
}

// FeedAppender is a storage.AppenderV2 that filters by the store's selection and limit.
// Skipped and refused samples are not errors: they are counted (Skipped, Refused) and logged.
type FeedAppender struct {
	s   *Store
	app storage.AppenderV2
	all bool // no selection: the rules' output

	Appended, Skipped, Refused int
	// Invalid counts samples the head refused (out of order, too old, duplicate).
	Invalid int
}

var _ storage.AppenderV2 = (*FeedAppender)(nil)

// Append implements storage.AppenderV2.
func (a *FeedAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if !a.all && !a.s.sel.Load().Selects(ls) {
		a.Skipped++
		return 0, nil
	}
	if !a.s.admit(ls.Hash(), t) {
		a.Refused++
		a.s.limitLog.Warn(a.s.logger, "alerting store is full: new series refused", "max_series", a.s.max, "series", ls.String())
		return 0, nil
	}
	opts.Exemplars = nil // the rules do not read them
	r, err := a.app.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		if isSampleError(err) {
			a.Invalid++
			return 0, nil
		}
		return r, err
	}
	a.Appended++
	return r, nil
}

// isSampleError tells the head's refusals of one sample (which leave the rest of the batch
// good) from failures of the store.
func isSampleError(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrOutOfBounds) ||
		errors.Is(err, storage.ErrDuplicateSampleForTimestamp) || errors.Is(err, storage.ErrTooOldSample) ||
		errors.Is(err, storage.ErrOutOfOrderST)
}

// Commit implements storage.AppenderV2.
func (a *FeedAppender) Commit() error {
	a.s.appended.Add(float64(a.Appended))
	a.s.skipped.Add(float64(a.Skipped))
	a.s.refused.Add(float64(a.Refused))
	return a.app.Commit()
}

// Rollback implements storage.AppenderV2.
func (a *FeedAppender) Rollback() error { return a.app.Rollback() }

// admit reports whether a sample of the series may be stored: a series already held always, a
// new one while fewer than max are held.
func (s *Store) admit(hash uint64, t int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.series[hash]; ok {
		s.series[hash] = max(s.series[hash], t)
		return true
	}
	if len(s.series) >= s.max {
		s.forgetOld()
		if len(s.series) >= s.max {
			return false
		}
	}
	if len(s.series) == 0 || t < s.oldest {
		s.oldest = t
	}
	s.series[hash] = t
	return true
}

// forgetOld drops the series not appended to within the retention, as the head does (s.mu
// held): they no longer count against the limit.
func (s *Store) forgetOld() {
	cutoff := time.Now().Add(-s.retention).UnixMilli()
	if s.oldest >= cutoff {
		return
	}
	oldest := int64(math.MaxInt64)
	for k, t := range s.series {
		if t < cutoff {
			delete(s.series, k)
			continue
		}
		oldest = min(oldest, t)
	}
	s.oldest = oldest
}

// AppendRW stores the selected series of a remote-write 1.0 body. Only the series selected are
// decoded.
func (s *Store) AppendRW(ctx context.Context, body []byte) (*FeedAppender, error) {
	app := s.Feed(ctx)
	sel := s.sel.Load()
	var (
		sb labels.ScratchBuilder
		ls labels.Labels
		hp prompb.Histogram
		hs [][]byte

		arena []byte
		ends  []int
	)
	sc := promrw.Scanner{Trusted: true}
	err := sc.ScanV1(body, func(sr promrw.SeriesV1) error {
		if !sel.MaySelectName(sr.MetricName()) {
			app.Skipped += sr.Samples + sr.Histograms
			return nil
		}
		// The series' names and values are copied into one string (one allocation) that the
		// labels are cut from.
		arena, ends = arena[:0], ends[:0]
		it := sr.Labels()
		for n, v, ok := it.Next(); ok; n, v, ok = it.Next() {
			arena = append(arena, n...)
			ends = append(ends, len(arena))
			arena = append(arena, v...)
			ends = append(ends, len(arena))
		}
		if err := it.Err(); err != nil {
			return err
		}
		all := string(arena)
		sb.Reset()
		for i, from := 0, 0; i+1 < len(ends); i += 2 {
			sb.Add(all[from:ends[i]], all[ends[i]:ends[i+1]])
			from = ends[i+1]
		}
		sb.Overwrite(&ls)
		if !sel.Selects(ls) {
			app.Skipped += sr.Samples + sr.Histograms
			return nil
		}
		ls := sb.Labels()
		var ref storage.SeriesRef
		// Samples are read in place; only histograms (rare) are decoded with prompb.
		for b := sr.Raw; len(b) > 0; {
			num, _, v, _, n, err := promrw.ReadField(b)
			if err != nil {
				return err
			}
			b = b[n:]
			switch num {
			case 2: // Sample
				value, t, err := readSample(v)
				if err != nil {
					return err
				}
				r, err := app.Append(ref, ls, 0, t, value, nil, nil, storage.AppendV2Options{})
				if err != nil {
					return err
				}
				ref = r
			case 4: // Histogram
				hs = append(hs, v)
			}
		}
		for _, raw := range hs {
			hp.Reset()
			if err := hp.Unmarshal(raw); err != nil {
				return err
			}
			var (
				h  *histogram.Histogram
				fh *histogram.FloatHistogram
			)
			if hp.IsFloatHistogram() {
				fh = hp.ToFloatHistogram()
			} else {
				h = hp.ToIntHistogram()
			}
			r, err := app.Append(ref, ls, 0, hp.Timestamp, 0, h, fh, storage.AppendV2Options{})
			if err != nil {
				return err
			}
			ref = r
		}
		hs = hs[:0]
		return nil
	})
	if err != nil {
		_ = app.Rollback()
		return app, fmt.Errorf("alerting store: %w", err)
	}
	return app, app.Commit()
}

// readSample reads a prometheus.Sample message: value (1, double) and timestamp (2, int64).
func readSample(b []byte) (v float64, t int64, err error) {
	for len(b) > 0 {
		num, _, _, u, n, err := promrw.ReadField(b)
		if err != nil {
			return 0, 0, err
		}
		b = b[n:]
		switch num {
		case 1:
			v = math.Float64frombits(u)
		case 2:
			t = int64(u)
		}
	}
	return v, t, nil
}
