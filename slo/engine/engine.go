package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/template"
	"go.yaml.in/yaml/v3"

	alerting "github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/slo/counts"
	"github.com/vigilhq/vigil/slo/generate"
	"github.com/vigilhq/vigil/slo/spec"
)

func readFile(path string) ([]spec.SLO, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return spec.ParseFile(path, data)
}

// Engine runs every SLO of the config in the agent: it counts events (spans and logs handed
// to it by the slo exporter, PromQL on the alerting store once a minute), evaluates burn rates,
// hands alerts to the alerting engine's notifiers, writes Sloth's metrics through the alerting
// engine's output, and keeps the counts on disk.
type Engine struct {
	cfg    *Config
	al     *alerting.Engine
	logger *slog.Logger
	slos   []*entry
	now    func() time.Time

	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once

	events     *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	snapErrors prometheus.Counter
	queryErrs  *prometheus.CounterVec
}

type entry struct {
	*SLO
	key   uint64
	spans *spanMatcher
	logs  *logMatcher
	// queries of an events or raw SLI, with {{.window}} as 1m; lastMinute is the last minute
	// they were counted for.
	errQ, totalQ, ratioQ string
	lastMinute           int64
	mu                   sync.Mutex // serialises Evaluate (the loop) and Status (the API)
}

// New builds the SLOs and restores their counts from state_dir. al is the agent's alerting
// engine: SLO alerts go through its notifiers, events SLIs query its store, and the metrics
// go out as its rules' output does.
func New(cfg *Config, al *alerting.Engine, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	return newEngine(cfg, al, logger, reg, time.Now)
}

// newEngine is New on a given clock.
func newEngine(cfg *Config, al *alerting.Engine, logger *slog.Logger, reg prometheus.Registerer, clock func() time.Time) (*Engine, error) {
	if al == nil {
		return nil, errors.New("slos: needs the top-level alerting section (its notifiers send the SLO alerts)")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("slos: state_dir: %w", err)
	}
	e := &Engine{cfg: cfg, al: al, logger: logger, now: clock, stop: make(chan struct{}), done: make(chan struct{})}
	e.initMetrics()
	if reg != nil {
		reg.MustRegister(e.events, e.dropped, e.snapErrors, e.queryErrs)
	}
	opts := Options{Policy: cfg.WindowPolicy, MinEvents: cfg.MinEvents, NoDataAfter: cfg.NoDataAfter, ResendDelay: al.ResendDelay()}
	now := e.now()
	var selects []parser.Expr
	for _, s := range cfg.SLOs() {
		s := s
		slo, err := NewSLO(&s, opts, now)
		if err != nil {
			return nil, err
		}
		// A PromQL SLI counts from the store back to an hour ago on a fresh start.
		en := &entry{SLO: slo, key: sliKey(&s), lastMinute: now.Unix()/60 - 61}
		switch {
		case s.SLI.Spans != nil:
			en.spans, err = newSpanMatcher(s.SLI.Spans)
		case s.SLI.Logs != nil:
			en.logs, err = newLogMatcher(&s.SLI.Logs.Match, &s.SLI.Logs.Bad)
		case s.SLI.Events != nil:
			en.errQ, err = spec.RenderWindow(s.SLI.Events.ErrorQuery, time.Minute)
			if err == nil {
				en.totalQ, err = spec.RenderWindow(s.SLI.Events.TotalQuery, time.Minute)
			}
		case s.SLI.Raw != nil:
			en.ratioQ, err = spec.RenderWindow(s.SLI.Raw.ErrorRatioQuery, time.Minute)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: slo %q: %w", s.Where, s.Name, err)
		}
		for _, q := range []string{en.errQ, en.totalQ, en.ratioQ} {
			if q == "" {
				continue
			}
			x, err := parser.NewParser(parser.Options{}).ParseExpr(q)
			if err != nil {
				return nil, fmt.Errorf("%s: slo %q: %w", s.Where, s.Name, err)
			}
			selects = append(selects, x)
		}
		if e.restore(en) {
			// Counted up to about the snapshot's minute; a minute may be missed, none counted twice.
			en.lastMinute = max(en.lastMinute, en.Ring.Head().Unix()/60-1)
		}
		e.slos = append(e.slos, en)
	}
	if len(selects) > 0 {
		if err := al.SelectAlso(selects...); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// initMetrics makes the engine's own counters.
func (e *Engine) initMetrics() {
	e.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_slo_events_total",
		Help: "Events counted for each SLO, by result (good or bad).",
	}, []string{"slo", "result"})
	e.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_slo_dropped_events_total",
		Help: "Events older than their SLO's window when they arrived: not counted.",
	}, []string{"slo"})
	e.snapErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_slo_snapshot_failures_total",
		Help: "Snapshots of SLO counts that could not be written to state_dir.",
	})
	e.queryErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_slo_query_failures_total",
		Help: "PromQL evaluations of events and raw SLIs that failed.",
	}, []string{"slo"})
}

