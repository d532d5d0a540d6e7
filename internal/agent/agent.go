package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
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
}

// NewLogger builds Vigil's own logger from service.telemetry.logs.
func NewLogger(cfg config.LogsTelemetry, out io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch cfg.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Encoding == "console" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

// New builds the components of cfg; nothing listens or runs until Start.
func New(cfg *config.Config, f component.Factories, opts Options) (*Agent, error) {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = 20 * time.Second
	}
	a := &Agent{
		opts:      opts,
		Logger:    NewLogger(cfg.Service.Telemetry.Logs, opts.LogOutput),
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
		for _, c := range slices.Concat(slices.Collect(maps.Values(cfg.Exporters)), slices.Collect(maps.Values(cfg.Receivers))) {
			if at, ok := c.(interface{ Attach(*engine.Engine) }); ok {
				at.Attach(e) // the alerting exporter and receiver
			}
		}
	}
	if cfg.SLOs != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"kind": "slo", "component": "slos"}, a.telemetry.Registry)
		s, err := sloengine.New(cfg.SLOs, a.alerting, a.Logger.With("component", "slos"), reg)
		if err != nil {
			a.stopAlerting()
			return nil, err
		}
		a.slos = s
		for _, c := range cfg.Exporters {
			if at, ok := c.(interface{ Attach(*sloengine.Engine) }); ok {
				at.Attach(s) // the slo exporter
			}
		}
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
	return a, nil
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

// Reload re-reads the rule files and the in-agent Alertmanager configuration (SIGHUP). The
// rest of the config is not re-read; a reload that fails keeps what runs and says why.
func (a *Agent) Reload() error {
	if a.alerting == nil {
		a.Logger.Info("reload asked for: there is no alerting section, nothing to reload (other changes need a restart)")
		return nil
	}
	if err := a.alerting.Reload(); err != nil {
		a.Logger.Error("reload failed: the running rules and routing stay", "error", err)
		return err
	}
	return nil
}

// serveReload is POST /-/reload: Reload, answering 200 when the new rules and routing run and
// 500 with the reason when the old ones stay.
func (a *Agent) serveReload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := a.Reload(); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "reload failed, the running rules and routing stay: %v\n", err)
		return
	}
	if a.alerting == nil {
		_, _ = io.WriteString(w, "nothing to reload: there is no alerting section (other changes need a restart)\n")
		return
	}
	_, _ = io.WriteString(w, "reloaded rules and routing\n")
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
