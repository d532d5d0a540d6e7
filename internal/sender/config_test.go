package sender

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/queue"
)

func TestConfigValidate(t *testing.T) {
	f := func(name string, mutate func(*Config), want ...string) {
		t.Helper()
		c := NewConfig()
		mutate(&c)
		err := c.Validate()
		if len(want) == 0 {
			if err != nil {
				t.Errorf("%s: unexpected error %v", name, err)
			}
			return
		}
		if err == nil {
			t.Errorf("%s: no error, want %q", name, want)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
	f("defaults", func(*Config) {})
	f("negative timeout", func(c *Config) { c.Timeout = -1 }, "timeout: must be >= 0")
	f("zero initial", func(c *Config) { c.Retry.InitialInterval = 0 }, "retry_on_failure.initial_interval: must be > 0")
	f("bad jitter", func(c *Config) { c.Retry.RandomizationFactor = 1.5 }, "retry_on_failure.randomization_factor")
	f("shrinking", func(c *Config) { c.Retry.Multiplier = 0.5 }, "retry_on_failure.multiplier: must be >= 1")
	f("max below initial", func(c *Config) { c.Retry.MaxInterval = time.Second }, "retry_on_failure.max_interval")
	f("negative elapsed", func(c *Config) { c.Retry.MaxElapsedTime = -1 }, "retry_on_failure.max_elapsed_time")
	f("negative unhealthy_after", func(c *Config) { c.Retry.Enabled = false; c.Retry.UnhealthyAfter = -1 },
		"retry_on_failure.unhealthy_after: must be >= 0")
	f("no consumers", func(c *Config) { c.Queue.NumConsumers = 0 }, "sending_queue.num_consumers: must be > 0, got 0")
	f("no room", func(c *Config) { c.Queue.QueueSize = -3 }, "sending_queue.queue_size: must be > 0, got -3")
	f("all at once", func(c *Config) { c.Queue.QueueSize = 0; c.Retry.Multiplier = 0 },
		"sending_queue.queue_size", "retry_on_failure.multiplier")
	f("disabled sections are not checked", func(c *Config) {
		c.Retry = RetryConfig{Enabled: false}
		c.Queue = QueueConfig{Enabled: false, Persistent: true}
	})
	f("bad sizer", func(c *Config) { c.Queue.Sizer = "spans" }, `sending_queue.sizer: must be requests, items or bytes; got "spans"`)
	f("bad when_full", func(c *Config) { c.Queue.WhenFull = "wait" }, `sending_queue.when_full: must be block, drop_oldest or drop_newest; got "wait"`)
	f("block_on_overflow with a drop policy", func(c *Config) { c.Queue.BlockOnOverflow = true; c.Queue.WhenFull = queue.DropOldest },
		"sending_queue.block_on_overflow: true contradicts when_full: drop_oldest")
	f("block_on_overflow with block", func(c *Config) { c.Queue.BlockOnOverflow = true })
	f("negative block_timeout", func(c *Config) { c.Queue.BlockTimeout = -time.Second }, "sending_queue.block_timeout: must be >= 0")
	f("persistent without directory", func(c *Config) { c.Queue.Persistent = true }, "sending_queue.directory: must be set when persistent is true")
	f("persistent", func(c *Config) {
		c.Queue.Persistent = true
		c.Queue.Directory = "/var/lib/vigil/queue"
		c.Queue.MaxSizeMiB = 512
	})
	f("bad fsync", func(c *Config) { c.Queue.Persistent = true; c.Queue.Directory = "d"; c.Queue.Fsync = "never" },
		`sending_queue.fsync: must be always or interval; got "never"`)
	f("fsync interval without one", func(c *Config) {
		c.Queue.Persistent, c.Queue.Directory, c.Queue.Fsync, c.Queue.FsyncInterval = true, "d", queue.FsyncInterval, 0
	}, "sending_queue.fsync_interval: must be > 0 with fsync: interval")
	f("max_size_mib without persistent", func(c *Config) { c.Queue.MaxSizeMiB = 10 }, "sending_queue.max_size_mib: applies to the persistent queue only")
	f("negative max_size_mib", func(c *Config) { c.Queue.Persistent, c.Queue.Directory, c.Queue.MaxSizeMiB = true, "d", -1 },
		"sending_queue.max_size_mib: must be >= 0")
	f("batch defaults", func(c *Config) { b := NewBatchConfig(); c.Queue.Batch = &b })
	f("batch without flush_timeout", func(c *Config) { c.Queue.Batch = &BatchConfig{MinSize: 1} }, "sending_queue.batch.flush_timeout: must be > 0, got 0s")
	f("batch max below min", func(c *Config) { c.Queue.Batch = &BatchConfig{FlushTimeout: time.Second, MinSize: 10, MaxSize: 5} },
		"sending_queue.batch.max_size: must be >= min_size (10) or 0, got 5")
	f("batch by bytes", func(c *Config) { c.Queue.Batch = &BatchConfig{FlushTimeout: time.Second, Sizer: queue.SizeBytes} },
		`sending_queue.batch.sizer: only items is supported, got "bytes"`)
	f("batch min above an items queue", func(c *Config) {
		c.Queue.Sizer = queue.SizeItems
		c.Queue.Batch = &BatchConfig{FlushTimeout: time.Second, MinSize: 5000}
	}, "sending_queue.batch.min_size: must be <= queue_size (1000)")
}

// TestConfigYAML checks the otelcol key names, Vigil's additions, inline embedding and strict
// decoding.
func TestConfigYAML(t *testing.T) {
	type exporter struct {
		Endpoint string `yaml:"endpoint"`
		Sender   Config `yaml:",inline"`
	}
	decode := func(in string) (exporter, error) {
		got := exporter{Sender: NewConfig()}
		dec := yaml.NewDecoder(strings.NewReader(in))
		dec.KnownFields(true)
		err := dec.Decode(&got)
		return got, err
	}
	got, err := decode(`
endpoint: x:4317
timeout: 7s
retry_on_failure: {enabled: true, initial_interval: 1s, randomization_factor: 0.1, multiplier: 2, max_interval: 9s, max_elapsed_time: 0s, unhealthy_after: 1m}
sending_queue:
  enabled: true
  num_consumers: 3
  queue_size: 50000
  sizer: items
  block_on_overflow: true
  when_full: block
  block_timeout: 500ms
  persistent: true
  directory: /var/lib/vigil/queue
  max_size_mib: 256
  fsync: interval
  fsync_interval: 2s
  batch: {min_size: 1000}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := exporter{Endpoint: "x:4317", Sender: Config{
		Timeout: 7 * time.Second,
		Retry: RetryConfig{Enabled: true, InitialInterval: time.Second, RandomizationFactor: 0.1, Multiplier: 2,
			MaxInterval: 9 * time.Second, MaxElapsedTime: 0, UnhealthyAfter: time.Minute},
		Queue: QueueConfig{Enabled: true, NumConsumers: 3, QueueSize: 50000, Sizer: queue.SizeItems, BlockOnOverflow: true,
			WhenFull: queue.Block, BlockTimeout: 500 * time.Millisecond, Persistent: true, Directory: "/var/lib/vigil/queue",
			MaxSizeMiB: 256, Fsync: queue.FsyncInterval, FsyncInterval: 2 * time.Second,
			// Keys left out of batch keep otelcol's defaults.
			Batch: &BatchConfig{FlushTimeout: 200 * time.Millisecond, MinSize: 1000, Sizer: queue.SizeItems}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v %+v\nwant    %+v %+v", got, got.Sender.Queue.Batch, want, want.Sender.Queue.Batch)
	}
	if err := got.Sender.Validate(); err != nil {
		t.Fatal(err)
	}

	// batch: {} turns batching on with the defaults, as in otelcol.
	if got, err := decode("sending_queue: {batch: {}}\n"); err != nil || !reflect.DeepEqual(*got.Sender.Queue.Batch, NewBatchConfig()) {
		t.Fatalf("batch: {} decoded to %+v, %v", got.Sender.Queue.Batch, err)
	}
	if got, _ := decode("sending_queue: {batch: null}\n"); got.Sender.Queue.Batch != nil {
		t.Fatal("batch: null turned batching on")
	}
	for in, wantErr := range map[string]string{
		"sending_queue: {size: 5}\n":            "field size not found",
		"sending_queue: {batch: {size: 5}}\n":   `line 1: unknown field "size" (known: flush_timeout, max_size, min_size, sizer)`,
		"sending_queue: {batch: {min_size: x}}": "cannot unmarshal",
	} {
		if _, err := decode(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want %q", in, err, wantErr)
		}
	}
}
