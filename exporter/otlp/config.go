package otlp

import (
	"errors"

	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/sender"
)

// Config is the exporter's configuration. Both blocks are inlined, so the keys are otelcol's:
// endpoint, tls, headers, compression, … beside timeout, retry_on_failure, sending_queue.
type Config struct {
	Client client.GRPC   `yaml:",inline"`
	Sender sender.Config `yaml:",inline"`
}

// NewConfig returns the defaults: TLS on, gzip, 5s per attempt, retries and the memory queue on.
// The endpoint has no default and must be set.
func NewConfig() *Config {
	return &Config{Client: client.NewGRPC(), Sender: sender.NewConfig()}
}

// Validate reports every problem, with paths relative to the exporter.
func (c *Config) Validate() error {
	return errors.Join(c.Client.Validate(), c.Sender.Validate())
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m (component.AckPointer).
func (c *Config) AckPoint(m component.AckMode) string { return c.Sender.AckPoint(m) }
