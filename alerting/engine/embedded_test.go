package engine

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

func embeddedConfig(t *testing.T, text string) *EmbeddedConfig {
	t.Helper()
	c := newEmbeddedConfig()
	c.HTTP.Endpoint = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	if err := yaml.Unmarshal([]byte(text), &c.Config); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestEmbeddedAPI: the in-agent Alertmanager serves the API v2 amtool and Grafana use.
func TestEmbeddedAPI(t *testing.T) {
	// Secrets of every kind the receivers hold; /api/v2/status serves the configuration and
	// must mask each.
	secrets := []string{"w3bh00k-s3cret", "pd-r0uting-s3cret", "sl4ck-s3cret", "0psgenie-s3cret"}
	c := embeddedConfig(t, `route: {receiver: hook}
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:1/hook", http_config: {basic_auth: {username: u, password: w3bh00k-s3cret}}}]
    pagerduty_configs: [{routing_key: pd-r0uting-s3cret}]
    slack_configs: [{api_url: "https://hooks.slack.com/services/T0/B0/sl4ck-s3cret", channel: "#oncall"}]
    opsgenie_configs: [{api_key: 0psgenie-s3cret}]
`)
	e, err := newEmbedded(c, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	defer func() {
		if err := e.stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, path := range []string{"/api/v2/status", "/api/v2/alerts", "/api/v2/silences", "/api/v2/receivers"} {
		resp, err := http.Get("http://" + e.addr() + path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") && !strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s shows the secret %q", path, s)
			}
		}
		if path == "/api/v2/status" && !strings.Contains(string(b), "<secret>") {
			t.Errorf("%s: no masked secret in the configuration it shows: %s", path, b)
		}
	}
}

// TestEmbeddedReload: a changed configuration file is applied (its receivers served by the
// API); a broken one is refused and the running one stays.
func TestEmbeddedReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "am.yml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("route: {receiver: one}\nreceivers: [{name: one}]\n")
	c := newEmbeddedConfig()
	c.HTTP.Endpoint = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.ConfigFile = file
	e, err := newEmbedded(&c, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	defer e.stop()
	receivers := func() string {
		t.Helper()
		resp, err := http.Get("http://" + e.addr() + "/api/v2/receivers")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	write("route: {receiver: two}\nreceivers: [{name: two}]\n")
	if err := e.reload(); err != nil {
		t.Fatal(err)
	}
	if got := receivers(); !strings.Contains(got, `"two"`) || strings.Contains(got, `"one"`) {
		t.Errorf("receivers after reload: %s", got)
	}
	write("route: {receiver: missing}\nreceivers: [{name: two}]\n")
	if err := e.reload(); err == nil {
		t.Error("a configuration routing to an undefined receiver was applied")
	}
	if got := receivers(); !strings.Contains(got, `"two"`) {
		t.Errorf("receivers after a failed reload: %s", got)
	}
}

// TestNotifierThatHangsOrFails: one receiver's URL never answers, another's answers 500; a
// third, on the same route tree with `continue`, gets the page at once. The hanging one is cut
// off by the pipeline's timeout (no notifier setting needed) and counted as failed, the 500 is
// retried and counted, per receiver, and the alerts keep flowing to the good one.
func TestNotifierThatHangsOrFails(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	var failed atomic.Int64
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failed.Add(1)
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
	}))
	got := make(chan string, 16)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer func() {
		close(release)
		hang.Close()
		fail.Close()
		good.Close()
	}()
	c := embeddedConfig(t, fmt.Sprintf(`route:
  receiver: good
  group_by: [alertname]
  group_wait: 50ms
  group_interval: 1s
  routes:
    - {receiver: hang, continue: true}
    - {receiver: fail, continue: true}
    - {receiver: good}
receivers:
  - {name: hang, webhook_configs: [{url: '%s'}]}
  - {name: fail, webhook_configs: [{url: '%s'}]}
  - {name: good, webhook_configs: [{url: '%s'}]}
`, hang.URL, fail.URL, good.URL))
	reg := prometheus.NewRegistry()
	e, err := newEmbedded(c, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	defer e.stop()
	now := time.Now()
	page := func(name string) {
		t.Helper()
		a := alert.New(model.Alert{Labels: model.LabelSet{"alertname": model.LabelValue(name)}, StartsAt: now, EndsAt: now.Add(time.Hour)}, now, false)
		if err := e.put(a); err != nil {
			t.Fatal(err)
		}
	}
	page("First")
	select {
	case b := <-got:
		if !strings.Contains(b, "First") {
			t.Errorf("good receiver got %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the good receiver got nothing while the others hang and fail")
	}
	page("Second") // a new group, while the first one's hanging notification is still out
	select {
	case b := <-got:
		if !strings.Contains(b, "Second") {
			t.Errorf("good receiver got %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second alert did not get through while a notifier hangs")
	}
	counter := func(name, receiver string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "receiver_name" && l.GetValue() == receiver {
						sum += m.GetCounter().GetValue()
					}
				}
			}
		}
		return sum
	}
	deadline := time.Now().Add(30 * time.Second)
	for counter("alertmanager_notifications_failed_total", "hang") == 0 || counter("alertmanager_notifications_failed_total", "fail") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("failures not counted: hang %v, fail %v", counter("alertmanager_notifications_failed_total", "hang"),
				counter("alertmanager_notifications_failed_total", "fail"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := counter("alertmanager_notification_requests_total", "fail"); n < 2 || failed.Load() < 2 {
		t.Errorf("the 500 was tried %v times (%d requests seen), want retries", n, failed.Load())
	}
	if n := counter("alertmanager_notifications_total", "good"); n < 2 {
		t.Errorf("good receiver: %v notifications counted, want 2", n)
	}
}
