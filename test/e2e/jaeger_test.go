//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jaegerConfig is Jaeger v2 (v1.76.0) as an OTLP/gRPC collector with in-memory storage and the
// query service. Its own metrics are off so that it binds no default port (8888), and so is the
// query service's self-tracing, which would export to 127.0.0.1:4317 (whatever listens there) and
// hold shutdown for 10 s trying to flush.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      e2e_store:
        memory:
          max_traces: 100000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: e2e_store
    http:
      endpoint: %[2]s
    grpc:
      endpoint: %[3]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  jaeger_storage_exporter:
    trace_storage: e2e_store
`

const jaegerVigil = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  batch:
    send_batch_size: 100
    timeout: 200ms
exporters:
  otlp/jaeger:
    endpoint: %[2]s
    tls: {insecure: true}
    compression: zstd
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/jaeger]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[3]s}
`

// jaegerTraces is the part of Jaeger's /api/traces answer the test reads.
type jaegerTraces struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID string `json:"spanID"`
			Tags   []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
	} `json:"data"`
}

// TestJaeger sends telemetrygen traces through vigil to Jaeger v2 over OTLP/gRPC (zstd) and finds
// every span through Jaeger's query API.
func TestJaeger(t *testing.T) {
	jOTLP, jHTTP, jGRPC := freeAddr(t), freeAddr(t), freeAddr(t)
	vGRPC, vTel := freeAddr(t), freeAddr(t)

	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, jOTLP, jHTTP, jGRPC), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	jaeger := startProcess(t, "jaeger", binary(t, "JAEGER_BIN"), "--config", cfg)
	waitHTTP(t, jaeger, "http://"+jHTTP+"/api/services", 60*time.Second)
	waitTCP(t, jaeger, jOTLP, 30*time.Second)
	t.Logf("jaeger ready in %s", time.Since(start).Round(time.Millisecond))

	v := startVigil(t, "vigil", fmt.Sprintf(jaegerVigil, vGRPC, jOTLP, vTel), vTel)

	id := runID(t)
	service := "e2e-jaeger-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const traces, children, workers = 20, 3, 2
	const wantTraces, wantSpans = traces * workers, traces * workers * (1 + children)
	runTelemetrygen(t, "traces", "--traces", strconv.Itoa(traces), "--child-spans", strconv.Itoa(children),
		"--workers", strconv.Itoa(workers), "--rate", "0", "--otlp-insecure", "--otlp-endpoint", vGRPC,
		"--service", service, "--telemetry-attributes", fmt.Sprintf("e2e.run=%q", id))

	sent := time.Now()
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(10 * wantTraces)}, "lookback": {"1h"}}
	var got jaegerTraces
	eventually(t, 60*time.Second, func() error {
		resp, err := httpClient.Get("http://" + jHTTP + "/api/traces?" + q.Encode())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("jaeger query: %s: %s", resp.Status, body)
		}
		got = jaegerTraces{}
		if err := json.Unmarshal(body, &got); err != nil {
			return err
		}
		n := 0
		for _, tr := range got.Data {
			n += len(tr.Spans)
		}
		if n < wantSpans {
			return fmt.Errorf("jaeger has %d of %d spans of service %s", n, wantSpans, service)
		}
		return nil
	})

	t.Logf("jaeger returned all %d spans %s after they were sent", wantSpans, time.Since(sent).Round(time.Millisecond))
	spans := map[string]bool{}
	for _, tr := range got.Data {
		if len(tr.Spans) != 1+children {
			t.Errorf("trace %s has %d spans, want %d", tr.TraceID, len(tr.Spans), 1+children)
		}
		for _, sp := range tr.Spans {
			k := tr.TraceID + "/" + sp.SpanID
			if spans[k] {
				t.Errorf("span %s stored twice", k)
			}
			spans[k] = true
			found := false
			for _, tag := range sp.Tags {
				if tag.Key == "e2e.run" && tag.Value == id {
					found = true
				}
			}
			if !found {
				t.Fatalf("span %s lacks tag e2e.run=%s: %v", k, id, sp.Tags)
			}
		}
	}
	if len(got.Data) != wantTraces || len(spans) != wantSpans {
		t.Errorf("jaeger has %d traces and %d spans, want %d and %d", len(got.Data), len(spans), wantTraces, wantSpans)
	}

	v.stopClean(t)
	stopping := time.Now()
	if code := jaeger.stop(30 * time.Second); code != 0 {
		t.Errorf("jaeger exited %d after SIGTERM", code)
	}
	t.Logf("jaeger stopped in %s", time.Since(stopping).Round(time.Millisecond))
}

