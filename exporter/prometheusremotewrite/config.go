package prometheusremotewrite

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/sender"
)

// Protocol versions and body compressions.
const (
	ProtocolV1 = "1.0"
	ProtocolV2 = "2.0"

	Snappy = "snappy"
	Zstd   = "zstd"
)

// Config is the exporter's configuration.
type Config struct {
	// Client is the HTTP client; endpoint is the full write URL
	// (http://prometheus:9090/api/v1/write). Compression is snappy (the only one remote write
	// defines) or zstd, which VictoriaMetrics also accepts.
	Client client.HTTP   `yaml:",inline"`
	Sender sender.Config `yaml:",inline"`
	// Protocol is the remote-write version spoken: "1.0" (default) or "2.0".
	Protocol string `yaml:"protocol"`
	// ExternalLabels are added to every series that does not have the label already.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// Shards control parallel sending.
	Shards ShardsConfig `yaml:"shards"`
	// Translation applies to metrics that did not arrive as Prometheus data (OTLP).
	Namespace                     string       `yaml:"namespace"`
	AddMetricSuffixes             bool         `yaml:"add_metric_suffixes"`
	ResourceToTelemetryConversion EnabledBlock `yaml:"resource_to_telemetry_conversion"`
	TargetInfo                    EnabledBlock `yaml:"target_info"`
}

// EnabledBlock is an `{enabled: bool}` block, as otelcol writes these switches.
type EnabledBlock struct {
	Enabled bool `yaml:"enabled"`
}

// ShardsConfig bounds the number of parallel senders. Series are hashed to shards, so a series'
// samples always go through one shard in order; the count moves between Min and Max following
// the measured send rate against the incoming rate, as Prometheus's queue manager does.
type ShardsConfig struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
	// MaxSamplesPerSend caps samples (and histogram samples) per request.
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// ReshardInterval is how often the shard count is reconsidered.
	ReshardInterval time.Duration `yaml:"reshard_interval"`
}

// DefaultQueueBytes bounds the default memory queue: about 140 000 typical samples, minutes of
// a sidecar's scrapes but a fraction of a second of a saturated relay (whose clients are then
// told to back off). Longer outages are what the persistent queue is for.
const DefaultQueueBytes = 32 << 20

// NewConfig returns the defaults: remote write 1.0, snappy, 1–50 shards of up to 2000 samples
// per request (Prometheus's defaults), retries and a memory queue of DefaultQueueBytes.
func NewConfig() *Config {
	c := client.NewHTTP()
	c.Compression = Snappy
	s := sender.NewConfig()
	s.Timeout = 30 * time.Second
	s.Queue.NumConsumers = 1
	// Remote-write batches are large and vary widely in size: bound the queue in bytes
	// (uncompressed), not in batches, so that a backend outage cannot exhaust memory.
	s.Queue.Sizer = queue.SizeBytes
	s.Queue.QueueSize = DefaultQueueBytes
	return &Config{
		Client:            c,
		Sender:            s,
		Protocol:          ProtocolV1,
		Shards:            ShardsConfig{Min: 1, Max: 50, MaxSamplesPerSend: 2000, ReshardInterval: 10 * time.Second},
		AddMetricSuffixes: true,
		TargetInfo:        EnabledBlock{Enabled: true},
	}
}

// Validate reports every problem, with paths relative to the exporter.
func (c *Config) Validate() error {
	cl := c.Client
	comp := cl.Compression
	cl.Compression = client.None // the client block only knows the OTLP compressions
	errs := []error{cl.Validate(), c.Sender.Validate()}
	if c.Client.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: required: the remote-write URL, e.g. http://prometheus:9090/api/v1/write"))
	}
	switch comp {
	case Snappy, Zstd:
	default:
		errs = append(errs, fmt.Errorf("compression: must be snappy or zstd, got %q", string(comp)))
	}
	switch c.Protocol {
	case ProtocolV1, ProtocolV2:
	default:
		errs = append(errs, fmt.Errorf("protocol: must be %q or %q, got %q", ProtocolV1, ProtocolV2, c.Protocol))
	}
	if c.Protocol == ProtocolV2 && comp != Snappy {
		errs = append(errs, errors.New("compression: remote write 2.0 is snappy only"))
	}
	if c.Sender.Queue.Enabled && c.Sender.Queue.NumConsumers != 1 {
		errs = append(errs, fmt.Errorf("sending_queue.num_consumers: must be 1, got %d: batches are sent one after the other to keep each series in order; parallelism comes from shards", c.Sender.Queue.NumConsumers))
	}
	for _, k := range slices.Sorted(maps.Keys(c.ExternalLabels)) {
		switch {
		case !promrw.ValidLabelName([]byte(k)):
			errs = append(errs, fmt.Errorf("external_labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", k))
		case k == "__name__":
			errs = append(errs, errors.New("external_labels: __name__ cannot be an external label"))
		case c.ExternalLabels[k] == "":
			errs = append(errs, fmt.Errorf("external_labels.%s: value must not be empty (an empty label is no label)", k))
		}
	}
	s := c.Shards
	if s.Min < 1 {
		errs = append(errs, fmt.Errorf("shards.min: must be >= 1, got %d", s.Min))
	}
	if s.Max < s.Min {
		errs = append(errs, fmt.Errorf("shards.max: must be >= shards.min (%d), got %d", s.Min, s.Max))
	}
	if s.MaxSamplesPerSend < 1 {
		errs = append(errs, fmt.Errorf("shards.max_samples_per_send: must be >= 1, got %d", s.MaxSamplesPerSend))
	}
	if s.ReshardInterval <= 0 {
		errs = append(errs, fmt.Errorf("shards.reshard_interval: must be > 0, got %s", s.ReshardInterval))
	}
	return errors.Join(errs...)
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m (component.AckPointer).
func (c *Config) AckPoint(m component.AckMode) string { return c.Sender.AckPoint(m) }
