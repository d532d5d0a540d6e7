package sender

import (
	"errors"
	"fmt"
	"time"
)

// Config is the sender block. Exporters embed it inline, so its keys sit at the exporter's top
// level with otelcol's names: timeout, retry_on_failure, sending_queue.
type Config struct {
	// Timeout bounds each attempt (not the whole retry sequence); 0 means no bound.
	Timeout time.Duration `yaml:"timeout"`
	Retry   RetryConfig   `yaml:"retry_on_failure"`
	Queue   QueueConfig   `yaml:"sending_queue"`
}

// RetryConfig is exponential backoff with jitter: the n-th wait is
// min(initial_interval × multiplier^n, max_interval), randomized by ± randomization_factor.
type RetryConfig struct {
	Enabled             bool          `yaml:"enabled"`
	InitialInterval     time.Duration `yaml:"initial_interval"`
	RandomizationFactor float64       `yaml:"randomization_factor"`
	Multiplier          float64       `yaml:"multiplier"`
	MaxInterval         time.Duration `yaml:"max_interval"`
	// MaxElapsedTime gives up on a batch this long after its first attempt; 0 retries forever
	// (until shutdown).
	MaxElapsedTime time.Duration `yaml:"max_elapsed_time"`
}

// QueueConfig is the in-memory sending queue.
type QueueConfig struct {
	Enabled      bool `yaml:"enabled"`
	NumConsumers int  `yaml:"num_consumers"`
	// QueueSize is the capacity in batches.
	QueueSize int `yaml:"queue_size"`
	// BlockOnOverflow makes Consume wait for room instead of refusing when the queue is full.
	BlockOnOverflow bool `yaml:"block_on_overflow"`
}

// NewConfig returns otelcol's exporterhelper defaults: 5s per attempt, retries on for up to
// five minutes, a queue of 1000 batches drained by 10 consumers.
func NewConfig() Config {
	return Config{
		Timeout: 5 * time.Second,
		Retry: RetryConfig{
			Enabled:             true,
			InitialInterval:     5 * time.Second,
			RandomizationFactor: 0.5,
			Multiplier:          1.5,
			MaxInterval:         30 * time.Second,
			MaxElapsedTime:      300 * time.Second,
		},
		Queue: QueueConfig{
			Enabled:      true,
			NumConsumers: 10,
			QueueSize:    1000,
		},
	}
}

// Validate checks the block; paths are relative to the exporter that inlines it. Settings of a
// disabled section are not checked, so that "enabled: false" is all it takes to turn one off.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Timeout < 0 {
		add("timeout: must be >= 0 (0: no timeout), got %s", c.Timeout)
	}
	if r := c.Retry; r.Enabled {
		if r.InitialInterval <= 0 {
			add("retry_on_failure.initial_interval: must be > 0, got %s", r.InitialInterval)
		}
		if r.RandomizationFactor < 0 || r.RandomizationFactor > 1 {
			add("retry_on_failure.randomization_factor: must be from 0 to 1, got %g", r.RandomizationFactor)
		}
		if r.Multiplier < 1 {
			add("retry_on_failure.multiplier: must be >= 1, got %g", r.Multiplier)
		}
		if r.MaxInterval < r.InitialInterval {
			add("retry_on_failure.max_interval: must be >= initial_interval (%s), got %s", r.InitialInterval, r.MaxInterval)
		}
		if r.MaxElapsedTime < 0 {
			add("retry_on_failure.max_elapsed_time: must be >= 0 (0: retry until shutdown), got %s", r.MaxElapsedTime)
		}
	}
	if q := c.Queue; q.Enabled {
		if q.NumConsumers <= 0 {
			add("sending_queue.num_consumers: must be > 0, got %d", q.NumConsumers)
		}
		if q.QueueSize <= 0 {
			add("sending_queue.queue_size: must be > 0, got %d", q.QueueSize)
		}
	}
	return errors.Join(errs...)
}
