package sender

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
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
	f("no consumers", func(c *Config) { c.Queue.NumConsumers = 0 }, "sending_queue.num_consumers: must be > 0, got 0")
	f("no room", func(c *Config) { c.Queue.QueueSize = -3 }, "sending_queue.queue_size: must be > 0, got -3")
	f("all at once", func(c *Config) { c.Queue.QueueSize = 0; c.Retry.Multiplier = 0 },
		"sending_queue.queue_size", "retry_on_failure.multiplier")
	f("disabled sections are not checked", func(c *Config) {
		c.Retry = RetryConfig{Enabled: false}
		c.Queue = QueueConfig{Enabled: false}
	})
}

// TestConfigYAML checks the otelcol key names, inline embedding and strict decoding.
func TestConfigYAML(t *testing.T) {
	type exporter struct {
		Endpoint string `yaml:"endpoint"`
		Sender   Config `yaml:",inline"`
	}
	const in = `
endpoint: x:4317
timeout: 7s
retry_on_failure: {enabled: true, initial_interval: 1s, randomization_factor: 0.1, multiplier: 2, max_interval: 9s, max_elapsed_time: 0s}
sending_queue: {enabled: false, num_consumers: 3, queue_size: 50, block_on_overflow: true}
`
	got := exporter{Sender: NewConfig()}
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := exporter{Endpoint: "x:4317", Sender: Config{
		Timeout: 7 * time.Second,
		Retry: RetryConfig{Enabled: true, InitialInterval: time.Second, RandomizationFactor: 0.1, Multiplier: 2,
			MaxInterval: 9 * time.Second, MaxElapsedTime: 0},
		Queue: QueueConfig{Enabled: false, NumConsumers: 3, QueueSize: 50, BlockOnOverflow: true},
	}}
	if got != want {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}

	dec = yaml.NewDecoder(strings.NewReader("sending_queue: {size: 5}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err == nil {
		t.Fatal("unknown key sending_queue.size was accepted")
	}
}
