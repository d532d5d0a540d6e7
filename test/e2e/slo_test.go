//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
)

const sloVigil = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]s}
  alerting: {}
exporters:
  slo: {}
  file: {path: %[3]s/slo-metrics.jsonl, flush_interval: 100ms}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [slo]
    metrics/slo:
      receivers: [alerting]
      exporters: [file]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
alerting:
  evaluation_interval: 1s
  store: {path: %[3]s/store, retention: 1h}
  alertmanager:
    endpoint: %[4]s
    data_dir: %[3]s/am
    config:
      route: {receiver: hook, group_by: [alertname, slo], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
      receivers:
        - name: hook
          webhook_configs: [{url: 'http://%[5]s/hook', send_resolved: true}]
slos:
  state_dir: %[3]s/slo
  evaluation_interval: 1s
  min_events: 50
  specs:
    - version: prometheus/v1
      service: checkout
      labels: {team: payments}
      slos:
        - name: pay
          objective: 99
          sli:
            spans: {service: checkout, attributes: {http.route: /pay}}
          alerting:
            name: CheckoutPayBudgetBurn
            page_alert: {labels: {route: pager}}
`

// TestSLOPagesFromSpans: telemetrygen sends spans of the route /pay, a fifth of them with
// status ERROR (and spans of another route, which do not count). For a 99% objective that is
// a 20× burn: the 1h and 5m windows are over 14.4× at once, and the SLO pages through the
// in-agent Alertmanager to a webhook, with the SLO's labels and the burn rate. /api/v1/slos
// shows the same counts and the alert.
func TestSLOPagesFromSpans(t *testing.T) {
	dir := t.TempDir()
	h := &hook{}
	hookAddr := serveHTTP(t, h)
	grpcAddr, tel, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(sloVigil, grpcAddr, tel, dir, amAddr, hookAddr), tel)
	gen := func(traces, status, route string) {
		runTelemetrygen(t, "traces", "--otlp-insecure", "--otlp-endpoint", grpcAddr, "--service", "checkout",
			"--traces", traces, "--rate", "200", "--status-code", status, "--telemetry-attributes", `http.route="`+route+`"`)
	}
	gen("400", "Unset", "/pay")  // 800 good spans (a root and a child each)
	gen("100", "Error", "/pay")  // 200 bad
	gen("100", "Error", "/cart") // not the SLO's
	// The ticket (1d and 2h over 3×) and the slower page (6h and 30m over 6×) may fire first,
	// while the errors are still arriving; the fast page follows once the ratio passes 14.4%.
	var a template.Alert
	eventually(t, 30*time.Second, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range h.payloads {
			for _, x := range p.Alerts {
				if x.Status == "firing" && x.Labels["sloth_severity"] == "page" && x.Labels["window"] == "1h" {
					a = x
					return nil
				}
			}
		}
		return fmt.Errorf("no SLO page for the 1h window yet (%d notifications)", len(h.payloads))
	})
	for k, want := range map[string]string{"alertname": "CheckoutPayBudgetBurn", "slo": "pay", "service": "checkout",
		"severity": "page", "window": "1h", "route": "pager"} {
		if a.Labels[k] != want {
			t.Errorf("page label %s=%q, want %q (%v)", k, a.Labels[k], want, a.Labels)
		}
	}
	if burn, err := strconv.ParseFloat(a.Annotations["burn_rate"], 64); err != nil || burn <= 14.4 || burn > 20 || a.Annotations["error_budget_remaining"] == "" {
		t.Errorf("page annotations %v, want a burn rate over 14.4 and at most 20", a.Annotations)
	}

	resp, err := httpClient.Get("http://" + tel + "/api/v1/slos")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Data struct {
			SLOs []struct {
				ID        string             `json:"id"`
				Events    float64            `json:"events"`
				BadEvents float64            `json:"badEvents"`
				BurnRates map[string]float64 `json:"burnRates"`
				Alerts    []json.RawMessage  `json:"alerts"`
			} `json:"slos"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Data.SLOs) != 1 {
		t.Fatalf("/api/v1/slos: %v %+v", err, body)
	}
	s := body.Data.SLOs[0]
	if s.ID != "checkout-pay" || s.Events != 1000 || s.BadEvents != 200 || len(s.Alerts) == 0 || math.Abs(s.BurnRates["1h"]-20) > 1e-9 {
		t.Errorf("/api/v1/slos: %+v, want 200 bad of 1000 events and the alert", s)
	}
	// Sloth's metrics go down the metrics pipeline of the alerting receiver.
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "slo-metrics.jsonl"))
		for _, name := range []string{`"slo:sli_error:ratio_rate5m"`, `"slo:period_error_budget_remaining:ratio"`, `"sloth_slo_info"`, `"checkout-pay"`} {
			if !strings.Contains(string(b), name) {
				return fmt.Errorf("%s not exported (%v)", name, err)
			}
		}
		return nil
	})
	if got := metricValues(t, tel, "vigil_slo_events_total"); got != 1000 {
		t.Errorf("vigil_slo_events_total %v, want 1000", got)
	}
	h.checkBad(t)
	v.stopClean(t)
}

const sloSpec = `version: prometheus/v1
service: api
labels: {team: core}
slos:
  - name: requests-availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="api"}[{{.window}}]))
    alerting:
      name: APIHighErrorRate
      page_alert: {labels: {severity: critical}}
      ticket_alert: {labels: {severity: warning}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: search-latency}
spec:
  service: search
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  indicator:
    metadata: {name: fast}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(search_duration_seconds_bucket{le="0.5"}[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(search_duration_seconds_count[{{.window}}]))'}}}
  objectives: [{target: 0.995}]
`

// TestSLOGenerateLoadsInPromtool: what `vigil slo generate` writes for a Sloth spec and an
// OpenSLO document passes Debian's `promtool check rules`, with every rule counted.
func TestSLOGenerateLoadsInPromtool(t *testing.T) {
	vigil, promtool := binary(t, "VIGIL_BIN"), binary(t, "PROMTOOL_BIN")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "slos.yaml"), filepath.Join(dir, "slo.rules.yaml")
	if err := os.WriteFile(in, []byte(sloSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	if text, code := runTool(t, 30*time.Second, vigil, "slo", "generate", "-o", out, in); code != 0 {
		t.Fatalf("vigil slo generate: exit %d\n%s", code, text)
	}
	// Per SLO: 8 SLI recordings, 7 meta recordings; the Sloth one has page and ticket alerts.
	text, code := runTool(t, 30*time.Second, promtool, "check", "rules", out)
	if code != 0 || !strings.Contains(text, "SUCCESS: 32 rules found") {
		t.Errorf("promtool check rules: exit %d\n%s", code, text)
	}
	// And Vigil's own check agrees.
	if text, code := runTool(t, 30*time.Second, vigil, "rules", "check", out); code != 0 || !strings.Contains(text, "SUCCESS: 32 rules found") {
		t.Errorf("vigil rules check: exit %d\n%s", code, text)
	}
}
