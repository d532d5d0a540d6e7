//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"
)

// The app's error counter: telemetrygen's cumulative Sum named app_errors, stored under the
// remote-write exporter's name app_errors_total.
const errorRateRules = `groups:
  - name: app
    interval: 1s
    rules:
      - alert: AppErrors
        expr: sum by (job) (rate(app_errors_total[10s])) > 0.5
        for: 4s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.job }} fails {{ $value | humanize }} times a second"
`

const errorRateVigil = alertingHead + `  external_labels: {agent: e2e}
  store: {path: %[4]s/store, retention: 1h}
  alertmanager:
    endpoint: %[5]s
    data_dir: %[4]s/am
    config:
      route:
        receiver: hook
        group_by: [alertname]
        group_wait: 1s
        group_interval: 1s
        repeat_interval: 1h
      receivers:
        - name: hook
          webhook_configs: [{url: 'http://%[6]s/hook', send_resolved: true}]
`

// TestErrorRatePagesAndResolves: telemetrygen drives an app's error counter up over OTLP; the
// rule on its rate goes pending (and pages nobody yet), fires after its `for`, and the webhook
// gets the page with the rule's labels, the external label and the rendered annotation. When
// telemetrygen stops, the rate falls away and the resolved notification follows. The
// notifications are decoded as Alertmanager's webhook.Message.
func TestErrorRatePagesAndResolves(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "app.rules.yaml")
	if err := os.WriteFile(rules, []byte(errorRateRules), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	grpcAddr, tel, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(errorRateVigil, grpcAddr, tel, rules, dir, amAddr, strings.TrimPrefix(hook.URL, "http://"))
	v := startVigil(t, "vigil", cfg, tel)

	// 5 increments a second for 25 s: a rate of about 5 errors a second.
	gen := startProcess(t, "telemetrygen", binary(t, "TELEMETRYGEN_BIN"), "metrics",
		"--metric-type", "Sum", "--otlp-metric-name", "app_errors", "--rate", "5", "--duration", "25s",
		"--otlp-insecure", "--otlp-endpoint", grpcAddr)

	// Pending first, and nothing sent while it is.
	eventually(t, 30*time.Second, func() error {
		as, err := agentAlerts(tel)
		if err != nil {
			return err
		}
		if a, ok := as["AppErrors"]; !ok || a.State != "pending" {
			return fmt.Errorf("AppErrors is %+v, want pending", as["AppErrors"])
		}
		return nil
	})
	if n := len(rec.matching("/hook", nil)); n != 0 {
		t.Errorf("%d notifications while the alert was pending, want none", n)
	}

	firing := waitWebhook(t, rec, "firing", 30*time.Second)
	a := firing.Alerts[0]
	for k, want := range map[string]string{"alertname": "AppErrors", "job": "telemetrygen", "severity": "page", "agent": "e2e"} {
		if a.Labels[k] != want {
			t.Errorf("firing alert label %s = %q, want %q (labels %v)", k, a.Labels[k], want, a.Labels)
		}
	}
	if s := a.Annotations["summary"]; !strings.HasPrefix(s, "telemetrygen fails ") || !strings.HasSuffix(s, " times a second") {
		t.Errorf("summary %q", s)
	}
	if firing.Receiver != "hook" || firing.GroupLabels["alertname"] != "AppErrors" {
		t.Errorf("receiver %q, group labels %v", firing.Receiver, firing.GroupLabels)
	}

	if code := gen.wait(time.Minute); code != 0 {
		t.Fatalf("telemetrygen exit %d\n%s", code, tail(gen.output(), 8<<10))
	}
	resolved := waitWebhook(t, rec, "resolved", 40*time.Second)
	if r := resolved.Alerts[0]; r.Labels["alertname"] != "AppErrors" || r.EndsAt.IsZero() || !r.StartsAt.Equal(a.StartsAt) {
		t.Errorf("resolved alert %+v, want AppErrors ended, started when the page did (%s)", r, a.StartsAt)
	}
	if n := len(rec.matching("/hook", func(r recorded) bool { return str(r.body, "status") == "firing" })); n != 1 {
		t.Errorf("%d firing notifications, want 1", n)
	}
	v.stopClean(t)
}

// waitWebhook waits for the first webhook notification with the given status and decodes it.
func waitWebhook(t *testing.T, rec *recorder, status string, timeout time.Duration) webhook.Message {
	t.Helper()
	var m webhook.Message
	eventually(t, timeout, func() error {
		got := rec.matching("/hook", func(r recorded) bool { return str(r.body, "status") == status })
		if len(got) == 0 {
			return fmt.Errorf("no %s notification at the webhook yet (%d in all)", status, len(rec.matching("/hook", nil)))
		}
		m = webhook.Message{}
		if err := json.Unmarshal(got[0].raw, &m); err != nil {
			return fmt.Errorf("decoding as webhook.Message: %v", err)
		}
		if len(m.Alerts) != 1 {
			return fmt.Errorf("%s notification with %d alerts, want 1", status, len(m.Alerts))
		}
		return nil
	})
	return m
}
