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
	// QueueConfig is Prometheus's remote_write queue_config: shards (parallel senders) and how
	// much each request accumulates.
	QueueConfig QueueConfig `yaml:"queue_config"`
	// MetadataConfig is Prometheus's remote_write metadata_config (1.0 only; 2.0 carries
	// metadata in each series).
	MetadataConfig MetadataConfig `yaml:"metadata_config"`
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

// QueueConfig bounds the number of parallel senders and says how long data accumulates, with
// Prometheus's key names and defaults. Series are hashed to shards, so a series' samples always
// go through one shard in order; the count moves between MinShards and MaxShards following the
// measured send rate against the incoming rate, as Prometheus's queue manager does.
type QueueConfig struct {
	MinShards int `yaml:"min_shards"`
	MaxShards int `yaml:"max_shards"`
	// MaxSamplesPerSend caps samples (and histogram samples) per request; it is also how much
	// the queue's consumer accumulates before it sends.
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// BatchSendDeadline is the longest data waits for MaxSamplesPerSend to accumulate: many
	// small batches (one per scrape) leave as one request per shard. 0 sends every batch as it
	// comes. Needs the sending queue (without it, each caller's batch is sent at once).
	BatchSendDeadline time.Duration `yaml:"batch_send_deadline"`
	// ReshardInterval (Vigil's) is how often the shard count is reconsidered.
	ReshardInterval time.Duration `yaml:"reshard_interval"`
}

// MetadataConfig is how 1.0 sends metric metadata (type, help, unit): in requests of their own,
// every SendInterval and when new metric families appear, rather than after every batch.
type MetadataConfig struct {
	Send              bool          `yaml:"send"`
	SendInterval      time.Duration `yaml:"send_interval"`
	MaxSamplesPerSend int           `yaml:"max_samples_per_send"`
}

// DefaultQueueBytes bounds the default memory queue: about 140 000 typical samples, minutes of
// a sidecar's scrapes but a fraction of a second of a saturated relay (whose clients are then
// told to back off). Longer outages are what the persistent queue is for.
const DefaultQueueBytes = 32 << 20

// NewConfig returns the defaults: remote write 1.0, snappy, 1–50 shards of up to 2000 samples
// per request accumulated for up to 5s, metadata every minute (Prometheus's defaults), retries
// and a memory queue of DefaultQueueBytes.
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
		Client:   c,
		Sender:   s,
		Protocol: ProtocolV1,
		QueueConfig: QueueConfig{MinShards: 1, MaxShards: 50, MaxSamplesPerSend: 2000,
			BatchSendDeadline: 5 * time.Second, ReshardInterval: 10 * time.Second},
		MetadataConfig:    MetadataConfig{Send: true, SendInterval: time.Minute, MaxSamplesPerSend: 2000},
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
	q := c.QueueConfig
	if q.MinShards < 1 {
		errs = append(errs, fmt.Errorf("queue_config.min_shards: must be >= 1, got %d", q.MinShards))
	}
	if q.MaxShards < q.MinShards {
		errs = append(errs, fmt.Errorf("queue_config.max_shards: must be >= queue_config.min_shards (%d), got %d", q.MinShards, q.MaxShards))
	}
	if q.MaxSamplesPerSend < 1 {
		errs = append(errs, fmt.Errorf("queue_config.max_samples_per_send: must be >= 1, got %d", q.MaxSamplesPerSend))
	}
	if q.BatchSendDeadline < 0 {
		errs = append(errs, fmt.Errorf("queue_config.batch_send_deadline: must be >= 0 (0: send each batch at once), got %s", q.BatchSendDeadline))
	}
	if q.ReshardInterval <= 0 {
		errs = append(errs, fmt.Errorf("queue_config.reshard_interval: must be > 0, got %s", q.ReshardInterval))
	}
	if m := c.MetadataConfig; m.Send {
		if m.SendInterval <= 0 {
			errs = append(errs, fmt.Errorf("metadata_config.send_interval: must be > 0, got %s", m.SendInterval))
		}
		if m.MaxSamplesPerSend < 1 {
			errs = append(errs, fmt.Errorf("metadata_config.max_samples_per_send: must be >= 1, got %d", m.MaxSamplesPerSend))
		}
	}
	return errors.Join(errs...)
}

// senderConfig is the sender block with queue batching set from queue_config unless
// sending_queue.batch is set: the queue's single
// consumer merges batches (concatenating their bytes, in order) until max_samples_per_send or
// batch_send_deadline, so that a scrape does not leave as a request of its own.
func (c *Config) senderConfig() sender.Config {
	s := c.Sender
	// An explicit sending_queue.batch (an OpenTelemetry Collector config) is used as written.
	if s.Queue.Enabled && s.Queue.Batch == nil && c.QueueConfig.BatchSendDeadline > 0 {
		s.Queue.Batch = &sender.BatchConfig{
			FlushTimeout: c.QueueConfig.BatchSendDeadline,
			MinSize:      c.QueueConfig.MaxSamplesPerSend,
			Sizer:        queue.SizeItems,
		}
	}
	return s
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m (component.AckPointer).
func (c *Config) AckPoint(m component.AckMode) string {
	p := c.Sender.AckPoint(m)
	if b := c.senderConfig().Queue.Batch; m == component.AckEndToEnd && c.Sender.Queue.Enabled && b != nil {
		p += fmt.Sprintf(" (requests accumulate up to %d samples or for up to %s first)", b.MinSize, b.FlushTimeout)
	}
	return p
}
