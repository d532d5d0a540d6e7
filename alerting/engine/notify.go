package engine

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/notifier"
	"go.yaml.in/yaml/v3"
)

// Alertmanagers is alerting.alertmanagers: Prometheus's own `alerting.alertmanagers` list
// (static_configs and every service discovery, scheme, path_prefix, api_version, timeout,
// basic_auth, authorization, oauth2, tls_config, proxy, relabel_configs), decoded, defaulted
// and checked by the upstream config package, so every key and default is Prometheus's.
type Alertmanagers struct {
	Configs promconfig.AlertmanagerConfigs
}

// AlertRelabelConfigs is alerting.alert_relabel_configs, as in Prometheus: applied to every
// alert before it is sent (after the external labels are added).
type AlertRelabelConfigs struct {
	Configs []*relabel.Config
}

// MarshalYAML prints the list as it was written (upstream's secrets as <secret>).
func (a Alertmanagers) MarshalYAML() (any, error) { return a.Configs, nil }

// MarshalYAML prints the list as it was written.
func (a AlertRelabelConfigs) MarshalYAML() (any, error) { return a.Configs, nil }

// UnmarshalYAML hands the list to the upstream loader.
func (a *Alertmanagers) UnmarshalYAML(n *yaml.Node) error {
	ac, err := loadAlerting("alertmanagers", n)
	if err != nil {
		return err
	}
	a.Configs = ac.AlertmanagerConfigs
	return nil
}

// UnmarshalYAML hands the list to the upstream loader.
func (a *AlertRelabelConfigs) UnmarshalYAML(n *yaml.Node) error {
	ac, err := loadAlerting("alert_relabel_configs", n)
	if err != nil {
		return err
	}
	a.Configs = ac.AlertRelabelConfigs
	return nil
}

var upstreamLine = regexp.MustCompile(`line \d+: `)

// loadAlerting runs promconfig.Load on `alerting: {key: n}`. Its errors name upstream's keys;
// the line numbers of the text it saw are removed (the caller reports the section's line).
func loadAlerting(key string, n *yaml.Node) (ac promconfig.AlertingConfig, err error) {
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "alerting"},
		{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: key}, n}},
	}}
	text, err := yaml.Marshal(doc)
	if err != nil {
		return ac, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: the Prometheus config package failed on this input: %v", key, r)
		}
	}()
	cfg, err := promconfig.Load(string(text), slog.New(slog.DiscardHandler))
	if err != nil {
		msg := strings.Join(strings.Fields(upstreamLine.ReplaceAllString(err.Error(), "")), " ")
		return ac, fmt.Errorf("%s: %s", key, msg)
	}
	return cfg.AlertingConfig, nil
}

// NotificationQueue is how many alerts wait to be sent, as Prometheus's
// --alertmanager.notification-queue-capacity.
const NotificationQueue = 10000

// alertmanagers sends alerts to the configured Alertmanagers with Prometheus's notifier: every
// alert to every Alertmanager of every set (a set's addresses discovered by its service
// discovery), in batches, retried by the next evaluation's resend; one Alertmanager down
// does not hold up the others.
type alertmanagers struct {
	nm      *notifier.Manager
	disc    *discovery.Manager
	sd      *discovery.SDMetrics
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

func newAlertmanagers(cfg *Config, targets promconfig.AlertmanagerConfigs, logger *slog.Logger, reg prometheus.Registerer) (*alertmanagers, error) {
	conf := &promconfig.Config{
		GlobalConfig: promconfig.DefaultGlobalConfig,
		AlertingConfig: promconfig.AlertingConfig{
			AlertmanagerConfigs: targets,
			AlertRelabelConfigs: cfg.AlertRelabelConfigs.Configs,
		},
	}
	conf.GlobalConfig.ExternalLabels = labels.FromMap(cfg.ExternalLabels)
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	nm := notifier.NewManager(&notifier.Options{
		QueueCapacity:   NotificationQueue,
		DrainOnShutdown: true,
		Registerer:      reg,
	}, model.UTF8Validation, logger.With("component", "notifier"))
	if err := nm.ApplyConfig(conf); err != nil {
		return nil, fmt.Errorf("alertmanagers: %w", err)
	}
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("alertmanagers: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Discovery updates go to the notifier at most once a second (Prometheus: 5s), so that the
	// Alertmanagers are known before the first evaluation's alerts are sent.
	disc := discovery.NewManager(ctx, logger.With("component", "discovery"), reg, sdMetrics, discovery.Name("notify"), discovery.Updatert(time.Second))
	if disc == nil {
		cancel()
		return nil, fmt.Errorf("alertmanagers: cannot create the discovery manager")
	}
	sd := map[string]discovery.Configs{}
	for k, v := range conf.AlertingConfig.AlertmanagerConfigs.ToMap() {
		sd[k] = v.ServiceDiscoveryConfigs
	}
	if err := disc.ApplyConfig(sd); err != nil {
		cancel()
		return nil, fmt.Errorf("alertmanagers: discovery: %w", err)
	}
	return &alertmanagers{nm: nm, disc: disc, sd: sdMetrics, cancel: cancel, done: make(chan struct{})}, nil
}

func (a *alertmanagers) start() {
	a.started = true
	go func() {
		defer close(a.done)
		_ = a.disc.Run()
	}()
	go a.nm.Run(a.disc.SyncCh())
}

// stop sends what is queued (within the notifier's own timeouts) and stops.
func (a *alertmanagers) stop() {
	if !a.started {
		a.cancel()
		return
	}
	a.nm.Stop()
	a.cancel()
	<-a.done
}
