//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const flagRules = `groups:
  - name: flag
    interval: 1s
    rules:
      - alert: FlagUp
        expr: e2e_flag > 0
        for: 1s
        labels: {severity: page}
        annotations: {summary: "flag of {{ $labels.job }} is {{ $value }}"}
`

const amConfig = `route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://%s/hook
        send_resolved: true
`

// alertingHead is the start of the alerting tests' configs: OTLP/gRPC (%[1]s) into the
// alerting exporter, self-telemetry on %[2]s, rules from %[3]s evaluated every second.
const alertingHead = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]s}
exporters:
  alerting: {}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [alerting]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
alerting:
  rule_files: [%[3]s]
  evaluation_interval: 1s
`

const notifyVigil = alertingHead + `  external_labels: {agent: e2e}
  external_url: http://vigil.example:8888
  store: {path: %[4]s, retention: 1h}
  alertmanagers:
    - timeout: 2s
      static_configs:
        - targets: [%[5]s, %[6]s]   # the first one is down: the second must still get every alert
`

// hook receives Alertmanager's webhook notifications, decoded strictly into Alertmanager's
// own published type for them (notify/webhook.Message, version 4).
type hook struct {
	mu       sync.Mutex
	payloads []webhook.Message
	bad      []string // bodies that are not a valid webhook message
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p webhook.Message
	err := decodeStrict(body, &p)
	if err == nil {
		err = checkWebhook(p)
	}
	h.mu.Lock()
	if err != nil {
		h.bad = append(h.bad, fmt.Sprintf("%v: %s", err, body))
	} else {
		h.payloads = append(h.payloads, p)
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hook) find(status string) (webhook.Message, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.payloads {
		if p.Status == status {
			return p, true
		}
	}
	return webhook.Message{}, false
}

// checkBad fails the test for every body that did not decode as a webhook message.
func (h *hook) checkBad(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bad {
		t.Errorf("webhook notification not in Alertmanager's format: %s", b)
	}
}

// flagSender sends the gauge e2e_flag over OTLP/gRPC every 300 ms with the value set.
type flagSender struct {
	mu    sync.Mutex
	value float64
	stop  chan struct{}
	done  chan struct{}
}

func sendFlag(t *testing.T, addr string) *flagSender { t.Helper(); return sendFlagValue(t, addr, 1) }

// sendFlagValue is sendFlag starting at value v.
func sendFlagValue(t *testing.T, addr string, v float64) *flagSender {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := pmetricotlp.NewGRPCClient(conn)
	f := &flagSender{value: v, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer conn.Close()
		for {
			f.mu.Lock()
			v := f.value
			f.mu.Unlock()
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "flagd")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("e2e_flag")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(v)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
			cancel()
			select {
			case <-f.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *flagSender) set(v float64) {
	f.mu.Lock()
	f.value = v
	f.mu.Unlock()
}

func (f *flagSender) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// TestAlertmanagerNotifier: Vigil's rules send to Debian's Alertmanager with Prometheus's
// notifier (API v2), next to an Alertmanager address that is down. Alertmanager routes the
// alert to a webhook: it fires with the external label, the rendered annotation and the
// external URL, and resolves when the gauge goes back to 0. The down address is counted as
// errors without holding up the other.
func TestAlertmanagerNotifier(t *testing.T) {
	am := binary(t, "ALERTMANAGER_BIN")
	dir := t.TempDir()
	h := &hook{}
	hookAddr := serveHTTP(t, h)
	amAddr, deadAddr := freeAddr(t), freeAddr(t)
	amCfg := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(amCfg, []byte(fmt.Sprintf(amConfig, hookAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	amProc := startProcess(t, "alertmanager", am, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	waitHTTP(t, amProc, "http://"+amAddr+"/-/ready", 30*time.Second)

	rules := filepath.Join(dir, "flag.rules.yaml")
	if err := os.WriteFile(rules, []byte(flagRules), 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr, tel := freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(notifyVigil, grpcAddr, tel, rules, filepath.Join(dir, "store"), deadAddr, amAddr), tel)
	flag := sendFlag(t, grpcAddr)

	var firing webhook.Message
	eventually(t, 45*time.Second, func() error {
		var ok bool
		if firing, ok = h.find("firing"); !ok {
			return fmt.Errorf("no firing notification from Alertmanager yet")
		}
		return nil
	})
	if len(firing.Alerts) != 1 || firing.Version != "4" {
		t.Fatalf("firing payload: %+v", firing)
	}
	a := firing.Alerts[0]
	want := map[string]string{"alertname": "FlagUp", "severity": "page", "job": "flagd", "agent": "e2e"}
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("label %s=%q, want %q (labels %v)", k, a.Labels[k], v, a.Labels)
		}
	}
	if a.Annotations["summary"] != "flag of flagd is 1" || !strings.HasPrefix(a.GeneratorURL, "http://vigil.example:8888/graph?g0.expr=") {
		t.Errorf("annotations %v, generatorURL %q", a.Annotations, a.GeneratorURL)
	}

	flag.set(0)
	eventually(t, 45*time.Second, func() error {
		if _, ok := h.find("resolved"); !ok {
			return fmt.Errorf("no resolved notification from Alertmanager yet")
		}
		return nil
	})
	// A silence set in that Alertmanager (with its own amtool) suppresses the alert there: it
	// arrives again, is shown as suppressed, and no new notification goes out.
	amtool := binary(t, "AMTOOL_BIN")
	if out, code := runTool(t, 30*time.Second, amtool, "--alertmanager.url=http://"+amAddr, "silence", "add", "alertname=FlagUp",
		"--comment=e2e", "--author=e2e", "--duration=1h"); code != 0 {
		t.Fatalf("amtool silence add: exit %d\n%s", code, out)
	}
	h.mu.Lock()
	before := len(h.payloads)
	h.mu.Unlock()
	flag.set(1)
	eventually(t, 30*time.Second, func() error {
		resp, err := httpClient.Get("http://" + amAddr + "/api/v2/alerts?active=true&silenced=true&filter=alertname%3D%22FlagUp%22")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var alerts []struct {
			Status struct {
				State      string   `json:"state"`
				SilencedBy []string `json:"silencedBy"`
			} `json:"status"`
			EndsAt time.Time `json:"endsAt"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Status.State == "suppressed" && len(a.Status.SilencedBy) == 1 && a.EndsAt.After(time.Now()) {
				return nil
			}
		}
		return fmt.Errorf("FlagUp not firing and suppressed by the silence in Alertmanager yet: %+v", alerts)
	})
	time.Sleep(3 * time.Second) // group_interval 1s: a notification would have gone out
	h.mu.Lock()
	after := len(h.payloads)
	h.mu.Unlock()
	if after != before {
		t.Errorf("%d notifications while the alert was silenced", after-before)
	}
	errs, sent := 0.0, 0.0
	for _, s := range scrape(t, tel) {
		switch s.name {
		case "prometheus_notifications_errors_total":
			if s.labels["alertmanager"] == "http://"+deadAddr+"/api/v2/alerts" {
				errs += s.value
			}
		case "prometheus_notifications_sent_total":
			if s.labels["alertmanager"] == "http://"+amAddr+"/api/v2/alerts" {
				sent += s.value
			}
		}
	}
	if errs == 0 || sent < 2 {
		t.Errorf("notifications: %v errors for the down Alertmanager (want > 0), %v sent to the live one (want >= 2)", errs, sent)
	}
	flag.close()
	h.checkBad(t)
	// The notifier reports the down Alertmanager at error level, as Prometheus does; nothing
	// else may be an error.
	if code := v.stop(30 * time.Second); code != 0 {
		t.Errorf("vigil exited %d after SIGTERM, want 0", code)
	}
	for line := range strings.SplitSeq(v.output(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) && !strings.Contains(line, deadAddr) {
			t.Errorf("vigil logged an error: %s", line)
		}
	}
}

// serveHTTP serves h on a free loopback port until the test ends.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	addr := freeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// backendDownVigil: the metrics pipeline exports by remote write to an address where nothing
// listens (%[6]s), through a queue so small it is full within seconds, ahead of the alerting
// exporter; the in-agent Alertmanager pages a webhook (%[7]s).
const backendDownVigil = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]s}
exporters:
  prometheusremotewrite:
    endpoint: http://%[6]s/api/v1/write
    timeout: 1s
    retry_on_failure: {initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s}
    sending_queue: {num_consumers: 1, queue_size: 1024}
  alerting: {}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite, alerting]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
alerting:
  rule_files: [%[3]s]
  evaluation_interval: 1s
  store: {path: %[4]s/store, retention: 1h}
  alertmanager:
    endpoint: %[5]s
    data_dir: %[4]s/am
    config:
      route: {receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
      receivers:
        - name: hook
          webhook_configs: [{url: 'http://%[7]s/hook', send_resolved: true}]
`

// TestPageWhileTheBackendIsDown: the remote-write backend is down for the whole run and the
// exporter's queue is full (so every batch waits out its block timeout there before the
// alerting exporter, next in the pipeline, gets it). The page still arrives, with its labels
// and annotation, and so does the resolved notification.
func TestPageWhileTheBackendIsDown(t *testing.T) {
	dir := t.TempDir()
	h := &hook{}
	hookAddr := serveHTTP(t, h)
	rules := filepath.Join(dir, "flag.rules.yaml")
	if err := os.WriteFile(rules, []byte(flagRules), 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr, tel, amAddr, deadAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(backendDownVigil, grpcAddr, tel, rules, dir, amAddr, deadAddr, hookAddr), tel)
	flag := sendFlagValue(t, grpcAddr, 0)
	// The backend refuses every attempt and the queue fills up before the alert condition starts.
	eventually(t, 60*time.Second, func() error {
		samples := scrape(t, tel)
		failures := sum(samples, "vigil_exporter_send_failures_total", map[string]string{"component": "prometheusremotewrite"}) +
			sum(samples, "vigil_exporter_retries_total", map[string]string{"component": "prometheusremotewrite"})
		full := sum(samples, "vigil_exporter_enqueue_failures_total", map[string]string{"component": "prometheusremotewrite", "reason": "full"})
		if failures == 0 || full == 0 {
			return fmt.Errorf("%v failed attempts to the backend, %v batches refused by the full queue so far", failures, full)
		}
		return nil
	})
	flag.set(1)
	var firing webhook.Message
	eventually(t, 60*time.Second, func() error {
		var ok bool
		if firing, ok = h.find("firing"); !ok {
			return fmt.Errorf("no page while the backend is down")
		}
		return nil
	})
	if a := firing.Alerts[0]; a.Labels["alertname"] != "FlagUp" || a.Labels["job"] != "flagd" || a.Annotations["summary"] != "flag of flagd is 1" {
		t.Errorf("page: labels %v, annotations %v", a.Labels, a.Annotations)
	}
	flag.set(0)
	eventually(t, 60*time.Second, func() error {
		if _, ok := h.find("resolved"); !ok {
			return fmt.Errorf("no resolved notification while the backend is down")
		}
		return nil
	})
	if n := sum(scrape(t, tel), "vigil_exporter_prometheusremotewrite_requests_total", map[string]string{"outcome": "2xx"}); n != 0 {
		t.Errorf("%v remote-write requests succeeded: the backend was not down", n)
	}
	flag.close()
	h.checkBad(t)
	v.stop(40 * time.Second) // exits non-zero: what the remote-write queue held is dropped, and said so
}
