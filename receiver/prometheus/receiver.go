package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/util/logging"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promconv"

	// The service discoveries the receiver supports besides static_configs and kubernetes
	// (kubernetes.go). Each registers its *_sd_configs key with the upstream config package when
	// imported; discovery/install is not used because it brings in every cloud provider's SDK.
	_ "github.com/prometheus/prometheus/discovery/dns"
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/http"
)

// options are upstream settings that the config does not expose. Tests shorten the delays.
type options struct {
	// discoveryReload is how often the scrape manager applies new targets (upstream: 5s).
	discoveryReload time.Duration
	// discoveryUpdate is the most the discovery manager waits before passing updates on (5s).
	discoveryUpdate time.Duration
}

// receiver runs an upstream discovery manager and scrape manager; the scrape manager appends to
// promconv's Appendable, whose commits become batches.
type receiver struct {
	set  component.Settings
	cfg  *promconfig.Config
	next component.Consumer
	opts options

	// consumeCtx is what batches are consumed with: it ends only when Shutdown gives up waiting,
	// so that a scrape being committed at shutdown still reaches the pipeline.
	consumeCtx    context.Context
	consumeCancel context.CancelFunc
	// commitWait bounds how long a commit waits for its scrape to be acknowledged (the longest
	// scrape_interval): a scrape is not done before its data is durable, but a loop stuck behind
	// a dead backend (end_to_end) would stop scraping altogether.
	commitWait time.Duration // set by Start before the scrape loops run

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when run has stopped everything and unregistered the metrics
}

var _ component.Component = (*receiver)(nil)

func newReceiver(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Registerer == nil {
		set.Registerer = prometheus.NewRegistry()
	}
	for sig := range next {
		if sig != batch.Metrics {
			return nil, fmt.Errorf("receiver %s: unsupported signal %s", set.ID, sig)
		}
	}
	c := next[batch.Metrics]
	if c == nil {
		return nil, fmt.Errorf("receiver %s: no metrics pipeline to feed", set.ID)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	pcfg, _, err := cfg.scrapeConfig()
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	r := &receiver{set: set, cfg: pcfg, next: c}
	r.consumeCtx, r.consumeCancel = context.WithCancel(context.Background())
	return r, nil
}

// commit hands one scrape (or one round of staleness markers) to the pipeline. An error fails
// the appender's commit: the scrape loop logs "Scrape commit failed" and the data is dropped, not
// retried — the next scrape carries fresh values.
//
// The appender's context (the scrape pool's) is not used: it carries nothing the pipeline needs
// and is not cancelled before the loops have stopped, which a blocked commit would prevent.
//
// The commit returns once the scrape is acknowledged in the sense of the pipelines' modes (for
// the default, durable: in the exporters' queues), or fails after commitWait; its data is then
// still delivered.
func (r *receiver) commit(_ context.Context, body promconv.Body) error {
	ctx, cancel := r.consumeCtx, context.CancelFunc(func() {})
	if r.commitWait > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.commitWait)
	}
	defer cancel()
	if err := r.next.Consume(ctx, batch.FromPromRWTrusted(body.Bytes, body.Items())); err != nil {
		return fmt.Errorf("receiver %s: the pipeline refused the scrape: %w", r.set.ID, err)
	}
	return nil
}

