package loki

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/sender"
)

// Config is the exporter's configuration.
type Config struct {
	// Client: endpoint is the push URL (http://loki:3100/loki/api/v1/push); tls, headers,
	// auth (headers: {Authorization: "Bearer ${env:TOKEN}"}, or user:password in the URL).
	Client client.HTTP   `yaml:",inline"`
	Sender sender.Config `yaml:",inline"`
	// TenantID is sent as X-Scope-OrgID (multi-tenant Loki); empty sends none.
	TenantID string `yaml:"tenant_id"`
	// Labels name the attributes that become stream labels; every other attribute is
	// structured metadata.
	Labels LabelsConfig `yaml:"labels"`
	// MaxLabels caps the labels of a stream; attributes beyond it are structured metadata.
	MaxLabels int `yaml:"max_labels"`
	// MaxLabelValues caps the distinct values a label may take within an hour; beyond it the
	// attribute goes to structured metadata for new values (counted, logged once).
	MaxLabelValues int `yaml:"max_label_values"`
	// MaxEntryAge drops entries older than this before sending (Loki refuses them with 400:
	// reject_old_samples_max_age); counted with reason too_old. 0 sends everything.
	MaxEntryAge time.Duration `yaml:"max_entry_age"`
	// MaxRequestBytes cuts a batch into requests of at most this many uncompressed bytes.
	MaxRequestBytes int `yaml:"max_request_bytes"`
}

// LabelsConfig selects the attributes that become labels (dots become underscores).
type LabelsConfig struct {
	Resource   []string `yaml:"resource"`
	Attributes []string `yaml:"attributes"`
}

// DefaultResourceLabels are the resource attributes that become labels unless configured:
// low-cardinality ones, as Loki's OTLP ingestion indexes.
var DefaultResourceLabels = []string{
	"service.name", "service.namespace", "deployment.environment", "k8s.cluster.name",
	"k8s.namespace.name", "k8s.container.name",
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	s := sender.NewConfig()
	s.Timeout = 30 * time.Second
	c := client.NewHTTP()
	c.Compression = "" // the protobuf body is always snappy-compressed
	return &Config{
		Client: c, Sender: s, Labels: LabelsConfig{Resource: DefaultResourceLabels},
		MaxLabels: 15, MaxLabelValues: 1000, MaxEntryAge: 7 * 24 * time.Hour, MaxRequestBytes: 4 << 20,
	}
}

// Validate reports every problem.
func (c *Config) Validate() error {
	errs := []error{c.Client.Validate(), c.Sender.Validate()}
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Client.Endpoint == "" {
		add("endpoint: must be set, e.g. \"http://loki:3100/loki/api/v1/push\"")
	}
	if !c.Client.Compression.IsNone() {
		add("compression: the push body is protobuf compressed with snappy, as Loki wants; leave compression unset (got %q)", c.Client.Compression)
	}
	if c.MaxLabels < 1 || c.MaxLabels > 64 {
		add("max_labels: 1 to 64, got %d", c.MaxLabels)
	}
	if c.MaxLabelValues < 1 {
		add("max_label_values: must be >= 1, got %d", c.MaxLabelValues)
	}
	if c.MaxEntryAge < 0 {
		add("max_entry_age: must be >= 0 (0 sends everything), got %s", c.MaxEntryAge)
	}
	if c.MaxRequestBytes < 1024 {
		add("max_request_bytes: at least 1024, got %d", c.MaxRequestBytes)
	}
	if len(c.Labels.Resource)+len(c.Labels.Attributes) == 0 {
		add("labels: name at least one attribute for stream labels (Loki needs one label per stream)")
	}
	return errors.Join(errs...)
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m.
func (c *Config) AckPoint(m component.AckMode) string { return c.Sender.AckPoint(m) }
