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
	// Timeout is how long the first pending item waits at most before a send. 0 sends every batch
	// at once (split by SendBatchMaxSize if set).
	Timeout time.Duration `yaml:"timeout"`
}

// NewConfig returns the defaults: the Collector's 8192 items or 200ms, no cap.
func NewConfig() *Config {
	return &Config{SendBatchSize: 8192, Timeout: 200 * time.Millisecond}
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
	return errors.Join(errs...)
}

// MaxHold is the longest a batch waits in the processor before it is sent (component.Holding):
// timeout, or nothing when timeout is 0 (every batch is sent at once).
func (c *Config) MaxHold() time.Duration { return c.Timeout }
