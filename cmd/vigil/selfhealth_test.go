package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/vigilhq/vigil/alerting/rulefiles"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/agent"
	"github.com/vigilhq/vigil/internal/testdata"
)

// TestSelfHealthRulesSelectRealMetrics runs an agent with every part the self-health pack
// watches (an exporter with a persistent queue that cannot send, the memory limiter, the
// alerting store, a scrape of its own /metrics) and asks its query API for each rule's
// expression without the threshold. Every one must return series: a rule whose selectors or
// vector matching do not fit the metrics as the agent exposes them (names, label sets) could
// never fire. The unit tests in alerting/engine/testdata/selfhealth check the thresholds.
func TestSelfHealthRulesSelectRealMetrics(t *testing.T) {
	dir := t.TempDir()
	telemetry := freePort(t)
	cfgPath := filepath.Join(dir, "vigil.yaml")
	otlpAddr := freePort(t)
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http: {endpoint: %q}
  prometheus/self:
    config:
      scrape_configs:
        - job_name: vigil
          scrape_interval: 1s
          static_configs: [{targets: [%q]}]
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 4096}
exporters:
  otlphttp:
    endpoint: http://%s
    sending_queue: {persistent: true, directory: %q}
  alerting: {}
service:
  pipelines:
    metrics: {receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}
    metrics/self: {receivers: [prometheus/self], exporters: [alerting]}
  telemetry:
    metrics: {address: %q}
    logs: {level: error}
alerting:
  self_health: true
  evaluation_interval: 1s
  store: {path: %q, retention: 2h}
`, otlpAddr, telemetry, freePort(t), filepath.Join(dir, "queue"), telemetry, filepath.Join(dir, "store"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadFile(cfgPath, f)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(c, f, agent.Options{LogOutput: io.Discard, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Shutdown(ctx) }()

	// Data for the exporter, whose backend is down: its sends fail and its queue holds them.
	body, _ := pmetricotlp.NewExportRequestFromMetrics(testdata.Metrics(1, 10, 0)).MarshalProto()
	resp, err := http.Post("http://"+otlpAddr+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP request: %s", resp.Status)
	}

	groups, errs := rulefiles.Parse("../../alerting/engine/selfhealth.rules.yaml", nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var exprs []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, withoutThreshold(t, r.Expr))
		}
	}
	if len(exprs) < 7 {
		t.Fatalf("the pack has %d rules, want at least 7", len(exprs))
	}

	// rate() and increase() need two scrapes in their range: a few seconds at 1s.
	deadline := time.Now().Add(30 * time.Second)
	for _, e := range exprs {
		for {
			n, err := querySeries(telemetry, e)
			if err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s selects nothing from the agent's own metrics (err %v): the rule could never fire", e, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// withoutThreshold is a rule's expression without its top-level comparison against a number
// ("x > 0.8" → "x"), so that it returns series whatever their values.
func withoutThreshold(t *testing.T, expr string) string {
	t.Helper()
	e, err := rulefiles.Parser.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if b, ok := e.(*parser.BinaryExpr); ok && b.Op.IsComparisonOperator() {
		if _, num := b.RHS.(*parser.NumberLiteral); num {
			return b.LHS.String()
		}
	}
	return expr
}

// querySeries asks the agent's query API for an instant vector and counts its series.
func querySeries(addr, expr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("%s: %s", out.Status, out.Error)
	}
	return len(out.Data.Result), nil
}
