//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScrapeStaticFileServer: a target served by a plain static web server (Python's
// http.server, which sends application/octet-stream for a file it has no type for) is scraped
// in the text format, as the OpenTelemetry Collector's receiver does; Prometheus would refuse it.
func TestScrapeStaticFileServer(t *testing.T) {
	python := binary(t, "PYTHON3_BIN")
	telemetry, web := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	// No extension: http.server does not know its type.
	if err := os.WriteFile(filepath.Join(site, "node-metrics"), []byte("# TYPE batch_last_success_seconds gauge\nbatch_last_success_seconds 1.7e9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(web)
	srv := startProcess(t, "http.server", python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", site, port)
	waitHTTP(t, srv, "http://"+web+"/node-metrics", 30*time.Second)
	resp, err := httpClient.Get("http://" + web + "/node-metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("the static server sends Content-Type %q: the test needs one Prometheus does not know", ct)
	}

	promAddr := startPrometheusRW(t)
	v := startVigil(t, "vigil-static", fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: files
          scrape_interval: 1s
          metrics_path: /node-metrics
          static_configs: [{targets: ['%s']}]
exporters:
  prometheusremotewrite:
    endpoint: http://%s/api/v1/write
    queue_config: {batch_send_deadline: 200ms}
service:
  pipelines:
    metrics: {receivers: [prometheus], exporters: [prometheusremotewrite]}
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %s}
`, web, promAddr, telemetry), telemetry)
	eventually(t, 30*time.Second, func() error {
		got, err := promQuery(promAddr, `batch_last_success_seconds{job="files"}`)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].value != 1.7e9 {
			return fmt.Errorf("batch_last_success_seconds: %+v", got)
		}
		return nil
	})
	if up, err := promQuery(promAddr, `up{job="files"}`); err != nil || len(up) != 1 || up[0].value != 1 {
		t.Errorf("up: %+v, %v", up, err)
	}
	v.stopClean(t)
}

// TestScrapeNodeWorkload: 50 targets scraped every second for 20 s reach Prometheus and
// VictoriaMetrics in at most one request per shard per batch_send_deadline (plus metadata),
// not one per scrape (1 000), with every scrape's samples there.
func TestScrapeNodeWorkload(t *testing.T) {
	telemetry := freeAddr(t)
	const targets, maxShards, deadline, run = 50, 2, 2 * time.Second, 20 * time.Second

	var addrs []string
	for i := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprintf(w, "# TYPE node_load1 gauge\nnode_load1 %d\n# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total{cpu=\"0\"} 12\n", i)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, "'"+ln.Addr().String()+"'")
	}
	promAddr, vmAddr := startPrometheusRW(t), startVictoriaMetrics(t)
	writes := func() (p, m float64) {
		p = sum(scrape(t, promAddr), "prometheus_http_requests_total", map[string]string{"handler": "/api/v1/write"})
		m = sum(scrape(t, vmAddr), "vm_http_requests_total", map[string]string{"path": "/api/v1/write"})
		return p, m
	}
	p0, m0 := writes()

	exp := fmt.Sprintf("    queue_config: {max_shards: %d, batch_send_deadline: %s}\n", maxShards, deadline)
	v := startVigil(t, "vigil-node", fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: node
          scrape_interval: 1s
          static_configs: [{targets: [%s]}]
exporters:
  prometheusremotewrite/prom:
    endpoint: http://%s/api/v1/write
%s  prometheusremotewrite/vm:
    endpoint: http://%s/api/v1/write
%sservice:
  pipelines:
    metrics: {receivers: [prometheus], exporters: [prometheusremotewrite/prom, prometheusremotewrite/vm]}
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %s}
`, strings.Join(addrs, ", "), promAddr, exp, vmAddr, exp, telemetry), telemetry)
	start := time.Now()
	time.Sleep(run)
	v.stopClean(t) // sends what accumulated
	elapsed := time.Since(start)

	// Every target's scrapes arrived: its gauge, about once a second.
	at := fmt.Sprintf("%.3f", float64(time.Now().UnixMilli())/1000)
	eventually(t, 30*time.Second, func() error {
		got, err := promQueryAt(promAddr, `count_over_time(node_load1[1m])`, at)
		if err != nil {
			return err
		}
		if len(got) != targets {
			return fmt.Errorf("%d targets' node_load1 in Prometheus, want %d", len(got), targets)
		}
		for _, s := range got {
			if s.value < 15 {
				return fmt.Errorf("%v: %v samples in %s, want about one a second", s.Metric, s.value, elapsed)
			}
		}
		exported, err := vmExport(vmAddr, `node_load1`)
		if err != nil {
			return err
		}
		if len(exported) != targets {
			return fmt.Errorf("%d targets' node_load1 in VictoriaMetrics, want %d", len(exported), targets)
		}
		return nil
	})
	p1, m1 := writes()
	// One request per shard per deadline over the run, one more for what shutdown sends, and
	// the metadata requests (when families are first seen; the run is shorter than its 1m).
	limit := float64(maxShards*(int(elapsed/deadline)+1) + 4)
	t.Logf("write requests: Prometheus %v, VictoriaMetrics %v (limit %v; one per scrape would be %d)", p1-p0, m1-m0, limit, targets*int(run/time.Second))
	if p1-p0 > limit || m1-m0 > limit {
		t.Errorf("write requests: Prometheus %v, VictoriaMetrics %v, want at most %v", p1-p0, m1-m0, limit)
	}
	if p1-p0 == 0 || m1-m0 == 0 {
		t.Errorf("no write requests counted: Prometheus %v, VictoriaMetrics %v", p1-p0, m1-m0)
	}
}
