package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/pipeline"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	sloengine "github.com/vigilhq/vigil/slo/engine"
)

// Options for an agent.
type Options struct {
	Build selftelemetry.Build
	// LogOutput receives Vigil's own logs (default: the caller passes os.Stderr).
	LogOutput io.Writer
	// GracePeriod bounds shutdown: draining in-flight data and flushing queues.
	GracePeriod time.Duration
	Pipeline    pipeline.Options
	// OnStarted, when set, runs once everything has started (cmd/vigil gives back the memory
	// start-up needed).
	OnStarted func(*slog.Logger)
	// Load, when set, loads and validates the config again (the file the agent runs); a reload
	// calls it and applies what changed (docs/reload.md). Without it a reload re-reads the rule
	// files and Alertmanager config only.
	Load func() (*config.Config, error)
}

// Agent is a running Vigil.
type Agent struct {
	opts      Options
	Logger    *slog.Logger
	telemetry *selftelemetry.Telemetry
	health    *selftelemetry.Health
	graph     *pipeline.Graph
	listen    selftelemetry.Endpoint // Address "": no listener
	alerting  *engine.Engine         // nil without an alerting section
	slos      *sloengine.Engine      // nil without a slos section

	mu     sync.Mutex // guards server, which Start sets while others may read the address
	server *selftelemetry.Server

	fatalOnce sync.Once
	fatal     chan error

	level      *slog.LevelVar // service.telemetry.logs.level, which a reload applies
	reloadMu   sync.Mutex
	base       *config.Config // a load of the running config no component has seen (with Options.Load)
	reloads    *prometheus.CounterVec
	lastOK     prometheus.Gauge
	lastOKTime prometheus.Gauge
}

func logLevel(name string) slog.Level {
	switch name {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// newLogger builds Vigil's own logger from service.telemetry.logs, at a level a reload can
// change.
func newLogger(cfg config.LogsTelemetry, out io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(logLevel(cfg.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.Encoding == "console" {
		return slog.New(slog.NewTextHandler(out, opts)), lv
	}
	return slog.New(slog.NewJSONHandler(out, opts)), lv
}

// New builds the components of cfg; nothing listens or runs until Start.
func New(cfg *config.Config, f component.Factories, opts Options) (*Agent, error) {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = 20 * time.Second
	}
	logger, level := newLogger(cfg.Service.Telemetry.Logs, opts.LogOutput)
	a := &Agent{
		opts:      opts,
		level:     level,
		Logger:    logger,
		telemetry: selftelemetry.New(opts.Build),
		health:    selftelemetry.NewHealth(),
		listen: selftelemetry.Endpoint{Address: cfg.Service.Telemetry.Metrics.ListenAddress(),
			TLS: cfg.Service.Telemetry.Metrics.TLS, Auth: cfg.Service.Telemetry.Metrics.Auth},
		fatal: make(chan error, 1),
	}
	if cfg.Alerting != nil {
		// Labelled as a component's metrics are, so that the upstream discovery and engine
		// metrics it registers do not clash with a scrape receiver's.
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"kind": "alerting", "component": "alerting"}, a.telemetry.Registry)
		e, err := engine.New(cfg.Alerting, a.Logger.With("component", "alerting"), reg, nil)
		if err != nil {
			return nil, fmt.Errorf("alerting: %w", err)
		}
		a.alerting = e
	}
	if cfg.SLOs != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"kind": "slo", "component": "slos"}, a.telemetry.Registry)
		s, err := sloengine.New(cfg.SLOs, a.alerting, a.Logger.With("component", "slos"), reg)
		if err != nil {
			a.stopAlerting()
			return nil, err
		}
		a.slos = s
	}
	a.attach(cfg)
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_config_reloads_total", Help: "Config reloads (SIGHUP, POST /-/reload) by result.",
	}, []string{"result"})
	a.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_config_last_reload_successful", Help: "1 if the last config reload succeeded (or none was asked for yet), else 0.",
	})
	a.lastOKTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_config_last_reload_success_timestamp_seconds", Help: "When the config last loaded successfully (start or reload).",
	})
	a.lastOK.Set(1)
	a.lastOKTime.SetToCurrentTime()
	a.reloads.WithLabelValues("success")
	a.reloads.WithLabelValues("failure")
	a.telemetry.Registry.MustRegister(a.reloads, a.lastOK, a.lastOKTime)
	if opts.Load != nil {
		base, err := opts.Load()
		if err != nil {
			a.stopAlerting()
			return nil, fmt.Errorf("config: second load for reload comparisons: %w", err)
		}
		a.base = base
	}
	popts := opts.Pipeline
	popts.Health = a.health
	g, err := pipeline.Build(cfg, f, a.telemetry, a.Logger, popts)
	if err != nil {
		if a.alerting != nil {
			_ = a.alerting.Stop()
		}
		return nil, err
	}
	a.graph = g
	if a.base != nil {
		g.SetBaseline(a.base)
	}
	return a, nil
}

