package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/alert"
	amapi "github.com/prometheus/alertmanager/api"
	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/labelset"
	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/notifier"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/server"
)

// EmbeddedConfig is alerting.alertmanager: routing and notification inside the agent, so that
// pages go out (webhook, Slack, PagerDuty, Opsgenie, and every other receiver Alertmanager has)
// also while no central Alertmanager or Prometheus can be reached. It is built from
// Alertmanager's own packages: route tree, grouping, inhibition, silences, time intervals,
// templates, the notification log and the API v2.
type EmbeddedConfig struct {
	// ConfigFile is an Alertmanager configuration file (its own format). Config is the same,
	// inline; one of the two turns the section on.
	ConfigFile string       `yaml:"config_file"`
	Config     InlineConfig `yaml:"config"`
	// HTTP serves Alertmanager's API v2 (/api/v2/alerts, /api/v2/silences, /api/v2/status)
	// for amtool and Grafana: endpoint (loopback by default), tls, auth.
	HTTP server.HTTP `yaml:",inline"`
	// DataDir holds the snapshots of the notification log and the silences.
	DataDir string `yaml:"data_dir"`
	// Retention is how long notification log entries and expired silences are kept.
	Retention time.Duration `yaml:"retention"`
	// MaintenanceInterval is how often both are written to disk (and garbage collected).
	MaintenanceInterval time.Duration `yaml:"maintenance_interval"`
	// ExternalURL is where this Alertmanager is reached, for links in notifications.
	ExternalURL string `yaml:"external_url"`
}

// InlineConfig is an Alertmanager configuration written in the agent's config, checked by
// Alertmanager's own loader.
type InlineConfig struct {
	Text string
}

// MarshalYAML prints the configuration as Alertmanager reads it, its secrets (API URLs,
// routing keys, passwords) as <secret>, never the text itself.
func (c InlineConfig) MarshalYAML() (any, error) {
	if c.Text == "" {
		return nil, nil
	}
	return amconfig.Load(c.Text)
}

// UnmarshalYAML keeps the text and checks it with Alertmanager's loader.
func (c *InlineConfig) UnmarshalYAML(n *yaml.Node) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := amconfig.Load(string(out)); err != nil {
		// As a decode error with its line, so that the agent's loader names the file, the line
		// and the path (alerting.alertmanager.config) rather than the alerting section.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: Alertmanager configuration: %v", n.Line, err)}}
	}
	c.Text = string(out)
	return nil
}

// DefaultEmbeddedEndpoint is where the API listens unless configured: Alertmanager's port, on
// loopback.
const DefaultEmbeddedEndpoint = "127.0.0.1:9093"

// newEmbeddedConfig returns the defaults.
func newEmbeddedConfig() EmbeddedConfig {
	return EmbeddedConfig{
		HTTP:                server.NewHTTP(DefaultEmbeddedEndpoint),
		DataDir:             "data/alertmanager",
		Retention:           120 * time.Hour,
		MaintenanceInterval: time.Minute,
	}
}

func (c *EmbeddedConfig) enabled() bool { return c.ConfigFile != "" || c.Config.Text != "" }

// load reads the Alertmanager configuration.
func (c *EmbeddedConfig) load() (*amconfig.Config, error) {
	if c.ConfigFile != "" {
		return amconfig.LoadFile(c.ConfigFile)
	}
	return amconfig.Load(c.Config.Text)
}

// Validate checks the section; the Alertmanager configuration is Alertmanager's to check.
func (c *EmbeddedConfig) Validate() error {
	if !c.enabled() {
		return nil
	}
	var errs []error
	switch {
	case c.ConfigFile != "" && c.Config.Text != "":
		errs = append(errs, errors.New("config_file and config: set one of them"))
	case c.ConfigFile != "":
		if _, err := amconfig.LoadFile(c.ConfigFile); err != nil {
			errs = append(errs, fmt.Errorf("config_file: %w", err))
		}
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must be set (the notification log and silences)"))
	}
	if c.Retention <= 0 {
		errs = append(errs, fmt.Errorf("retention: must be > 0, got %s", c.Retention))
	}
	if c.MaintenanceInterval <= 0 {
		errs = append(errs, fmt.Errorf("maintenance_interval: must be > 0, got %s", c.MaintenanceInterval))
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("external_url: must be an absolute URL, got %q", c.ExternalURL))
		}
	}
	return errors.Join(errs...)
}

