//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const alertingRules = `groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:e2e_gauge:count
        expr: count by (job) (e2e_gauge)
      - alert: GaugeSeen
        expr: job:e2e_gauge:count > 0
        for: 3s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }} sends {{ $value }} series"}
`

const alertingVigil = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]s}
  alerting: {}
exporters:
  alerting: {}
  file: {path: %[5]s, flush_interval: 100ms}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [alerting]
    metrics/rules:
      receivers: [alerting]
      exporters: [file]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
alerting:
  rule_files: [%[3]s]
  evaluation_interval: 1s
  external_labels: {agent: e2e}
  store: {path: %[4]s, retention: 1h}
`

type e2eAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
}

// agentAlerts reads the agent's /api/v1/alerts, by alert name.
func agentAlerts(tel string) (map[string]e2eAlert, error) {
	resp, err := httpClient.Get("http://" + tel + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []e2eAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	out := map[string]e2eAlert{}
	for _, a := range r.Data.Alerts {
		out[a.Labels["alertname"]] = a
	}
	return out, nil
}

// firingAlert polls the agent's /api/v1/alerts until GaugeSeen fires.
func firingAlert(t *testing.T, tel string, timeout time.Duration) e2eAlert {
	t.Helper()
	var found e2eAlert
	eventually(t, timeout, func() error {
		as, err := agentAlerts(tel)
		if err != nil {
			return err
		}
		if a := as["GaugeSeen"]; a.State == "firing" {
			found = a
			return nil
		}
		return fmt.Errorf("GaugeSeen not firing: %+v", as)
	})
	return found
}

// TestAlertingFromOTLP: telemetrygen sends gauges over OTLP; the alerting exporter stores them
// under the remote-write exporter's names; the upstream rule manager records and alerts on
// them; Debian's promtool queries the agent's API as it would a Prometheus; and after a
// restart the alert is firing again at once with the activeAt it had (ALERTS_FOR_STATE
// restored from the store's WAL), not pending anew.
func TestAlertingFromOTLP(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "e2e.rules.yaml")
	if err := os.WriteFile(rules, []byte(alertingRules), 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr, tel := freeAddr(t), freeAddr(t)
	exported := filepath.Join(dir, "rules-out.jsonl")
	cfg := fmt.Sprintf(alertingVigil, grpcAddr, tel, rules, filepath.Join(dir, "store"), exported)
	v := startVigil(t, "vigil", cfg, tel)
	runTelemetrygen(t, "metrics", "--metrics", "40", "--rate", "10", "--otlp-metric-name", "e2e_gauge",
		"--otlp-insecure", "--otlp-endpoint", grpcAddr)
	first := firingAlert(t, tel, 30*time.Second)
	// External labels are added when alerts are sent, not in the API (as in Prometheus).
	if first.Labels["severity"] != "page" || first.Labels["job"] != "telemetrygen" {
		t.Errorf("alert labels %v, want severity and job", first.Labels)
	}
	if first.Annotations["summary"] != "telemetrygen sends 1 series" {
		t.Errorf("summary %q", first.Annotations["summary"])
	}

	// promtool, Prometheus's own client, against the agent.
	promtool := binary(t, "PROMTOOL_BIN")
	out, code := runTool(t, 30*time.Second, promtool, "query", "instant", "http://"+tel, `job:e2e_gauge:count`)
	if code != 0 || !strings.Contains(out, `job:e2e_gauge:count{job="telemetrygen"} => 1`) {
		t.Errorf("promtool query instant: exit %d\n%s", code, out)
	}
	out, code = runTool(t, 30*time.Second, promtool, "query", "series", "http://"+tel, "--match", `ALERTS{alertstate="firing"}`)
	if code != 0 || !strings.Contains(out, `alertname="GaugeSeen"`) {
		t.Errorf("promtool query series: exit %d\n%s", code, out)
	}
	q := url.Values{"query": {"e2e_gauge"}, "start": {fmt.Sprint(time.Now().Add(-time.Minute).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}, "step": {"5"}}
	resp, err := httpClient.Get("http://" + tel + "/api/v1/query_range?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rr)
	resp.Body.Close()
	if err != nil || rr.Status != "success" || rr.Data.ResultType != "matrix" || len(rr.Data.Result) != 1 {
		t.Errorf("query_range e2e_gauge: %v %+v", err, rr)
	}
	m := metricValues(t, tel, "vigil_alerting_store_series")
	if m < 1 {
		t.Errorf("vigil_alerting_store_series %v", m)
	}
	// What the rules wrote goes down the metrics/rules pipeline (to a file here).
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(exported)
		for _, name := range []string{`"job:e2e_gauge:count"`, `"ALERTS"`, `"ALERTS_FOR_STATE"`} {
			if !strings.Contains(string(b), name) {
				return fmt.Errorf("%s not exported by the alerting receiver's pipeline (%v)", name, err)
			}
		}
		return nil
	})
	v.stopClean(t)

	v2 := startVigil(t, "vigil-restarted", cfg, tel)
	restored := firingAlert(t, tel, 10*time.Second)
	if !restored.ActiveAt.Equal(first.ActiveAt.Truncate(time.Second)) {
		t.Errorf("after a restart activeAt %s, want %s (restored)", restored.ActiveAt, first.ActiveAt.Truncate(time.Second))
	}
	v2.stopClean(t)
}

// metricValues sums a metric's samples on the agent's /metrics.
func metricValues(t *testing.T, tel, name string) float64 {
	t.Helper()
	var sum float64
	for _, s := range scrape(t, tel) {
		if s.name == name {
			sum += s.value
		}
	}
	return sum
}
