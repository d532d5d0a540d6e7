package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidatePrint: `vigil validate --print` shows the config as it runs, references resolved
// and defaults filled in, with every secret redacted (from ${env:}, ${file:}, or written in the
// file); what it prints is itself a config Vigil loads, with the same components.
func TestValidatePrint(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	if err := os.WriteFile(secretFile, []byte("from-a-file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PRINT_TEST_TOKEN", "from-env-s3cret")
	cfg := `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
        auth:
          tokens: [{name: a, token: "${env:PRINT_TEST_TOKEN}", tenant: a}]
exporters:
  loki:
    endpoint: https://loki.example/loki/api/v1/push
    headers: {X-Api-Key: "${file:` + secretFile + `}", X-Other: literal-s3cret}
  prometheusremotewrite:
    endpoint: https://prom.example/api/v1/write
    headers: {Authorization: "Bearer ${env:PRINT_TEST_TOKEN}"}
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [loki]}
    metrics: {receivers: [otlp], exporters: [prometheusremotewrite]}
`
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "--config", path, "--print"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	printed := out.String()
	for _, s := range []string{"from-env-s3cret", "from-a-file-s3cret", "literal-s3cret"} {
		if strings.Contains(printed, s) {
			t.Errorf("%q printed", s)
		}
	}
	for _, want := range []string{"X-Api-Key: '[redacted]'", "Authorization: '[redacted]'", "token: '[redacted]'", "tenant: a",
		"endpoint: https://loki.example/loki/api/v1/push", "max_request_body_size: 20971520"} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed config lacks %q:\n%s", want, printed)
		}
	}
	if strings.Contains(printed, "bearer_token: '[redacted]'") {
		t.Error("an unset secret printed as [redacted]")
	}
	// The printed config loads again, strictly, as the same components, once its redacted
	// credential is a reference again (an inline one is refused).
	again := filepath.Join(dir, "printed.yaml")
	if err := os.WriteFile(again, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(again, f); err == nil || !strings.Contains(err.Error(), "tokens[0].token: a credential written into the config") {
		t.Errorf("the printed config with its redacted token: %v, want the inline credential refused", err)
	}
	fixed := strings.Replace(printed, "token: '[redacted]'", "token: ${env:PRINT_TEST_TOKEN}", 1)
	if err := os.WriteFile(again, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(again, f)
	if err != nil {
		t.Fatalf("the printed config does not load: %v\n%s", err, printed)
	}
	if len(c.Receivers) != 1 || len(c.Exporters) != 2 || len(c.Service.Pipelines) != 2 {
		t.Errorf("printed config has %d receivers, %d exporters, %d pipelines", len(c.Receivers), len(c.Exporters), len(c.Service.Pipelines))
	}
}

// TestValidatePrintAlertmanager: an inline Alertmanager configuration is printed as
// Alertmanager reads it, its receivers' secrets (here a Slack webhook URL) as <secret>.
func TestValidatePrintAlertmanager(t *testing.T) {
	dir := t.TempDir()
	cfg := `receivers:
  otlp: {}
exporters:
  alerting: {}
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [alerting]}
alerting:
  store: {path: ` + filepath.Join(dir, "store") + `}
  alertmanager:
    data_dir: ` + filepath.Join(dir, "am") + `
    config:
      route: {receiver: s}
      receivers:
        - name: s
          slack_configs: [{api_url: "https://hooks.slack.com/services/T0/B0/s3cret-hook", channel: "#x"}]
`
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "--config", path, "--print"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "s3cret-hook") || !strings.Contains(out.String(), "api_url: <secret>") || !strings.Contains(out.String(), "channel: '#x'") {
		t.Errorf("printed:\n%s", out.String())
	}
}
