// Package engine runs Prometheus rule files inside the agent: the upstream rule manager and
// PromQL engine over the local store (package store), fed by the `alerting` exporter, with a
// Prometheus-compatible query API (api.go). docs/alerting.md has the design.
package engine

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/alerting/rulefiles"
	"github.com/vigilhq/vigil/alerting/store"
)

// Config is the top-level `alerting` section.
type Config struct {
	// RuleFiles are globs, as Prometheus's rule_files.
	RuleFiles          []string          `yaml:"rule_files"`
	EvaluationInterval time.Duration     `yaml:"evaluation_interval"`
	ExternalLabels     map[string]string `yaml:"external_labels"`
	// ExternalURL is the link alerts carry (their generatorURL) and templates see.
	ExternalURL string       `yaml:"external_url"`
	Store       store.Config `yaml:"store"`
	Query       QueryConfig  `yaml:"query"`
	// OutageTolerance is how long Vigil may have been down for the `for` state of alerts to be
	// restored from the store (Prometheus's --rules.alert.for-outage-tolerance).
	OutageTolerance time.Duration `yaml:"outage_tolerance"`
	// ForGracePeriod is the least time a restored pending alert waits before it fires
	// (Prometheus's --rules.alert.for-grace-period, 10m there). 0 here: a restart neither
	// delays nor forgets a pending alert's age.
	ForGracePeriod time.Duration `yaml:"for_grace_period"`
	// ResendDelay is how often a firing alert is sent again (--rules.alert.resend-delay).
	ResendDelay time.Duration `yaml:"resend_delay"`
	// Alertmanagers and AlertRelabelConfigs are Prometheus's `alerting` block: where alerts
	// are sent (Alertmanager API v2), with the external labels added.
	Alertmanagers       Alertmanagers       `yaml:"alertmanagers"`
	AlertRelabelConfigs AlertRelabelConfigs `yaml:"alert_relabel_configs"`
	// Alertmanager runs an Alertmanager inside the agent, which the rules send to as well.
	Alertmanager EmbeddedConfig `yaml:"alertmanager"`
	// SelfHealth adds Vigil's own rule pack (selfhealth.rules.yaml) on its self-telemetry
	// metrics, which a scrape of the self-telemetry listener feeds.
	SelfHealth bool `yaml:"self_health"`
}

// selfHealthRules is the self-health rule pack.
//
//go:embed selfhealth.rules.yaml
var selfHealthRules []byte

// selfHealthFile is where the pack is written for the rule manager, which loads files.
func (c *Config) selfHealthFile() string {
	return filepath.Join(c.Store.Path, "vigil-self-health.rules.yaml")
}

// QueryConfig bounds PromQL queries, the rules' and the API's.
type QueryConfig struct {
	MaxSamples    int           `yaml:"max_samples"`
	Timeout       time.Duration `yaml:"timeout"`
	LookbackDelta time.Duration `yaml:"lookback_delta"`
}

// Defaults, as Prometheus's where it has one.
const (
	DefaultEvaluationInterval = time.Minute
	DefaultMaxSamples         = 50_000_000
	DefaultQueryTimeout       = 2 * time.Minute
	DefaultLookbackDelta      = 5 * time.Minute
)

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		EvaluationInterval: DefaultEvaluationInterval,
		OutageTolerance:    time.Hour,
		ResendDelay:        time.Minute,
		Alertmanager:       newEmbeddedConfig(),
		Store:              store.NewConfig(),
		Query:              QueryConfig{MaxSamples: DefaultMaxSamples, Timeout: DefaultQueryTimeout, LookbackDelta: DefaultLookbackDelta},
	}
}

