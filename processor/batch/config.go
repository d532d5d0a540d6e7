package batchprocessor

import (
	"errors"
	"fmt"
	"time"
)

// Config is the batch processor's configuration, with the OpenTelemetry Collector's key names.
// The Collector's metadata_keys is not supported: batches carry no client metadata to group by.
type Config struct {
	// SendBatchSize is the item count (spans, data points, log records) that triggers a send. It
	// is a trigger, not a cap: a send carries everything pending.
	SendBatchSize uint32 `yaml:"send_batch_size"`
	// SendBatchMaxSize caps the items of one outgoing batch; bigger ones are split. 0: no cap.
	SendBatchMaxSize uint32 `yaml:"send_batch_max_size"`
	// SendBatchMaxBytes (Vigil's) caps the encoded protobuf size of one outgoing batch; bigger
	// ones are split (batch.SplitBytes: encoded data at resource boundaries, without decoding).
	// 0: no cap, the default, as the Collector's batch processor has none. A default here would
	// change what configs taken from the Collector send, and would guess at a limit only the
	// exporter knows: the OTLP/gRPC exporter caps its requests to fit gRPC's 4 MiB receive limit
	// (max_request_bytes) and splits what a backend refuses as too large, within one send
	// attempt. This cap is for a bound every exporter of the pipeline must see, or a buffer
	// whose batches must stay small.
	SendBatchMaxBytes uint32 `yaml:"send_batch_max_bytes"`
	// Timeout is how long the first pending item waits at most before a send. 0 sends every batch
	// at once (split by SendBatchMaxSize if set).
	Timeout time.Duration `yaml:"timeout"`
	// IdleTimeout (Vigil's): while a client waits for the acknowledgement of pending data, send
	// once no batch arrived for this long, rather than wait for the size or the timeout. A client
	// waiting for its answer sends nothing more; lingering for others pays only while data keeps
	// arriving. 0 turns it off. Unset (AutoIdle): adaptive, twice the recent gap between batches
	// (not counting the time clients spent waiting for an answer), within [MinAutoIdle,
	// min(timeout/10, MaxAutoIdle)].
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// AutoIdle is IdleTimeout when the config does not set it: the processor adapts it.
const AutoIdle time.Duration = -1

// The bounds of the adaptive idle timeout.
const (
	MinAutoIdle = time.Millisecond
	MaxAutoIdle = 20 * time.Millisecond
)

// NewConfig returns the defaults: the Collector's 8192 items or 200ms, no cap; the idle timeout
// adaptive.
func NewConfig() *Config {
	return &Config{SendBatchSize: 8192, Timeout: 200 * time.Millisecond, IdleTimeout: AutoIdle}
}

// idleBounds is the range the idle timeout moves in: one value when it is fixed, [0, 0] when
// it is off.
func (c *Config) idleBounds() (lo, hi time.Duration) {
	if c.IdleTimeout != AutoIdle {
		return c.IdleTimeout, c.IdleTimeout
	}
	hi = min(c.Timeout/10, MaxAutoIdle)
	return min(MinAutoIdle, hi), hi
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	if c.SendBatchMaxSize > 0 && c.SendBatchMaxSize < c.SendBatchSize {
		errs = append(errs, fmt.Errorf("send_batch_max_size: must be 0 (no cap) or ≥ send_batch_size (%d), got %d",
			c.SendBatchSize, c.SendBatchMaxSize))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must be ≥ 0, got %s", c.Timeout))
	}
	if c.IdleTimeout < 0 && c.IdleTimeout != AutoIdle {
		errs = append(errs, fmt.Errorf("idle_timeout: must be ≥ 0, got %s", c.IdleTimeout))
	}
	return errors.Join(errs...)
}

// MaxHold is the longest a batch waits in the processor before it is sent (component.Holding):
// timeout, or nothing when timeout is 0 (every batch is sent at once).
func (c *Config) MaxHold() time.Duration { return c.Timeout }
