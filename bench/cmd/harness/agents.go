package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilhq/vigil/bench/internal/benchutil"
)

// ports are the addresses of one run.
type ports struct {
	listen    string // the agent's OTLP/gRPC receiver
	sink      string // the sink's OTLP/gRPC server, where the agent exports
	sinkHTTP  string // the sink's /count
	telemetry string // the agent's own metrics (and Vigil's /readyz)
}

// agent is a relay under test. The two configs are kept equivalent: the same receiver, batch
// size and timeout, the same compression on the export hop, the exporter's sending queue at its
// defaults (10 consumers, 1000 requests), no memory limiter unless -memory-limit-mib, logs at
// warn, self-metrics on. One difference stays, by design of each: when the sending queue is full,
// Vigil blocks (up to 2s, then pushes back), the Collector drops (block_on_overflow: false); the
// loss column shows it if it happens.
type agent struct {
	name     string
	bin      string
	args     func(cfgPath string) []string
	validate func(cfgPath string) []string // the arguments that check a config without running it
	config   func(o options, c testCase, p ports, dir string) (string, error)
	ready    func(p ports, timeout time.Duration) error
	supports func(c testCase) bool
	version  func() string
}

func vigilAgent(bin string) agent {
	return agent{
		name:     "vigil",
		bin:      bin,
		args:     func(cfg string) []string { return []string{"run", "--config", cfg} },
		validate: func(cfg string) []string { return []string{"validate", "--config", cfg} },
		config:   vigilConfig,
		ready: func(p ports, timeout time.Duration) error {
			return benchutil.WaitHTTP("http://"+p.telemetry+"/readyz", timeout)
		},
		supports: func(testCase) bool { return true },
		version:  func() string { return commandOutput(bin, "version") },
	}
}

func otelcolAgent(bin string) agent {
	return agent{
		name:     "otelcol",
		bin:      bin,
		args:     func(cfg string) []string { return []string{"--config", "file:" + cfg} },
		validate: func(cfg string) []string { return []string{"validate", "--config", "file:" + cfg} },
		config:   otelcolConfig,
		// The Collector starts its receivers last, after the pipelines behind them: once the
		// OTLP port accepts, the relay is ready.
		ready: func(p ports, timeout time.Duration) error { return waitTCP(p.listen, timeout) },
		// Its persistent queue needs the file_storage extension, which is not in core.
		supports: func(c testCase) bool { return c.queue == "memory" },
		version:  func() string { return commandOutput(bin, "--version") },
	}
}

// preflight has every agent check each config it will run, so that a config the agent refuses
// fails the harness at once and not minutes into the run.
func preflight(o options, agents []agent, dir string) error {
	p := ports{listen: "127.0.0.1:4317", sink: "127.0.0.1:4318", sinkHTTP: "127.0.0.1:4319", telemetry: "127.0.0.1:4320"}
	seen := map[string]bool{}
	for _, c := range o.cases() {
		for _, a := range agents {
			if !a.supports(c) {
				continue
			}
			cfg, err := a.config(o, c, p, dir)
			if err != nil {
				return err
			}
			if seen[a.name+cfg] {
				continue
			}
			seen[a.name+cfg] = true
			path := filepath.Join(dir, "preflight-"+a.name+".yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				return err
			}
			if out, err := exec.Command(a.bin, a.validate(path)...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s refuses its config for %s: %w\n%s\nconfig:\n%s", a.name, c, err, out, cfg)
			}
		}
	}
	return nil
}

func commandOutput(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s (%v)", bin, err)
	}
	return strings.TrimSpace(string(out))
}

func waitTCP(addr string, timeout time.Duration) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c.Close()
		}
	}
	return err
}

// processors is the processor section and the pipeline's processor list, the same for both.
func processors(o options) (section, list string) {
	section = fmt.Sprintf("  batch:\n    send_batch_size: %d\n    timeout: %s\n", o.batchSize, o.batchTimeout)
	list = "[batch]"
	if o.memLimitMiB > 0 {
		section = fmt.Sprintf("  memory_limiter:\n    check_interval: 1s\n    limit_mib: %d\n", o.memLimitMiB) + section
		list = "[memory_limiter, batch]"
	}
	return section, list
}

// vigilConfig is the relay under test. With the memory queue a batch processor batches in front
// of the exporter (the usual setup); with a WAL the exporter's queue batches, after the WAL, as
// Vigil recommends, so that nothing acknowledged sits outside the WAL.
func vigilConfig(o options, c testCase, p ports, dir string) (string, error) {
	procSection, procList := processors(o)
	queueCfg := ""
	switch c.queue {
	case "memory":
	case "wal", "wal-interval":
		fsync := "always"
		if c.queue == "wal-interval" {
			fsync = "interval"
		}
		procList = "[]"
		if o.memLimitMiB > 0 {
			procList = "[memory_limiter]"
		}
		queueCfg = fmt.Sprintf(`
    sending_queue:
      persistent: true
      directory: %s
      fsync: %s
      queue_size: 100000
      batch: {min_size: %d, flush_timeout: %s}`, dir+"/wal", fsync, o.batchSize, o.batchTimeout)
	default:
		return "", fmt.Errorf("unknown queue mode %q (want memory, wal or wal-interval)", c.queue)
	}
	acks := ""
	if o.acks != "" {
		acks = "\n      acknowledgements: " + o.acks
	}
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
%sexporters:
  otlp:
    endpoint: %s
    tls:
      insecure: true
    compression: %s%s
service:
  pipelines:
    %s:
      receivers: [otlp]
      processors: %s
      exporters: [otlp]%s
  telemetry:
    logs:
      level: warn
    metrics:
      address: %s
`, p.listen, procSection, p.sink, c.compression, queueCfg, c.signal, procList, acks, p.telemetry), nil
}

// otelcolConfig is the Collector's equivalent of vigilConfig's memory-queue relay. Its OTLP/gRPC
// exporter is called otlp_grpc since v0.14x (otlp is a deprecated alias).
func otelcolConfig(o options, c testCase, p ports, _ string) (string, error) {
	if c.queue != "memory" {
		return "", fmt.Errorf("otelcol: queue mode %q is measured for vigil only", c.queue)
	}
	procSection, procList := processors(o)
	host, port, err := net.SplitHostPort(p.telemetry)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
%sexporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
    compression: %s
service:
  pipelines:
    %s:
      receivers: [otlp]
      processors: %s
      exporters: [otlp_grpc]
  telemetry:
    logs:
      level: warn
      encoding: json
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: %s
                port: %s
`, p.listen, procSection, p.sink, c.compression, c.signal, procList, host, port), nil
}