// sliKey identifies what an SLO's counts mean: its SLI and window. A snapshot of another key
// is not restored.
func sliKey(s *spec.SLO) uint64 {
	b, _ := yaml.Marshal(s.SLI)
	h := fnv.New64a()
	_, _ = h.Write(b)
	_, _ = fmt.Fprint(h, s.Window)
	return h.Sum64()
}

func (e *Engine) snapshotPath(en *entry) string {
	return filepath.Join(e.cfg.StateDir, en.Spec.ID+".counts")
}

// restore reads the SLO's snapshot, if there is one for its SLI; it reports whether it did.
func (e *Engine) restore(en *entry) bool {
	f, err := os.Open(e.snapshotPath(en))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		e.logger.Warn("SLO counts not restored", "slo", en.Spec.ID, "error", err)
		return false
	}
	defer f.Close()
	switch err := en.Ring.ReadSnapshot(f, en.key); {
	case errors.Is(err, counts.ErrKeyChanged):
		e.logger.Warn("SLO counts not restored: the SLI or window changed since they were written", "slo", en.Spec.ID)
	case err != nil:
		e.logger.Warn("SLO counts not restored", "slo", en.Spec.ID, "error", err)
	default:
		head := en.Ring.Head()
		_, total := en.Ring.Sum(head, en.Spec.Window)
		e.logger.Info("SLO counts restored", "slo", en.Spec.ID, "events", total, "as_of", head)
		return true
	}
	return false
}

// snapshot writes every SLO's counts: a temporary file, fsynced, renamed over the last.
func (e *Engine) snapshot() {
	for _, en := range e.slos {
		path := e.snapshotPath(en)
		err := func() error {
			f, err := os.CreateTemp(e.cfg.StateDir, ".counts-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := en.Ring.WriteSnapshot(f, en.key); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), path)
		}()
		if err != nil {
			e.snapErrors.Inc()
			e.logger.Error("SLO counts not written to disk", "slo", en.Spec.ID, "error", err)
		}
	}
}

// Start evaluates every evaluation_interval until Stop.
func (e *Engine) Start() {
	e.started = true
	go func() {
		defer close(e.done)
		t := time.NewTicker(e.cfg.EvaluationInterval)
		defer t.Stop()
		lastSnap := e.now().Unix() / 60
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
			}
			now := e.now()
			e.Tick(context.Background(), now)
			if m := now.Unix() / 60; m != lastSnap {
				e.snapshot()
				lastSnap = m
			}
		}
	}()
	e.logger.Info("SLOs evaluated in the agent", "slos", len(e.slos), "state_dir", e.cfg.StateDir, "window_policy", e.cfg.WindowPolicy)
}

// Stop stops evaluating and writes the counts to disk.
func (e *Engine) Stop() {
	e.once.Do(func() {
		close(e.stop)
		if e.started {
			<-e.done
		}
		e.snapshot()
	})
}

// Tick counts the events SLIs' last complete minutes, evaluates every SLO at now, sends its
// alerts and writes its metrics.
func (e *Engine) Tick(ctx context.Context, now time.Time) {
	app := e.al.Appender(ctx)
	for _, en := range e.slos {
		e.countQueries(ctx, en, now)
		en.mu.Lock()
		_, send, st := en.evaluate(now)
		en.mu.Unlock()
		if len(send) > 0 {
			e.al.Notify(ctx, "slo:"+en.Spec.ID, e.toRuleAlerts(send, now)...)
		}
		e.appendMetrics(app, en, &st, now)
	}
	if err := app.Commit(); err != nil {
		e.logger.Warn("SLO metrics not stored", "error", err)
	}
}

// queryLag is how long after a minute ends its samples are taken to have arrived.
const queryLag = 30 * time.Second

// countQueries evaluates an events or raw SLI for each minute completed since the last (at
// most an hour back), at the minute's end with a 1m window: rate × 60 is the minute's events.
func (e *Engine) countQueries(ctx context.Context, en *entry, now time.Time) {
	if en.errQ == "" && en.ratioQ == "" {
		return
	}
	last := now.Add(-queryLag).Unix()/60 - 1 // the last complete minute
	first := max(en.lastMinute+1, last-59)
	for m := first; m <= last; m++ {
		end := time.Unix((m+1)*60, 0)
		at := time.Unix(m*60+30, 0)
		var bad, total float64
		var err error
		if en.ratioQ != "" {
			var ratio float64
			var n int
			ratio, n, err = e.sum(ctx, en.ratioQ, end)
			if n > 0 && !math.IsNaN(ratio) {
				bad, total = min(max(ratio, 0), 1), 1 // a raw ratio weighs one event per minute
			}
		} else {
			var errs, all float64
			errs, _, err = e.sum(ctx, en.errQ, end)
			if err == nil {
				all, _, err = e.sum(ctx, en.totalQ, end)
			}
			bad, total = errs*60, all*60
		}
		if err != nil {
			e.queryErrs.WithLabelValues(en.Spec.ID).Inc()
			e.logger.Warn("SLO query failed", "slo", en.Spec.ID, "error", err)
			return
		}
		en.lastMinute = m
		if total > 0 {
			e.add(en, now, at, min(bad, total), total)
		}
	}
}