// attach gives the alerting and SLO components of cfg the agent's engines.
func (a *Agent) attach(cfg *config.Config) {
	for _, c := range slices.Concat(slices.Collect(maps.Values(cfg.Exporters)), slices.Collect(maps.Values(cfg.Receivers))) {
		if at, ok := c.(interface{ Attach(*engine.Engine) }); ok && a.alerting != nil {
			at.Attach(a.alerting) // the alerting exporter and receiver
		}
		if at, ok := c.(interface{ Attach(*sloengine.Engine) }); ok && a.slos != nil {
			at.Attach(a.slos) // the slo exporter
		}
	}
}

// ReportFatal implements component.Host.
func (a *Agent) ReportFatal(err error) {
	a.health.Report("agent", err)
	a.fatalOnce.Do(func() { a.fatal <- err })
}

// Start serves self-telemetry, then starts the pipelines; /readyz turns ready once all started.
func (a *Agent) Start(ctx context.Context) error {
	if a.listen.Address != "" {
		routes := []func(*http.ServeMux){func(m *http.ServeMux) { m.HandleFunc("POST /-/reload", a.serveReload) }}
		paths := "/metrics /healthz /readyz /-/reload"
		if a.alerting != nil {
			routes = append(routes, a.alerting.Register)
			paths += " /api/v1/{query,query_range,series,labels,rules,alerts}"
		}
		if a.slos != nil {
			routes = append(routes, a.slos.Register)
			paths += " /api/v1/slos"
		}
		s, err := selftelemetry.Listen(a.listen, a.telemetry, a.health, a.Logger, a.ReportFatal, routes...)
		if err != nil {
			a.stopAlerting()
			return err
		}
		a.mu.Lock()
		a.server = s
		a.mu.Unlock()
		a.Logger.Info("self-telemetry listening", "address", s.Addr(), "paths", paths)
	}
	if err := a.graph.Start(ctx, a); err != nil {
		if a.server != nil {
			_ = a.server.Shutdown(ctx)
		}
		a.stopAlerting()
		return err
	}
	if a.alerting != nil {
		if err := a.alerting.Start(); err != nil {
			_ = a.graph.Shutdown(ctx)
			if a.server != nil {
				_ = a.server.Shutdown(ctx)
			}
			a.stopAlerting()
			return err
		}
	}
	if a.slos != nil {
		a.slos.Start()
	}
	a.health.SetReady(true)
	a.Logger.Info("vigil started", "version", a.opts.Build.Version)
	return nil
}

// TelemetryAddr is the bound self-telemetry address ("" when off or not started yet); safe to
// call while Start runs.
func (a *Agent) TelemetryAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}

// ReloadError is a reload refused before anything changed: the new config does not load, or
// changes a section that needs a restart.
type ReloadError struct{ Err error }

func (e *ReloadError) Error() string { return e.Err.Error() }
func (e *ReloadError) Unwrap() error { return e.Err }

// Reload re-reads the config (with Options.Load) and applies what changed to the pipelines,
// then re-reads the rule files and the in-agent Alertmanager configuration (SIGHUP,
// POST /-/reload). It returns what it changed. A config that does not load, or that changes a
// section a reload cannot apply, changes nothing (a *ReloadError); see docs/reload.md.
func (a *Agent) Reload() ([]pipeline.Change, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	changes, err := a.reload()
	if err != nil {
		a.reloads.WithLabelValues("failure").Inc()
		a.lastOK.Set(0)
		a.Logger.Error("reload failed", "error", err, "applied", fmt.Sprint(changes))
		return changes, err
	}
	a.reloads.WithLabelValues("success").Inc()
	a.lastOK.Set(1)
	a.lastOKTime.SetToCurrentTime()
	a.Logger.Info("reloaded", "changes", fmt.Sprint(changes))
	return changes, nil
}

