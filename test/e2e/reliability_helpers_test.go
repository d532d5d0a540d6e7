//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// relConfig is the agent of the reliability scenarios: OTLP/gRPC in, optional processors, one
// exporter (otlp or otlphttp) to the faultsink, with the sending queue under test.
type relConfig struct {
	grpc, telemetry string
	http, rw        string // the OTLP/HTTP and remote-write receivers' endpoints ("" none)
	signal          string // the pipeline's signal (default traces)
	receivers       string // the pipeline's receivers (default otlp)
	exporter        string // "otlp" (default), "otlphttp" or "prometheusremotewrite"
	extraExporters  string // YAML of more exporters' entries, indented 2 (their ids go in exporterList)
	exporterList    string // the pipeline's exporters (default: exporter)
	acks            string // the pipeline's acknowledgements ("" not set)
	exporterAcks    string // the exporter's acknowledgements ("" not set)
	sink            *faultSink
	processors      string // YAML of the processors section's entries, indented 2; "" none
	pipeline        string // processor ids, e.g. "memory_limiter"
	retry           string // retry_on_failure flow map
	queue           string // sending_queue flow map
	timeout         string // per attempt
}

func newRelConfig(t *testing.T, sink *faultSink, queue string) *relConfig {
	return &relConfig{
		grpc: freeAddr(t), telemetry: freeAddr(t), exporter: "otlp", sink: sink, queue: queue,
		// Retry forever, quickly: every scenario ends with the sink healthy and expects
		// everything acknowledged to arrive; unhealthy_after shows an outage on /readyz.
		retry:   "{enabled: true, initial_interval: 50ms, max_interval: 500ms, max_elapsed_time: 0, unhealthy_after: 2s}",
		timeout: "2s",
	}
}

func (c *relConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: %s\n        max_recv_msg_size_mib: 64\n", c.grpc)
	if c.http != "" {
		fmt.Fprintf(&b, "      http:\n        endpoint: %s\n", c.http)
	}
	if c.rw != "" {
		fmt.Fprintf(&b, "  prometheusremotewrite:\n    endpoint: %s\n", c.rw)
	}
	if c.processors != "" {
		fmt.Fprintf(&b, "processors:\n%s\n", strings.TrimRight(c.processors, "\n"))
	}
	endpoint := c.sink.grpc
	switch c.exporter {
	case "otlphttp":
		endpoint = "http://" + c.sink.http
	case "prometheusremotewrite":
		endpoint = "http://" + c.sink.http + "/api/v1/write"
	}
	fmt.Fprintf(&b, "exporters:\n  %s:\n    endpoint: %s\n", c.exporter, endpoint)
	if c.exporter == "otlp" {
		b.WriteString("    tls: {insecure: true}\n")
	}
	if c.exporterAcks != "" {
		fmt.Fprintf(&b, "    acknowledgements: %s\n", c.exporterAcks)
	}
	fmt.Fprintf(&b, "    timeout: %s\n    retry_on_failure: %s\n    sending_queue: %s\n", c.timeout, c.retry, c.queue)
	if c.extraExporters != "" {
		b.WriteString(strings.TrimRight(c.extraExporters, "\n") + "\n")
	}
	signal, receivers, exporters := c.signal, c.receivers, c.exporterList
	if signal == "" {
		signal = "traces"
	}
	if receivers == "" {
		receivers = "otlp"
	}
	if exporters == "" {
		exporters = c.exporter
	}
	acks := ""
	if c.acks != "" {
		acks = ", acknowledgements: " + c.acks
	}
	fmt.Fprintf(&b, "service:\n  pipelines:\n    %s: {receivers: [%s], processors: [%s], exporters: [%s]%s}\n", signal, receivers, c.pipeline, exporters, acks)
	fmt.Fprintf(&b, "  telemetry:\n    logs: {level: info, encoding: json}\n    metrics: {address: %s}\n", c.telemetry)
	return b.String()
}

// startRelVigil runs vigil on c and waits until it is alive (/healthz 200) and, if ready, ready
// (/readyz 200). A vigil restarted while its backend is down is alive but rightly not ready.
func startRelVigil(t *testing.T, name string, c *relConfig, ready bool, args ...string) *vigil {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"run", "--config", path}, args...)
	v := &vigil{process: startProcess(t, name, binary(t, "VIGIL_BIN"), args...), telemetry: c.telemetry}
	url := "http://" + c.telemetry + "/healthz"
	if ready {
		url = "http://" + c.telemetry + "/readyz"
	}
	waitHTTP(t, v.process, url, 30*time.Second)
	addr := c.grpc
	if c.receivers != "" && !strings.Contains(c.receivers, "otlp") {
		addr = c.rw // the pipeline takes remote write only: the OTLP receiver is not created
	}
	waitTCP(t, v.process, addr, 10*time.Second)
	return v
}

// stopCleanExcept is stopClean for a scenario that makes vigil log some errors on purpose:
// lines containing one of expected are allowed.
func (v *vigil) stopCleanExcept(t *testing.T, expected ...string) {
	t.Helper()
	if code := v.stop(30 * time.Second); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0", v.name, code)
	}
next:
	for line := range strings.SplitSeq(v.output(), "\n") {
		if !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		for _, e := range expected {
			if strings.Contains(line, e) {
				continue next
			}
		}
		t.Errorf("%s logged an error: %s", v.name, line)
	}
}

// exporterCounts reads the exporter's item counters from /metrics.
type exporterCounts struct {
	received, sent, failed, dropped, retries float64
}

func readExporterCounts(t *testing.T, v *vigil, exporter string) exporterCounts {
	t.Helper()
	s := scrape(t, v.telemetry)
	m := map[string]string{"kind": "exporter", "component": exporter}
	return exporterCounts{
		received: sum(s, "vigil_component_received_items_total", m),
		sent:     sum(s, "vigil_component_sent_items_total", m),
		failed:   sum(s, "vigil_component_failed_items_total", m),
		dropped:  sum(s, "vigil_component_dropped_items_total", m),
		retries:  sum(s, "vigil_exporter_retries_total", nil),
	}
}

// metricSum adds every sample of name (any labels).
func metricSum(t *testing.T, v *vigil, name string) float64 {
	t.Helper()
	return sum(scrape(t, v.telemetry), name, nil)
}

// metricNames lists the vigil_ metric names containing part, for failure messages.
func metricNames(t *testing.T, v *vigil, part string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, s := range scrape(t, v.telemetry) {
		if strings.Contains(s.name, part) && !seen[s.name] {
			seen[s.name] = true
			out = append(out, s.name)
		}
	}
	return out
}

// walFiles lists the regular files under dir (recursively), for corruption and reports.
func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// dirSize is the bytes held by regular files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range walFiles(t, dir) {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// within polls cond every 100ms for up to timeout; it reports whether cond became true.
func within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