// Validate checks the config and the rule files it names (each must parse, as `vigil rules
// check` would have it), and that the store keeps enough history for the rules.
func (c *Config) Validate() error {
	var errs []error
	if c.EvaluationInterval <= 0 {
		errs = append(errs, fmt.Errorf("evaluation_interval: must be > 0, got %s", c.EvaluationInterval))
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("external_url: must be an absolute URL, got %q", c.ExternalURL))
		}
	}
	for k := range c.ExternalLabels {
		if !validLabelName(k) {
			errs = append(errs, fmt.Errorf("external_labels: %q is not a valid label name", k))
		}
	}
	if c.OutageTolerance < 0 || c.ForGracePeriod < 0 || c.ResendDelay < 0 {
		errs = append(errs, fmt.Errorf("outage_tolerance, for_grace_period, resend_delay: must not be negative"))
	}
	if c.Query.MaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("query.max_samples: must be > 0, got %d", c.Query.MaxSamples))
	}
	if c.Query.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("query.timeout: must be > 0, got %s", c.Query.Timeout))
	}
	if c.Query.LookbackDelta <= 0 {
		errs = append(errs, fmt.Errorf("query.lookback_delta: must be > 0, got %s", c.Query.LookbackDelta))
	}
	if err := c.Store.Validate(); err != nil {
		errs = append(errs, prefix("store.", err))
	}
	if err := c.Alertmanager.Validate(); err != nil {
		errs = append(errs, prefix("alertmanager.", err))
	}
	files, err := c.Files()
	if err != nil {
		errs = append(errs, err)
	}
	// No rule files is fine: the section may be there for the SLOs, or for routing alone.
	_, longest, ferrs := selection(files)
	for _, e := range ferrs {
		errs = append(errs, fmt.Errorf("rule_files: %w", e))
	}
	if len(ferrs) == 0 && c.Store.Retention > 0 && c.Store.Retention < 2*longest {
		errs = append(errs, fmt.Errorf("store.retention: %s is less than twice the longest range or `for` the rules use (%s)", c.Store.Retention, longest))
	}
	return errors.Join(errs...)
}

func validLabelName(s string) bool {
	return model.LegacyValidation.IsValidLabelName(s)
}

