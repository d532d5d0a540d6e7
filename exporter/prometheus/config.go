package prometheus

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/server"
)

// Defaults. The endpoint is on loopback, so that nothing is exposed unless the config says so.
const (
	DefaultEndpoint         = "127.0.0.1:8889"
	DefaultMetricExpiration = 5 * time.Minute
)

// Config is the prometheus exporter's configuration, with the OpenTelemetry Collector's key names.
type Config struct {
	// HTTP is the scrape listener: endpoint, tls, auth and timeouts, as in the receivers.
	server.HTTP `yaml:",inline"`
	// Namespace, when set, prefixes every metric name (not target_info) with "<namespace>_".
	Namespace string `yaml:"namespace"`
	// ConstLabels are added to every series; they win over attributes of the same name.
	ConstLabels map[string]string `yaml:"const_labels"`
	// MetricExpiration forgets a series that no data point updated for this long.
	MetricExpiration time.Duration `yaml:"metric_expiration"`
	// ResourceToTelemetryConversion turns every resource attribute into a label on every series.
	ResourceToTelemetryConversion ResourceToTelemetry `yaml:"resource_to_telemetry_conversion"`
	// EnableOpenMetrics serves OpenMetrics to scrapers that ask for it (Accept header).
	EnableOpenMetrics bool `yaml:"enable_open_metrics"`
	// AddMetricSuffixes appends unit suffixes (_seconds, _bytes, _ratio) and _total to counters.
	AddMetricSuffixes bool `yaml:"add_metric_suffixes"`
}

// ResourceToTelemetry is the Collector's resource_to_telemetry_conversion block.
type ResourceToTelemetry struct {
	Enabled bool `yaml:"enabled"`
}

// NewConfig returns the defaults: loopback endpoint, 5m expiry, suffixes on.
func NewConfig() *Config {
	return &Config{
		HTTP:              server.NewHTTP(DefaultEndpoint),
		MetricExpiration:  DefaultMetricExpiration,
		AddMetricSuffixes: true,
	}
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	errs := []error{c.HTTP.Validate()}
	if c.MetricExpiration <= 0 {
		errs = append(errs, fmt.Errorf("metric_expiration: must be > 0, got %s", c.MetricExpiration))
	}
	if c.Namespace != "" && sanitizeMetricName(c.Namespace) != c.Namespace {
		errs = append(errs, fmt.Errorf("namespace: must match [a-zA-Z_:][a-zA-Z0-9_:]*, got %q (try %q)",
			c.Namespace, sanitizeMetricName(c.Namespace)))
	}
	for k := range c.ConstLabels {
		if !validLabelName(k) {
			errs = append(errs, fmt.Errorf("const_labels.%s: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", k))
		}
	}
	return errors.Join(errs...)
}