func (a *Agent) reload() ([]pipeline.Change, error) {
	var changes []pipeline.Change
	if a.opts.Load != nil {
		cfg, err := a.opts.Load()
		if err != nil {
			return nil, &ReloadError{err}
		}
		base, err := a.opts.Load()
		if err != nil {
			return nil, &ReloadError{err}
		}
		if err := needsRestart(a.base, base); err != nil {
			return nil, &ReloadError{err}
		}
		a.attach(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), a.opts.GracePeriod)
		changes, err = a.graph.Reload(ctx, cfg, base)
		cancel()
		if err != nil {
			return changes, err
		}
		if lv, was := logLevel(base.Service.Telemetry.Logs.Level), a.level.Level(); lv != was {
			a.level.Set(lv)
			// At the less verbose of the two levels, so that both the old and the new show it.
			a.Logger.Log(context.Background(), max(lv, was), "log level changed", "from", was.String(), "to", lv.String())
		}
		a.base = base
	}
	if a.alerting != nil {
		if err := a.alerting.Reload(); err != nil {
			return changes, fmt.Errorf("rules and routing (the running ones stay): %w", err)
		}
	}
	return changes, nil
}

// needsRestart names the sections of next that differ from running and that a reload cannot
// apply: the agent's own telemetry but for its log level, and the alerting and SLO engines'
// sections (the rule files and Alertmanager config they name are re-read on every reload).
func needsRestart(running, next *config.Config) error {
	var diff []string
	tel := next.Service.Telemetry
	tel.Logs.Level = running.Service.Telemetry.Logs.Level // applied by the reload
	if !reflect.DeepEqual(running.Service.Telemetry, tel) {
		diff = append(diff, "service.telemetry")
	}
	if !reflect.DeepEqual(running.Alerting, next.Alerting) {
		diff = append(diff, "alerting")
	}
	if !reflect.DeepEqual(running.SLOs, next.SLOs) {
		diff = append(diff, "slos")
	}
	if len(diff) > 0 {
		return fmt.Errorf("%s changed: a reload cannot apply that, restart vigil (nothing was changed)", strings.Join(diff, ", "))
	}
	return nil
}

// serveReload is POST /-/reload: 200 with what changed; 400 when the new config does not load
// or needs a restart (nothing changed); 500 when applying it failed part way.
func (a *Agent) serveReload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	changes, err := a.Reload()
	var re *ReloadError
	switch {
	case errors.As(err, &re):
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "reload refused, the running config stays: %v\n", err)
		return
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "reload failed: %v\n", err)
	default:
		_, _ = io.WriteString(w, "reloaded\n")
	}
	if a.opts.Load == nil {
		_, _ = io.WriteString(w, "config file not re-read (no file); rule files and routing re-read\n")
	}
	if len(changes) == 0 && a.opts.Load != nil {
		_, _ = io.WriteString(w, "no component changed\n")
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s\n", c)
	}
}

// Shutdown drains and stops everything within ctx.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.health.SetStopping()
	err := a.graph.Shutdown(ctx)
	if a.server != nil {
		err = errors.Join(err, a.server.Shutdown(ctx))
	}
	if a.slos != nil {
		a.slos.Stop() // before the alerting engine: its last metrics go through it
	}
	if a.alerting != nil {
		err = errors.Join(err, a.alerting.Stop())
	}
	return err
}

func (a *Agent) stopAlerting() {
	if a.slos != nil {
		a.slos.Stop()
	}
	if a.alerting != nil {
		if err := a.alerting.Stop(); err != nil {
			a.Logger.Error("alerting store: close", "error", err)
		}
	}
}

// Run starts the agent and blocks until ctx ends (a signal) or a component fails fatally, then
// shuts down within the grace period. It returns nil after a clean, signalled shutdown.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	if a.opts.OnStarted != nil {
		a.opts.OnStarted(a.Logger)
	}
	var cause error
	select {
	case <-ctx.Done():
		a.Logger.Info("shutting down", "grace_period", a.opts.GracePeriod.String())
	case cause = <-a.fatal:
		a.Logger.Error("fatal component error, shutting down", "error", cause)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.GracePeriod)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		a.Logger.Error("shutdown incomplete", "error", err)
		return errors.Join(cause, fmt.Errorf("shutdown: %w", err))
	}
	a.Logger.Info("vigil stopped")
	return cause
}