// embedded is Alertmanager's pipeline running in the agent: alerts (from the rules, or POSTed
// to its API) go to the in-memory provider; the dispatcher groups them along the route tree
// and hands each group to the notify pipeline (inhibition, silences, time intervals, the
// notification log's deduplication, retries) and on to the receivers' integrations.
type embedded struct {
	cfg      *EmbeddedConfig
	logger   *slog.Logger
	nflog    *nflog.Log
	silences *silence.Silences
	silencer *silence.Silencer
	alerts   *mem.Alerts
	api      *amapi.API

	// Built once: they register metrics.
	pipelines *notify.PipelineBuilder
	dmetrics  *dispatch.DispatcherMetrics
	rec       eventrecorder.Recorder

	outbox *outbox

	mu         sync.Mutex
	inhibitor  *inhibit.Inhibitor
	dispatcher *dispatch.Dispatcher
	inner      map[string]notify.Integration // the integrations without the outbox, by key

	stopc   chan struct{}
	running sync.WaitGroup
	ln      net.Listener
	srv     *http.Server
	served  chan struct{}
	once    sync.Once
	started bool
}

func newEmbedded(c *EmbeddedConfig, logger *slog.Logger, reg prometheus.Registerer) (*embedded, error) {
	conf, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	e := &embedded{cfg: c, logger: logger, stopc: make(chan struct{}), served: make(chan struct{})}
	var rec eventrecorder.Recorder // the event recorder is off, as by default in Alertmanager
	// Notification counters carry receiver_name next to integration, so that sent, failed
	// and retried (requests beyond notifications) are counted per receiver.
	ff, err := featurecontrol.NewFlags(slog.New(slog.DiscardHandler), featurecontrol.FeatureReceiverNameInMetrics) // not "experimental" to us: no warning
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	e.nflog, err = nflog.New(nflog.Options{
		SnapshotFile: filepath.Join(c.DataDir, "nflog"),
		Retention:    c.Retention,
		Logger:       logger.With("component", "nflog"),
		Metrics:      reg,
	})
	if err != nil {
		return nil, fmt.Errorf("alertmanager: notification log: %w", err)
	}
	e.silences, err = silence.New(silence.Options{
		SnapshotFile: filepath.Join(c.DataDir, "silences"),
		Retention:    c.Retention,
		Limits:       silence.Limits{MaxSilences: func() int { return 0 }, MaxSilenceSizeBytes: func() int { return 0 }},
		Logger:       logger.With("component", "silences"),
		Metrics:      reg,
	})
	if err != nil {
		return nil, fmt.Errorf("alertmanager: silences: %w", err)
	}
	e.silencer = silence.NewSilencer(e.silences, logger, rec)
	e.alerts, err = mem.NewAlerts(context.Background(), 30*time.Minute, 0, e.silencer, logger, rec, reg, ff)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "alertmanager_http_request_duration_seconds",
		Help:    "Latency of the in-agent Alertmanager's API requests.",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler", "method", "code"})
	if err := reg.Register(requests); err != nil {
		e.alerts.Close()
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	e.api, err = amapi.New(amapi.Options{
		Alerts:          e.alerts,
		Silences:        e.silences,
		Timeout:         time.Minute,
		Logger:          logger.With("component", "api"),
		Registry:        reg,
		RequestDuration: requests,
		GroupFunc: func(ctx context.Context, rf func(*dispatch.Route) bool, af dispatch.AlertFilter) (dispatch.AlertGroups, map[model.Fingerprint][]string, error) {
			e.mu.Lock()
			d := e.dispatcher
			e.mu.Unlock()
			return d.Groups(ctx, rf, af)
		},
	})
	if err != nil {
		e.alerts.Close()
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	e.outbox, err = newOutbox(filepath.Join(c.DataDir, "outbox"), logger.With("component", "outbox"), reg)
	if err != nil {
		e.alerts.Close()
		return nil, err
	}
	e.rec = rec
	e.pipelines = notify.NewPipelineBuilder(reg, ff, rec)
	e.dmetrics = dispatch.NewDispatcherMetrics(false, reg, ff)
	if err := e.apply(conf); err != nil {
		e.alerts.Close()
		return nil, err
	}
	e.ln, err = c.HTTP.Listen()
	if err != nil {
		e.alerts.Close()
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	e.srv = c.HTTP.NewServer(e.api.Register(route.New(), "/"), server.ErrorLog(logger))
	e.srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn) // a handler's panic is worth seeing
	return e, nil
}

// apply builds what the configuration says: templates, routes, receivers, time intervals,
// inhibitor, notify pipeline and dispatcher (started by start).
func (e *embedded) apply(conf *amconfig.Config) error {
	rec := e.rec
	tmpl, err := template.FromGlobs(conf.Templates)
	if err != nil {
		return fmt.Errorf("alertmanager: templates: %w", err)
	}
	ext := e.cfg.ExternalURL
	if ext == "" {
		ext = "http://" + e.cfg.HTTP.Endpoint
	}
	tmpl.ExternalURL, err = url.Parse(ext)
	if err != nil {
		return fmt.Errorf("alertmanager: external_url: %w", err)
	}
	routes := dispatch.NewRoute(conf.Route, nil)
	used := map[string]bool{}
	routes.Walk(func(r *dispatch.Route) { used[r.RouteOpts.Receiver] = true })
	integrations := map[string][]notify.Integration{}
	inner := map[string]notify.Integration{}
	for _, rcv := range conf.Receivers {
		if !used[rcv.Name] {
			continue
		}
		ints, err := receiver.BuildReceiverIntegrations(rcv, tmpl, e.logger)
		if err != nil {
			return fmt.Errorf("alertmanager: receiver %q: %w", rcv.Name, err)
		}
		for i := range ints {
			inner[integrationKey(rcv.Name, ints[i])] = ints[i]
			ints[i] = e.outbox.notifier(rcv.Name, ints[i])
		}
		integrations[rcv.Name] = ints
	}
	intervals := map[string][]timeinterval.TimeInterval{}
	for _, ti := range conf.MuteTimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range conf.TimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	intervener := timeinterval.NewIntervener(intervals)
	inhibitor := inhibit.NewInhibitor(e.alerts, conf.InhibitRules, e.logger, rec)
	noWait := func() time.Duration { return 0 } // no cluster to wait for
	pipeline := e.pipelines.New(integrations, noWait, inhibitor, e.silencer, intervener, e.nflog, nil)
	e.api.Update(conf, func(ctx context.Context, ls labelset.LabelSet) {
		inhibitor.Mutes(ctx, ls)
		e.silencer.Mutes(ctx, ls)
	})
	timeout := func(d time.Duration) time.Duration { return max(d, notify.MinTimeout) }
	d := dispatch.NewDispatcher(e.alerts, routes, pipeline, intervener, timeout, 30*time.Second, nil, e.logger,
		rec, e.dmetrics, tmpl)
	e.mu.Lock()
	e.inhibitor, e.dispatcher, e.inner = inhibitor, d, inner
	e.mu.Unlock()
	return nil
}

// addr is the bound address of its API.
func (e *embedded) addr() string { return server.Addr(e.ln) }

func (e *embedded) start() {
	e.started = true
	dir := e.cfg.DataDir
	e.running.Go(func() { e.nflog.Maintenance(e.cfg.MaintenanceInterval, filepath.Join(dir, "nflog"), e.stopc, nil) })
	e.running.Go(func() {
		e.silences.Maintenance(e.cfg.MaintenanceInterval, filepath.Join(dir, "silences"), e.stopc, nil)
	})
	e.runPipeline()
	e.mu.Lock()
	inner := e.inner
	e.mu.Unlock()
	e.outbox.replay(inner, e.stopc, &e.running) // what a crash left undelivered
	go func() {
		defer close(e.served)
		if err := e.srv.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("Alertmanager API listener failed", "error", err)
		}
	}()
}

// runPipeline starts the inhibitor, then the dispatcher once the inhibitor has loaded the
// alerts (so that nothing inhibited is sent meanwhile).
func (e *embedded) runPipeline() {
	e.mu.Lock()
	i, d := e.inhibitor, e.dispatcher
	e.mu.Unlock()
	go i.Run()
	i.WaitForLoading()
	go d.Run(time.Now())
	d.WaitForLoading()
}

// reload applies the Alertmanager configuration again (its file may have changed). A
// configuration that does not load or build leaves the running one in place.
func (e *embedded) reload() error {
	conf, err := e.cfg.load()
	if err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	e.mu.Lock()
	oldI, oldD := e.inhibitor, e.dispatcher
	e.mu.Unlock()
	if err := e.apply(conf); err != nil {
		e.mu.Lock()
		e.inhibitor, e.dispatcher = oldI, oldD
		e.mu.Unlock()
		return err
	}
	// As Alertmanager does: the old pipeline stops, the new one takes the alerts from the
	// provider; the notification log keeps groups already notified from paging again.
	oldD.Stop()
	oldI.Stop()
	e.runPipeline()
	return nil
}

// put hands alerts to the provider, as a POST to /api/v2/alerts would.
func (e *embedded) put(alerts ...*alert.Alert) error {
	return e.alerts.Put(context.Background(), alerts...)
}

// stop stops dispatching and writes the notification log and silences to disk.
func (e *embedded) stop() error {
	var err error
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if e.started {
			err = e.srv.Shutdown(ctx)
			<-e.served
			e.dispatcher.Stop()
			e.inhibitor.Stop()
		} else {
			_ = e.ln.Close()
		}
		close(e.stopc)
		e.running.Wait()
		e.alerts.Close()
	})
	return err
}