func prefix(p string, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		out = append(out, fmt.Errorf("%s%w", p, e))
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// SetDirectory makes relative rule_files relative to dir, the config file's directory (as
// Prometheus resolves them).
func (c *Config) SetDirectory(dir string) {
	for i, g := range c.RuleFiles {
		if g != "" && !filepath.IsAbs(g) {
			c.RuleFiles[i] = filepath.Join(dir, g)
		}
	}
	if f := c.Alertmanager.ConfigFile; f != "" && !filepath.IsAbs(f) {
		c.Alertmanager.ConfigFile = filepath.Join(dir, f)
	}
}

// Files expands the rule_files globs, sorted and without duplicates. A glob that matches
// nothing is not an error (as in Prometheus), but a malformed one is.
func (c *Config) Files() ([]string, error) {
	var files []string
	for _, g := range c.RuleFiles {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("rule_files: %q: %w", g, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// selection parses the files and returns what their expressions select and the longest range,
// subquery range or `for` they use.
func selection(files []string) (*store.Selection, time.Duration, []error) {
	sel := &store.Selection{}
	var longest time.Duration
	errs := store.WalkRules(files, func(r rulefmt.Rule, e parser.Expr) {
		sel.AddParsed(e)
		longest = max(longest, time.Duration(r.For), time.Duration(r.KeepFiringFor))
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.MatrixSelector:
				longest = max(longest, n.Range)
			case *parser.SubqueryExpr:
				longest = max(longest, n.Range)
			}
			return nil
		})
	})
	return sel, longest, errs
}

// Engine is the rule manager, its PromQL engine and the store, for one agent.
type Engine struct {
	cfg    *Config
	logger *slog.Logger
	files  []string
	store  *store.Store
	promql *promql.Engine
	mgr    *rules.Manager
	extURL *url.URL

	cancel  context.CancelFunc
	ams     *alertmanagers // nil without alerting.alertmanagers and alerting.alertmanager
	emb     *embedded      // nil without alerting.alertmanager
	running sync.WaitGroup
	stopped sync.Once
	notify  NotifyFunc
	out     outputs

	logged alertLog // what logAlerts has said, so that resends are not logged again
	// notifyAll is what the rule manager notifies with; Notify hands other alerts (the SLOs')
	// to it too.
	notifyAll NotifyFunc
	// extra are expressions besides the rules' whose series the store keeps (the SLOs').
	extra []parser.Expr

	reloadMu   sync.Mutex // one reload at a time (SIGHUP and POST /-/reload)
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
}

// NotifyFunc receives the alerts to send after each evaluation (rules.NotifyFunc).
type NotifyFunc = rules.NotifyFunc

// New opens the store and loads nothing yet: Start loads the rule files and evaluates them.
// notify may be nil, for alerts that are only logged and served by the API.
func New(cfg *Config, logger *slog.Logger, reg prometheus.Registerer, notify NotifyFunc) (*Engine, error) {
	files, err := cfg.Files()
	if err != nil {
		return nil, err
	}
	if cfg.SelfHealth {
		if err := os.MkdirAll(cfg.Store.Path, 0o750); err != nil {
			return nil, fmt.Errorf("alerting: %w", err)
		}
		if err := os.WriteFile(cfg.selfHealthFile(), selfHealthRules, 0o640); err != nil {
			return nil, fmt.Errorf("alerting: self-health rules: %w", err)
		}
		files = append(files, cfg.selfHealthFile())
	}
	sel, _, errs := selection(files)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if sel.SelectsEverything() {
		logger.Warn("a rule selects every series ({__name__=~\".+\"}): the alerting store keeps everything it is fed, up to max_series")
	}
	st, err := store.Open(cfg.Store, sel, logger, reg)
	if err != nil {
		return nil, err
	}
	extURL, _ := url.Parse(cfg.ExternalURL)
	if cfg.ExternalURL == "" {
		extURL = &url.URL{Scheme: "http", Host: "localhost"}
	}
	e := &Engine{cfg: cfg, logger: logger, files: files, store: st, extURL: extURL, notify: notify,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerting_reloads_total",
			Help: "Reloads of the rule files and the in-agent Alertmanager configuration (SIGHUP), by result.",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_alerting_last_reload_successful",
			Help: "1 if the last reload of the rule files and Alertmanager configuration succeeded (or none was asked for), 0 if it failed and the previous ones still run.",
		}),
	}
	e.lastReload.Set(1)
	if reg != nil {
		reg.MustRegister(e.reloads, e.lastReload)
	}
	e.promql = promql.NewEngine(promql.EngineOpts{
		Logger:               logger.With("component", "promql"),
		Reg:                  reg,
		MaxSamples:           cfg.Query.MaxSamples,
		Timeout:              cfg.Query.Timeout,
		LookbackDelta:        cfg.Query.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               rulefiles.Parser,
		// A subquery without a step ("x[5m:]") steps at the evaluation interval, as in
		// Prometheus. Without this function the engine dereferences nil on such a query.
		NoStepSubqueryIntervalFn: func(int64) int64 { return cfg.EvaluationInterval.Milliseconds() },
	})
	if notify == nil {
		notify = e.logAlerts
		var sends []rules.NotifyFunc
		if cfg.Alertmanager.enabled() {
			emb, err := newEmbedded(&cfg.Alertmanager, logger.With("component", "alertmanager"), reg)
			if err != nil {
				_ = st.Close()
				return nil, err
			}
			e.emb = emb
			sends = append(sends, rules.SendAlerts(embeddedSender{
				e: emb, external: labels.FromMap(cfg.ExternalLabels), relabel: cfg.AlertRelabelConfigs.Configs, logger: logger,
			}, extURL.String()))
		}
		if len(cfg.Alertmanagers.Configs) > 0 {
			ams, err := newAlertmanagers(cfg, cfg.Alertmanagers.Configs, logger, reg)
			if err != nil {
				if e.emb != nil {
					_ = e.emb.stop()
				}
				_ = st.Close()
				return nil, err
			}
			e.ams = ams
			sends = append(sends, rules.SendAlerts(ams.nm, extURL.String()))
		}
		if len(sends) > 0 {
			notify = func(ctx context.Context, expr string, alerts ...*rules.Alert) {
				e.logAlerts(ctx, expr, alerts...)
				for _, send := range sends {
					send(ctx, expr, alerts...)
				}
			}
		}
	}
	e.notifyAll = notify
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.mgr = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     extURL,
		QueryFunc:       rules.EngineQueryFunc(e.promql, st.Queryable()),
		NotifyFunc:      notify,
		Context:         ctx,
		AppendableV2:    ruleStore{e},
		Queryable:       st.Queryable(),
		Logger:          logger.With("component", "rules"),
		Registerer:      reg,
		OutageTolerance: cfg.OutageTolerance,
		ForGracePeriod:  cfg.ForGracePeriod,
		ResendDelay:     cfg.ResendDelay,
		Parser:          rulefiles.Parser,
	})
	return e, nil
}

