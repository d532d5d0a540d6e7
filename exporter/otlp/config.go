package otlp

import (
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/sender"
)

// Config is the exporter's configuration. Both blocks are inlined, so the keys are otelcol's:
// endpoint, tls, headers, compression, … beside timeout, retry_on_failure, sending_queue.
type Config struct {
	Client client.GRPC   `yaml:",inline"`
	Sender sender.Config `yaml:",inline"`
	// MaxRequestBytes (Vigil's) caps the encoded size of one request: a bigger batch is cut
	// (at resource boundaries, without decoding) and sent as several requests within one
	// attempt. 0: no cap. Whatever the cap, a request the backend refuses as too large is cut
	// in halves and sent again (Splitter).
	MaxRequestBytes int `yaml:"max_request_bytes"`
}

// NewConfig returns the defaults: TLS on, gzip, 5s per attempt, retries and the memory queue on,
// requests within gRPC's default 4 MiB receive limit. The endpoint has no default and must be
// set.
func NewConfig() *Config {
	return &Config{Client: client.NewGRPC(), Sender: sender.NewConfig(), MaxRequestBytes: DefaultMaxRequestBytes}
}

// Validate reports every problem, with paths relative to the exporter.
func (c *Config) Validate() error {
	var errMax error
	if c.MaxRequestBytes < 0 {
		errMax = fmt.Errorf("max_request_bytes: must be ≥ 0 (0: no cap), got %d", c.MaxRequestBytes)
	}
	return errors.Join(c.Client.Validate(), c.Sender.Validate(), errMax)
}

var _ component.AckPointer = (*Config)(nil)

// AckPoint says what an acknowledgement means in mode m (component.AckPointer).
func (c *Config) AckPoint(m component.AckMode) string { return c.Sender.AckPoint(m) }