// Start registers the upstream metrics, starts discovery and returns; the scrape manager is
// configured and run in the background because applying its config resolves the host's FQDN
// (upstream spreads scrape times by it), which can wait on DNS.
func (r *receiver) Start(_ context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return fmt.Errorf("receiver %s: already started", r.set.ID)
	}
	scfgs, err := r.cfg.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	sd := map[string]discovery.Configs{}
	var longest time.Duration
	for _, sc := range scfgs {
		sd[sc.JobName] = sc.ServiceDiscoveryConfigs
		longest = max(longest, time.Duration(sc.ScrapeInterval))
	}
	r.commitWait = longest

	routeKubernetesLogs(scfgs, r.set.Logger)

	reg := r.set.Registerer
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	discOpts := []func(*discovery.Manager){discovery.Name("scrape")}
	if r.opts.discoveryUpdate > 0 {
		discOpts = append(discOpts, discovery.Updatert(r.opts.discoveryUpdate))
	}
	disc := discovery.NewManager(ctx, r.set.Logger.With("manager", "discovery"), reg, sdMetrics, discOpts...)
	if disc == nil {
		// NewManager logs why; the only cause with metrics we made is a registration clash.
		cancel()
		unregisterSD(sdMetrics)
		return fmt.Errorf("receiver %s: cannot create the discovery manager (are two receivers running with this id?)", r.set.ID)
	}
	scr, err := scrape.NewManager(&scrape.Options{
		// With AppenderV2 this is what makes the scrape loop pass each series' metric family
		// name and metadata (type, help, unit) to Append; promconv writes them as the request's
		// metadata.
		AppendMetadata:          true,
		DiscoveryReloadInterval: model.Duration(r.opts.discoveryReload),
		// The first targets found start their scrape loops at once rather than at the first
		// reload tick (5s): an agent in a short-lived job would lose those seconds. Later
		// changes are still applied at most once per reload interval. Each loop's first scrape
		// keeps upstream's offset within its interval, which spreads the targets' scrapes.
		DiscoveryReloadOnStartup: true,
	}, r.set.Logger.With("manager", "scrape"), logging.NewJSONFileLogger, nil, promconv.Appendable{Commit: r.commit}, reg)
	if err != nil {
		cancel()
		disc.UnregisterMetrics()
		unregisterSD(sdMetrics)
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	// Discovery providers start here (none of them dials anything yet); an SD config that cannot
	// start is logged and counted in prometheus_sd_failed_configs, as in Prometheus.
	if err := disc.ApplyConfig(sd); err != nil {
		cancel()
		scr.UnregisterMetrics()
		disc.UnregisterMetrics()
		unregisterSD(sdMetrics)
		return fmt.Errorf("receiver %s: discovery: %w", r.set.ID, err)
	}
	r.started = true
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(ctx, host, disc, scr, sdMetrics)
	r.set.Logger.Info("Prometheus receiver started", "scrape_configs", len(scfgs))
	return nil
}

func (r *receiver) run(ctx context.Context, host component.Host, disc *discovery.Manager, scr *scrape.Manager, sdMetrics *discovery.SDMetrics) {
	defer close(r.done)
	defer func() {
		scr.UnregisterMetrics()
		disc.UnregisterMetrics()
		unregisterSD(sdMetrics)
	}()
	var wg sync.WaitGroup
	// disc.Run returns when ctx is cancelled, after cancelling the discoverers; its sender then
	// closes SyncCh, which ends scr.Run.
	wg.Go(func() { _ = disc.Run() })
	if err := scr.ApplyConfig(r.cfg); err != nil {
		host.ReportFatal(fmt.Errorf("receiver %s: scrape: %w", r.set.ID, err))
	} else {
		wg.Go(func() { _ = scr.Run(disc.SyncCh()) })
	}
	<-ctx.Done()
	// Stop waits for every scrape loop, and so for a commit in flight.
	scr.Stop()
	wg.Wait()
}

// Shutdown stops discovery and every scrape loop and waits for them (a scrape being committed
// finishes first), within ctx.
func (r *receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	first := r.started && !r.stopped
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if !first {
		r.consumeCancel()
		return nil
	}
	cancel()
	select {
	case <-done:
		r.consumeCancel()
		return nil
	case <-ctx.Done():
		// Unblock a commit stuck in the pipeline; the loops then finish in the background.
		r.consumeCancel()
		return fmt.Errorf("receiver %s: shutdown: %w", r.set.ID, errors.Join(ctx.Err(), errors.New("scrape loops still running")))
	}
}

// unregisterSD removes the per-mechanism discovery metrics, which upstream registers once per
// process and never removes; a receiver registers them per instance, so it must.
func unregisterSD(m *discovery.SDMetrics) {
	for _, mm := range m.MechanismMetrics {
		mm.Unregister()
	}
	m.RefreshManager.Unregister()
}