const jaegerBurstVigil = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  batch:
    send_batch_size: 100000
    timeout: 3s
exporters:
  otlp/jaeger:
    endpoint: %[2]s
    tls: {insecure: true}
    compression: zstd
    max_request_bytes: %[4]d
    # Clients are answered at once, so that telemetrygen's whole burst gathers in the batch
    # processor, as the requests of many clients would.
    acknowledgements: none
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/jaeger]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[3]s}
`

// TestJaegerBurstOverGRPCLimit: a burst of 1 950 traces (3 900 spans of about 1.2 KB) arrives
// within one batch timeout and is merged into one 4.7 MB batch, more than Jaeger's OTLP receiver
// takes (gRPC's default 4 MiB, after decompression). With the default max_request_bytes Vigil
// cuts it before sending; with no cap Jaeger refuses it as too large and Vigil sends halves.
// Either way Jaeger stores every span once and Vigil drops nothing.
func TestJaegerBurstOverGRPCLimit(t *testing.T) {
	jOTLP, jHTTP, jGRPC := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, jOTLP, jHTTP, jGRPC), 0o600); err != nil {
		t.Fatal(err)
	}
	jaeger := startProcess(t, "jaeger", binary(t, "JAEGER_BIN"), "--config", cfg)
	waitHTTP(t, jaeger, "http://"+jHTTP+"/api/services", 60*time.Second)
	waitTCP(t, jaeger, jOTLP, 30*time.Second)
	pad := strings.Repeat("p", 1000)
	for _, tc := range []struct {
		name     string
		maxBytes int
		reason   string
	}{
		{"default max_request_bytes", 4_000_000, "max_request_bytes"},
		{"no cap", 0, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vGRPC, vTel := freeAddr(t), freeAddr(t)
			v := startVigil(t, "vigil", fmt.Sprintf(jaegerBurstVigil, vGRPC, jOTLP, vTel, tc.maxBytes), vTel)
			service := "e2e-burst-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			// Throttled so that telemetrygen's own span queue (2048) drops nothing: the burst
			// still takes well under the batch timeout.
			const workers, perWorker = 3, 650
			const traces, wantSpans = workers * perWorker, 2 * workers * perWorker
			runTelemetrygen(t, "traces", "--traces", strconv.Itoa(perWorker), "--child-spans", "1",
				"--workers", strconv.Itoa(workers), "--rate", "1000", "--otlp-insecure", "--otlp-endpoint", vGRPC, "--service", service,
				"--telemetry-attributes", fmt.Sprintf("pad=%q", pad))
			q := url.Values{"service": {service}, "limit": {strconv.Itoa(10 * traces)}, "lookback": {"1h"}}
			spans := map[string]int{}
			eventually(t, 60*time.Second, func() error {
				resp, err := httpClient.Get("http://" + jHTTP + "/api/traces?" + q.Encode())
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				var got jaegerTraces
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					return err
				}
				clear(spans)
				for _, tr := range got.Data {
					for _, sp := range tr.Spans {
						spans[tr.TraceID+"/"+sp.SpanID]++
					}
				}
				if len(spans) < wantSpans {
					return fmt.Errorf("jaeger has %d of %d spans", len(spans), wantSpans)
				}
				return nil
			})
			for k, n := range spans {
				if n != 1 {
					t.Errorf("span %s stored %d times", k, n)
				}
			}
			samples := scrape(t, vTel)
			if n := sum(samples, "vigil_exporter_otlp_split_requests_total", map[string]string{"reason": tc.reason}); n < 1 {
				t.Errorf("split_requests_total{reason=%q} = %v, want ≥ 1: the burst was not cut", tc.reason, n)
			}
			if n := sum(samples, "vigil_component_dropped_items_total", nil); n != 0 {
				t.Errorf("vigil dropped %v items", n)
			}
			v.stopClean(t)
		})
	}
	if code := jaeger.stop(30 * time.Second); code != 0 {
		t.Errorf("jaeger exited %d after SIGTERM", code)
	}
}