// Store is the engine's store, which the `alerting` exporter feeds.
func (e *Engine) Store() *store.Store { return e.store }

// SelectAlso makes the store keep the series exprs select, besides those of the rules (the
// SLOs' queries); it lasts across reloads.
func (e *Engine) SelectAlso(exprs ...parser.Expr) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	sel, _, errs := selection(e.files)
	if len(errs) > 0 {
		return fmt.Errorf("alerting: rule files: %w", errors.Join(errs...))
	}
	e.extra = append(e.extra, exprs...)
	for _, x := range e.extra {
		sel.AddParsed(x)
	}
	return e.store.SetSelection(sel)
}

// Notify sends alerts that are not the rules' (the SLOs') the way the rules' go: logged, to
// the Alertmanagers and to the in-agent Alertmanager, with the external labels.
func (e *Engine) Notify(ctx context.Context, expr string, alerts ...*rules.Alert) {
	e.notifyAll(ctx, expr, alerts...)
}

// Appender writes samples that are not the rules' (the SLOs' metrics) as recording rules'
// output goes: into the store, within max_series, and to every receiver alerting.
func (e *Engine) Appender(ctx context.Context) storage.AppenderV2 {
	return ruleStore{e}.AppenderV2(ctx)
}

// Query evaluates an instant query on the store at ts.
func (e *Engine) Query(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
	qry, err := e.promql.NewInstantQuery(ctx, e.store.Queryable(), nil, q, ts)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		return v, nil
	case promql.Scalar:
		return promql.Vector{{T: v.T, F: v.V}}, nil
	}
	return nil, fmt.Errorf("query %q: a %s, want an instant vector", q, res.Value.Type())
}

// ResendDelay is how often firing alerts are sent again; EvaluationInterval is the rules'
// default interval.
func (e *Engine) ResendDelay() time.Duration        { return e.cfg.ResendDelay }
func (e *Engine) EvaluationInterval() time.Duration { return e.cfg.EvaluationInterval }

// Start loads the rule files and starts evaluating them. The first evaluation of each group
// restores the `for` state of its alerts from ALERTS_FOR_STATE in the store (what survived a
// restart in the WAL).
func (e *Engine) Start() error {
	if err := e.mgr.Update(e.cfg.EvaluationInterval, e.files, labels.FromMap(e.cfg.ExternalLabels), e.extURL.String(), nil); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	if e.emb != nil {
		e.emb.start()
		e.logger.Info("Alertmanager running in the agent", "address", e.emb.addr(), "paths", "/api/v2/alerts /api/v2/silences /api/v2/status")
	}
	if e.ams != nil {
		e.ams.start()
	}
	e.running.Add(1)
	go func() {
		defer e.running.Done()
		e.mgr.Run()
	}()
	n := 0
	for _, g := range e.mgr.RuleGroups() {
		n += len(g.Rules())
	}
	e.logger.Info("alerting rules loaded", "files", len(e.files), "groups", len(e.mgr.RuleGroups()), "rules", n, "store", e.cfg.Store.Path)
	return nil
}

// Reload reads the rule files again (the globs may match other files now) and, with
// alerting.alertmanager, its configuration: what Prometheus and Alertmanager do on SIGHUP.
// Nothing changes unless everything loads: a broken rule file or Alertmanager configuration
// keeps the running ones, and the error says why. The rest of the agent's config is not
// re-read.
func (e *Engine) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	err := e.reload()
	result := "success"
	if err != nil {
		result = "failure"
	}
	e.reloads.WithLabelValues(result).Inc()
	if err != nil {
		e.lastReload.Set(0)
		return err
	}
	e.lastReload.Set(1)
	return nil
}