// sum evaluates q at ts and adds up the samples (NaN ones left out).
func (e *Engine) sum(ctx context.Context, q string, ts time.Time) (float64, int, error) {
	v, err := e.al.Query(ctx, q, ts)
	if err != nil {
		return 0, 0, err
	}
	var s float64
	n := 0
	for _, smp := range v {
		if !math.IsNaN(smp.F) {
			s += smp.F
			n++
		}
	}
	return s, n, nil
}

func (e *Engine) add(en *entry, now, at time.Time, bad, total float64) {
	if en.Ring.Add(now, at, bad, total) {
		e.events.WithLabelValues(en.Spec.ID, "bad").Add(bad)
		e.events.WithLabelValues(en.Spec.ID, "good").Add(total - bad)
	} else {
		e.dropped.WithLabelValues(en.Spec.ID).Add(total)
	}
}

// toRuleAlerts turns SLO alerts into the rule manager's, which the notifiers take.
func (e *Engine) toRuleAlerts(as []Alert, now time.Time) []*rules.Alert {
	valid := now.Add(4 * max(e.al.ResendDelay(), e.cfg.EvaluationInterval))
	out := make([]*rules.Alert, 0, len(as))
	for _, a := range as {
		state := rules.StateFiring
		if a.State == Inactive {
			state = rules.StateInactive
		}
		ls := merge(a.Labels, map[string]string{labels.AlertName: a.Name})
		out = append(out, &rules.Alert{
			State:       state,
			Labels:      labels.FromMap(ls),
			Annotations: labels.FromMap(e.expand(a.Annotations, ls, a.Value, now)),
			Value:       a.Value,
			ActiveAt:    a.ActiveAt,
			FiredAt:     a.FiredAt,
			ResolvedAt:  a.ResolvedAt,
			LastSentAt:  now,
			ValidUntil:  valid,
		})
	}
	return out
}

// templateDefs give annotations Prometheus's variables ($labels, $value, ...), as in rules.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// expand renders the annotations that are templates (Sloth's and Prometheus's
// {{$labels.sloth_service}}, {{$value}}, humanize...); one that fails to render is kept as
// written.
func (e *Engine) expand(anns, ls map[string]string, value float64, now time.Time) map[string]string {
	out := make(map[string]string, len(anns))
	for k, v := range anns {
		out[k] = v
		if !strings.Contains(v, "{{") {
			continue
		}
		data := template.AlertTemplateData(ls, nil, "", promql.Sample{F: value})
		x := template.NewTemplateExpander(context.Background(), templateDefs+v, "__slo_"+k, data, model.TimeFromUnixNano(now.UnixNano()), nil, nil, nil)
		if r, err := x.Expand(); err == nil {
			out[k] = r
		} else {
			e.logger.Debug("SLO annotation not rendered", "annotation", k, "error", err)
		}
	}
	return out
}

// appendMetrics writes Sloth's metrics for the SLO at now. Windows without events have no
// error ratio, and no sample (as Sloth's 0/0 gives none that compares).
func (e *Engine) appendMetrics(app storage.AppenderV2, en *entry, st *Status, now time.Time) {
	s := en.Spec
	ts := now.UnixMilli()
	base := merge(s.Labels, map[string]string{generate.LabelID: s.ID, generate.LabelService: s.Service, generate.LabelSLO: s.Name})
	put := func(name string, v float64, extra map[string]string) {
		if math.IsNaN(v) {
			return
		}
		ls := merge(base, extra, map[string]string{model.MetricNameLabel: name})
		if _, err := app.Append(0, labels.FromMap(ls), 0, ts, v, nil, nil, storage.AppendV2Options{}); err != nil {
			e.logger.Debug("SLO metric not stored", "metric", name, "error", err)
		}
	}
	for _, w := range append(st.Windows, st.Period) {
		put(generate.SLIErrorMetric(w.Window), w.Ratio, map[string]string{generate.LabelWindow: model.Duration(w.Window).String()})
	}
	put("slo:objective:ratio", s.ObjectiveRatio(), nil)
	put("slo:error_budget:ratio", s.ErrorBudget(), nil)
	put("slo:time_period:days", s.Window.Hours()/24, nil)
	if len(st.Windows) > 0 {
		put("slo:current_burn_rate:ratio", st.Windows[0].Burn, nil)
	}
	put("slo:period_burn_rate:ratio", st.Period.Burn, nil)
	put("slo:period_error_budget_remaining:ratio", st.BudgetRemaining, nil)
	put("sloth_slo_info", 1, map[string]string{"sloth_mode": "agent", "sloth_objective": fmt.Sprint(s.Objective), "sloth_spec": s.Spec})
}
