package sender

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/queue"
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
	// UnhealthyAfter marks the exporter degraded (/readyz fails) once every attempt has failed
	// for this long; the next success clears it. 0 turns it off. Vigil's addition; it applies
	// whether or not retries are enabled, since it watches attempts, not retries.
	UnhealthyAfter time.Duration `yaml:"unhealthy_after"`
}

// QueueConfig is the sending queue: otelcol's keys plus Vigil's persistence and overflow policy.
type QueueConfig struct {
	Enabled      bool `yaml:"enabled"`
	NumConsumers int  `yaml:"num_consumers"`
	// QueueSize is the capacity, in units of Sizer.
	QueueSize int         `yaml:"queue_size"`
	Sizer     queue.Sizer `yaml:"sizer"`
	// WhenFull says what a full queue does with new data: block (wait up to BlockTimeout, then
	// push back on the client), drop_oldest or drop_newest.
	WhenFull queue.WhenFull `yaml:"when_full"`
	// BlockOnOverflow is otelcol's key; true is the same as when_full: block.
	BlockOnOverflow bool `yaml:"block_on_overflow"`
	// BlockTimeout bounds how long Consume waits for room under block (the caller's context may
	// end it sooner); 0 pushes back at once.
	BlockTimeout time.Duration `yaml:"block_timeout"`

	// Persistent keeps the queue in a write-ahead log under Directory/<component id>, so that
	// acknowledged data survives a crash or restart.
	Persistent    bool              `yaml:"persistent"`
	Directory     string            `yaml:"directory"`
	MaxSizeMiB    int               `yaml:"max_size_mib"`
	Fsync         queue.FsyncPolicy `yaml:"fsync"`
	FsyncInterval time.Duration     `yaml:"fsync_interval"`

	// Batch, when set, makes each consumer merge queued batches before sending; nil: off.
	Batch *BatchConfig `yaml:"batch"`
}

// BatchConfig is queue-level batching, as otelcol's sending_queue.batch, counted in items.
// Writing `batch: {}` turns it on with the defaults, as in otelcol.
type BatchConfig struct {
	// FlushTimeout sends what a consumer holds this long after the first part was taken.
	FlushTimeout time.Duration `yaml:"flush_timeout"`
	// MinSize sends as soon as this many items are held; 0 sends each batch at once.
	MinSize int `yaml:"min_size"`
	// MaxSize caps the items in one request: larger ones are split; 0 means no cap.
	MaxSize int `yaml:"max_size"`
	// Sizer is accepted for otelcol configs; only items is supported.
	Sizer queue.Sizer `yaml:"sizer"`
}

// NewBatchConfig returns otelcol's batch defaults: 200ms, 8192 items, no maximum.
func NewBatchConfig() BatchConfig {
	return BatchConfig{FlushTimeout: 200 * time.Millisecond, MinSize: 8192, Sizer: queue.SizeItems}
}

var batchKeys = []string{"flush_timeout", "max_size", "min_size", "sizer"}

// UnmarshalYAML starts from the defaults, so that keys left out keep otelcol's values. It
// checks for unknown keys itself: the config loader's strict check does not look inside types
// that decode themselves.
func (c *BatchConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var unknown []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(batchKeys, k.Value) {
				unknown = append(unknown, fmt.Sprintf("line %d: unknown field %q (known: %s)", k.Line, k.Value, strings.Join(batchKeys, ", ")))
			}
		}
		if len(unknown) > 0 {
			return &yaml.TypeError{Errors: unknown}
		}
	}
	type plain BatchConfig // without the method, so that Decode does not recurse
	p := plain(NewBatchConfig())
	if err := n.Decode(&p); err != nil {
		return err
	}
	*c = BatchConfig(p)
	return nil
}

// DefaultBlockTimeout is how long a full queue makes Consume wait by default.
const DefaultBlockTimeout = 2 * time.Second