// embeddedSender turns the rules' alerts into Alertmanager alerts, as a Prometheus notifier
// sending to this Alertmanager would: external labels added (an alert's own label wins),
// alert_relabel_configs applied, alerts relabelled away dropped.
type embeddedSender struct {
	e        *embedded
	external labels.Labels
	relabel  []*relabel.Config
	logger   *slog.Logger
}

// Send implements rules.Sender.
func (s embeddedSender) Send(alerts ...*notifier.Alert) {
	now := time.Now()
	out := make([]*alert.Alert, 0, len(alerts))
	for _, a := range alerts {
		b := labels.NewBuilder(a.Labels)
		s.external.Range(func(l labels.Label) {
			if a.Labels.Get(l.Name) == "" {
				b.Set(l.Name, l.Value)
			}
		})
		if !relabel.ProcessBuilder(b, s.relabel...) {
			continue
		}
		ls := b.Labels()
		out = append(out, alert.New(model.Alert{
			Labels:       toLabelSet(ls),
			Annotations:  toLabelSet(a.Annotations),
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: a.GeneratorURL,
		}, now, false))
	}
	if len(out) == 0 {
		return
	}
	if err := s.e.put(out...); err != nil {
		s.logger.Error("the in-agent Alertmanager refused alerts", "error", err, "count", len(out))
	}
}

func toLabelSet(ls labels.Labels) model.LabelSet {
	m := make(model.LabelSet, ls.Len())
	ls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return m
}