func (e *Engine) reload() error {
	files, err := e.cfg.Files()
	if err != nil {
		return err
	}
	if e.cfg.SelfHealth {
		files = append(files, e.cfg.selfHealthFile())
	}
	sel, _, errs := selection(files)
	if len(errs) > 0 {
		return fmt.Errorf("alerting: rule files: %w", errors.Join(errs...))
	}
	for _, x := range e.extra {
		sel.AddParsed(x)
	}
	if e.emb != nil {
		if _, err := e.emb.cfg.load(); err != nil {
			return fmt.Errorf("alerting: alertmanager: %w", err)
		}
	}
	if err := e.mgr.Update(e.cfg.EvaluationInterval, files, labels.FromMap(e.cfg.ExternalLabels), e.extURL.String(), nil); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	e.files = files
	if err := e.store.SetSelection(sel); err != nil {
		return err
	}
	if e.emb != nil {
		if err := e.emb.reload(); err != nil {
			return err
		}
	}
	n := 0
	for _, g := range e.mgr.RuleGroups() {
		n += len(g.Rules())
	}
	e.logger.Info("alerting reloaded", "files", len(files), "groups", len(e.mgr.RuleGroups()), "rules", n, "alertmanager", e.emb != nil)
	return nil
}

// Stop stops evaluating and closes the store (its WAL holds the state for the next start).
func (e *Engine) Stop() error {
	var err error
	e.stopped.Do(func() {
		e.mgr.Stop()
		e.running.Wait()
		if e.ams != nil {
			e.ams.stop() // sends what is queued
		}
		if e.emb != nil {
			err = e.emb.stop() // after the notifier: it writes nflog and silences
		}
		e.cancel()
		err = errors.Join(err, e.store.Close())
	})
	return err
}

// logAlerts logs alerts as they fire and resolve: at info while no notifier is configured (it
// is the only notice), at debug beside one. The rule manager sends a firing alert again every
// resend_delay; those resends are not logged again.
func (e *Engine) logAlerts(ctx context.Context, _ string, alerts ...*rules.Alert) {
	level := slog.LevelInfo
	if e.ams != nil || e.emb != nil {
		level = slog.LevelDebug
	}
	if !e.logger.Enabled(ctx, level) {
		return
	}
	for _, a := range alerts {
		state := "firing"
		if !a.ResolvedAt.IsZero() {
			state = "resolved"
		}
		if e.logged.changed(a.Labels.Hash(), a.ActiveAt, state == "resolved", e.cfg.ResendDelay) {
			e.logger.Log(ctx, level, "alert "+state, "labels", a.Labels.String(), "active_at", a.ActiveAt, "value", a.Value)
		}
	}
}

// alertLog remembers what logAlerts said about each alert (by labels hash): its activeAt,
// whether it was resolved, and when the rule manager last sent it.
type alertLog struct {
	mu     sync.Mutex
	alerts map[uint64]loggedAlert
}

type loggedAlert struct {
	activeAt time.Time
	resolved bool
	seen     time.Time
}

// changed reports whether the alert is news: firing since an activeAt not logged yet, or
// resolved since it was last logged. The rule manager resends firing and (for a while)
// resolved alerts; an alert it has not sent for ten resend delays is forgotten.
func (l *alertLog) changed(h uint64, activeAt time.Time, resolved bool, resend time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alerts == nil {
		l.alerts = map[uint64]loggedAlert{}
	}
	now := time.Now()
	prev, ok := l.alerts[h]
	l.alerts[h] = loggedAlert{activeAt: activeAt, resolved: resolved, seen: now}
	if len(l.alerts)%1024 == 0 {
		for k, v := range l.alerts {
			if now.Sub(v.seen) > 10*max(resend, time.Minute) {
				delete(l.alerts, k)
			}
		}
	}
	return !ok || !prev.activeAt.Equal(activeAt) || prev.resolved != resolved
}
