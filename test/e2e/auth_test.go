//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const authVigil = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
        auth: &auth
          tokens:
            - {name: team-a, token: "${env:TEAM_A_TOKEN}", tenant: team-a}
            - {name: metrics-only, token: "${env:METRICS_TOKEN}", signals: [metrics]}
          basic:
            - {username: alloy, password_hash: "${env:ALLOY_HASH}", tenant: alloy}
      http:
        endpoint: %[2]s
        auth: *auth
exporters:
  file/traces: {path: %[3]s/traces.jsonl, flush_interval: 100ms}
  file/metrics: {path: %[3]s/metrics.jsonl, flush_interval: 100ms}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file/traces]
    metrics:
      receivers: [otlp]
      exporters: [file/metrics]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`

// TestAuthWithTelemetrygen: telemetrygen, an independent OTLP client, sends with credentials
// in headers. A token with a tenant gets its spans through with tenant.id stamped over what the
// client claimed; a basic user (its hash made by vigil hash-password) likewise; a metrics-only
// token is refused traces (403 / PERMISSION_DENIED) but sends metrics; no credentials and a
// wrong token get nothing in. The tokens are never in vigil's log.
func TestAuthWithTelemetrygen(t *testing.T) {
	dir := t.TempDir()
	hashCmd := exec.Command(binary(t, "VIGIL_BIN"), "hash-password")
	hashCmd.Stdin = strings.NewReader("alloy-password\n")
	hash, err := hashCmd.Output()
	if err != nil {
		t.Fatalf("vigil hash-password: %v", err)
	}
	t.Setenv("TEAM_A_TOKEN", "team-a-secret-token")
	t.Setenv("METRICS_TOKEN", "metrics-secret-token")
	t.Setenv("ALLOY_HASH", strings.TrimSpace(string(hash)))
	grpcAddr, httpAddr, tel := freeAddr(t), freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(authVigil, grpcAddr, httpAddr, dir, tel), tel)

	gen := func(signal, run, header string, http bool) {
		args := []string{signal, "--otlp-insecure", "--" + signal, "10", "--rate", "100",
			"--telemetry-attributes", fmt.Sprintf("e2e.run=%q", run), "--otlp-attributes", `tenant.id="forged"`}
		if signal == "metrics" {
			args[2] = "--metrics"
		}
		if http {
			args = append(args, "--otlp-http", "--otlp-endpoint", httpAddr)
		} else {
			args = append(args, "--otlp-endpoint", grpcAddr)
		}
		if header != "" {
			args = append(args, "--otlp-header", fmt.Sprintf("Authorization=%q", header))
		}
		// Refused sends make telemetrygen log errors; what matters is what arrived.
		_, _ = runTool(t, 2*time.Minute, binary(t, "TELEMETRYGEN_BIN"), args...)
	}
	gen("traces", "team-a-grpc", "Bearer team-a-secret-token", false)
	gen("traces", "team-a-http", "Bearer team-a-secret-token", true)
	gen("traces", "alloy-http", "Basic YWxsb3k6YWxsb3ktcGFzc3dvcmQ=", true) // alloy:alloy-password
	gen("traces", "metrics-token", "Bearer metrics-secret-token", false)
	gen("traces", "metrics-token-http", "Bearer metrics-secret-token", true)
	gen("traces", "none", "", false)
	gen("traces", "wrong", "Bearer guess", true)
	gen("metrics", "metrics-token", "Bearer metrics-secret-token", false)

	// telemetrygen traces sends a root and a child span per trace: 10 traces, 20 spans a run.
	spans := waitItems(t, "traces", filepath.Join(dir, "traces.jsonl"), 60)
	perRun := map[string]int{}
	for _, it := range spans {
		perRun[it.run]++
		want := map[string]string{"team-a-grpc": "team-a", "team-a-http": "team-a", "alloy-http": "alloy"}[it.run]
		if got := attrString(it.res, "tenant.id"); got != want {
			t.Errorf("run %s: tenant.id %q, want %q", it.run, got, want)
		}
	}
	for _, run := range []string{"team-a-grpc", "team-a-http", "alloy-http"} {
		if perRun[run] != 20 {
			t.Errorf("run %s: %d spans, want 20", run, perRun[run])
		}
	}
	for _, run := range []string{"metrics-token", "metrics-token-http", "none", "wrong"} {
		if perRun[run] != 0 {
			t.Errorf("run %s: %d spans got in", run, perRun[run])
		}
	}
	points := waitItems(t, "metrics", filepath.Join(dir, "metrics.jsonl"), 10)
	if len(points) < 10 || points[0].run != "metrics-token" {
		t.Errorf("metrics from the metrics token: %d points", len(points))
	}
	samples := scrape(t, tel)
	forbidden := sum(samples, "vigil_receiver_otlp_rejected_requests_total", map[string]string{"reason": "forbidden"})
	unauth := sum(samples, "vigil_receiver_otlp_rejected_requests_total", map[string]string{"reason": "unauthenticated"})
	if forbidden < 2 || unauth < 2 {
		t.Errorf("refusals counted: forbidden %v, unauthenticated %v; want 2 of each at least", forbidden, unauth)
	}
	v.stopClean(t)
	for _, secret := range []string{"team-a-secret-token", "metrics-secret-token", "alloy-password", "guess"} {
		if strings.Contains(v.output(), secret) {
			t.Errorf("%q is in vigil's log", secret)
		}
	}
}