// NewConfig returns otelcol's exporterhelper defaults: 5s per attempt, retries on for up to
// five minutes, a memory queue of 1000 batches drained by 10 consumers; and Vigil's: a full
// queue waits up to 2s for room and then pushes back, 30s of failures degrade health.
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
			UnhealthyAfter:      30 * time.Second,
		},
		Queue: QueueConfig{
			Enabled:       true,
			NumConsumers:  10,
			QueueSize:     1000,
			Sizer:         queue.SizeRequests,
			WhenFull:      queue.Block,
			BlockTimeout:  DefaultBlockTimeout,
			Fsync:         queue.FsyncAlways,
			FsyncInterval: time.Second,
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
	if c.Retry.UnhealthyAfter < 0 {
		add("retry_on_failure.unhealthy_after: must be >= 0 (0: never degrade health), got %s", c.Retry.UnhealthyAfter)
	}
	if q := c.Queue; q.Enabled {
		errs = append(errs, q.validate()...)
	}
	return errors.Join(errs...)
}

func (q *QueueConfig) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("sending_queue."+format, a...)) }
	if q.NumConsumers <= 0 {
		add("num_consumers: must be > 0, got %d", q.NumConsumers)
	}
	if q.QueueSize <= 0 {
		add("queue_size: must be > 0, got %d", q.QueueSize)
	}
	switch q.Sizer {
	case queue.SizeRequests, queue.SizeItems, queue.SizeBytes:
	default:
		add("sizer: must be requests, items or bytes; got %q", q.Sizer)
	}
	switch q.WhenFull {
	case queue.Block, queue.DropOldest, queue.DropNewest:
		if q.BlockOnOverflow && q.WhenFull != queue.Block {
			add("block_on_overflow: true contradicts when_full: %s (block_on_overflow: true means when_full: block)", q.WhenFull)
		}
	default:
		add("when_full: must be block, drop_oldest or drop_newest; got %q", q.WhenFull)
	}
	if q.BlockTimeout < 0 {
		add("block_timeout: must be >= 0 (0: push back at once), got %s", q.BlockTimeout)
	}
	if q.MaxSizeMiB < 0 {
		add("max_size_mib: must be >= 0 (0: no cap beyond queue_size), got %d", q.MaxSizeMiB)
	}
	if q.Persistent {
		if q.Directory == "" {
			add("directory: must be set when persistent is true, e.g. /var/lib/vigil/queue")
		}
		switch q.Fsync {
		case queue.FsyncAlways:
		case queue.FsyncInterval:
			if q.FsyncInterval <= 0 {
				add("fsync_interval: must be > 0 with fsync: interval, got %s", q.FsyncInterval)
			}
		default:
			add("fsync: must be always or interval; got %q", q.Fsync)
		}
	} else if q.MaxSizeMiB > 0 {
		add("max_size_mib: applies to the persistent queue only; bound the memory queue with sizer: bytes and queue_size")
	}
	if b := q.Batch; b != nil {
		if b.FlushTimeout <= 0 {
			add("batch.flush_timeout: must be > 0, got %s", b.FlushTimeout)
		}
		if b.MinSize < 0 {
			add("batch.min_size: must be >= 0, got %d", b.MinSize)
		}
		if b.MaxSize < 0 {
			add("batch.max_size: must be >= 0 (0: no maximum), got %d", b.MaxSize)
		} else if b.MaxSize > 0 && b.MaxSize < b.MinSize {
			add("batch.max_size: must be >= min_size (%d) or 0, got %d", b.MinSize, b.MaxSize)
		}
		if b.Sizer != queue.SizeItems && b.Sizer != "" {
			add("batch.sizer: only items is supported, got %q", b.Sizer)
		}
		if q.Sizer == queue.SizeItems && b.MinSize > q.QueueSize {
			add("batch.min_size: must be <= queue_size (%d) when the queue counts items, or batches wait for flush_timeout; got %d", q.QueueSize, b.MinSize)
		}
	}
	return errs
}

// AckPoint says what an exporter's acknowledgement means in mode m, for `vigil validate`.
func (c *Config) AckPoint(m component.AckMode) string {
	q := c.Queue
	switch {
	case m == component.AckEndToEnd || !q.Enabled:
		point := "the backend accepted the data"
		if !q.Enabled {
			point += " (sending_queue is off: the client waits for delivery and its retries)"
		}
		return point
	case !q.Persistent:
		return "the data is in the exporter's memory sending queue (lost on a crash or kill -9)"
	case q.Fsync == queue.FsyncInterval:
		return fmt.Sprintf("the data is written to the persistent queue in %s (fsynced within %s: safe from a crash, not from a power loss)", q.Directory, q.FsyncInterval)
	}
	return fmt.Sprintf("the data is written to the persistent queue in %s and fsynced", q.Directory)
}
