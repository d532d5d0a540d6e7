//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/opsgenie/opsgenie-go-sdk-v2/alert"
	"github.com/prometheus/alertmanager/notify/webhook"
	"github.com/slack-go/slack"
)

const routingVigil = alertingHead + `  external_labels: {agent: e2e}
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
        routes:
          - {matchers: ['severity="page"'], receiver: pager, continue: true}
          - {matchers: ['severity="page"'], receiver: chat, continue: true}
          - {matchers: ['severity="page"'], receiver: genie, continue: true}
          - {matchers: ['severity="page"'], receiver: hook}
      receivers:
        - name: hook
          webhook_configs: [{url: 'http://%[6]s/hook', send_resolved: true}]
        - name: pager
          pagerduty_configs: [{routing_key: '${env:E2E_PD_KEY}', url: 'http://%[6]s/pagerduty', send_resolved: true}]
        - name: chat
          slack_configs: [{api_url: 'http://%[6]s/slack', channel: '#oncall', send_resolved: true}]
        - name: genie
          opsgenie_configs: [{api_key: '${env:E2E_OPSGENIE_KEY}', api_url: 'http://%[6]s/opsgenie/', send_resolved: true}]
`

// recorder keeps every request the notifiers make, by path.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path, query, auth string
	raw               []byte
	body              map[string]any
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{path: req.URL.Path, query: req.URL.RawQuery, auth: req.Header.Get("Authorization"), raw: b, body: body})
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if strings.HasPrefix(req.URL.Path, "/pagerduty") {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
		return
	}
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func (r *recorder) matching(prefix string, pred func(recorded) bool) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, q := range r.reqs {
		if strings.HasPrefix(q.path, prefix) && (pred == nil || pred(q)) {
			out = append(out, q)
		}
	}
	return out
}

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

// TestRoutingInTheAgent: the rules' alerts go to the Alertmanager pipeline inside the agent
// (Alertmanager's own packages), which routes them down a route tree with `continue` to a
// webhook, PagerDuty Events API v2, Slack and Opsgenie, pointed at a recording server. Each
// gets the firing and then the resolved notification in its own format: PagerDuty trigger
// and resolve with one dedup key, Opsgenie create and close by alias. A restart while the
// alert fires does not page again (the notification log is kept on disk). Debian's amtool
// reads the alert and adds a silence through the agent's Alertmanager API v2.
func TestRoutingInTheAgent(t *testing.T) {
	amtool := binary(t, "AMTOOL_BIN")
	dir := t.TempDir()
	rec := &recorder{}
	hookAddr := serveHTTP(t, rec)
	rules := filepath.Join(dir, "flag.rules.yaml")
	if err := os.WriteFile(rules, []byte(flagRules), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_PD_KEY", "pd-routing-key-0123456789abcdef")
	t.Setenv("E2E_OPSGENIE_KEY", "genie-secret")
	grpcAddr, tel, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(routingVigil, grpcAddr, tel, rules, dir, amAddr, hookAddr)
	v := startVigil(t, "vigil", cfg, tel)
	flag := sendFlag(t, grpcAddr)

	firing := func(q recorded) bool {
		switch {
		case strings.HasPrefix(q.path, "/hook"):
			return str(q.body, "status") == "firing"
		case strings.HasPrefix(q.path, "/pagerduty"):
			return str(q.body, "event_action") == "trigger"
		case strings.HasPrefix(q.path, "/slack"):
			return strings.HasPrefix(str(q.body, "attachments0", "title"), "[FIRING") || strings.Contains(fmt.Sprint(q.body["attachments"]), "[FIRING:1]")
		case strings.HasPrefix(q.path, "/opsgenie"):
			return q.path == "/opsgenie/v2/alerts"
		}
		return false
	}
	resolved := func(q recorded) bool {
		switch {
		case strings.HasPrefix(q.path, "/hook"):
			return str(q.body, "status") == "resolved"
		case strings.HasPrefix(q.path, "/pagerduty"):
			return str(q.body, "event_action") == "resolve"
		case strings.HasPrefix(q.path, "/slack"):
			return strings.Contains(fmt.Sprint(q.body["attachments"]), "[RESOLVED]")
		case strings.HasPrefix(q.path, "/opsgenie"):
			return strings.HasSuffix(q.path, "/close")
		}
		return false
	}
	receivers := []string{"/hook", "/pagerduty", "/slack", "/opsgenie"}
	waitAll := func(what string, pred func(recorded) bool) {
		t.Helper()
		eventually(t, 45*time.Second, func() error {
			for _, p := range receivers {
				if len(rec.matching(p, pred)) == 0 {
					return fmt.Errorf("no %s notification at %s yet", what, p)
				}
			}
			return nil
		})
	}
	waitAll("firing", firing)

	hook := rec.matching("/hook", firing)[0].body
	alerts, _ := hook["alerts"].([]any)
	if len(alerts) != 1 {
		t.Fatalf("webhook: %v", hook)
	}
	labels, _ := alerts[0].(map[string]any)["labels"].(map[string]any)
	if labels["alertname"] != "FlagUp" || labels["agent"] != "e2e" || labels["job"] != "flagd" {
		t.Errorf("webhook alert labels %v, want alertname, the external label and job", labels)
	}
	pd := rec.matching("/pagerduty", firing)[0]
	if str(pd.body, "routing_key") != "pd-routing-key-0123456789abcdef" || str(pd.body, "dedup_key") == "" {
		t.Errorf("PagerDuty trigger: %v", pd.body)
	}
	if g := rec.matching("/opsgenie", firing)[0]; g.auth != "GenieKey genie-secret" || str(g.body, "alias") == "" {
		t.Errorf("Opsgenie create: auth %q body %v", g.auth, g.body)
	}
	if s := rec.matching("/slack", firing)[0]; str(s.body, "channel") != "#oncall" {
		t.Errorf("Slack: %v", s.body)
	}

	// amtool, Alertmanager's own client, against the agent.
	out, code := runTool(t, 30*time.Second, amtool, "--alertmanager.url=http://"+amAddr, "alert", "query", "alertname=FlagUp")
	if code != 0 || !strings.Contains(out, "FlagUp") {
		t.Errorf("amtool alert query: exit %d\n%s", code, out)
	}
	out, code = runTool(t, 30*time.Second, amtool, "--alertmanager.url=http://"+amAddr, "silence", "add", "alertname=Other",
		"--comment=e2e", "--author=e2e", "--duration=1h")
	if code != 0 {
		t.Errorf("amtool silence add: exit %d\n%s", code, out)
	}
	out, code = runTool(t, 30*time.Second, amtool, "--alertmanager.url=http://"+amAddr, "silence", "query", "-q")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("amtool silence query: exit %d\n%s", code, out)
	}

	// A restart while the alert fires: the notification log on disk keeps it from paging again.
	before := len(rec.matching("/hook", firing))
	v.stopClean(t)
	v = startVigil(t, "vigil-restarted", cfg, tel)
	time.Sleep(6 * time.Second) // several evaluations and group intervals
	if n := len(rec.matching("/hook", firing)); n != before {
		t.Errorf("after a restart the firing alert was sent again: %d firing notifications, had %d", n, before)
	}
	out, code = runTool(t, 30*time.Second, amtool, "--alertmanager.url=http://"+amAddr, "silence", "query", "-q")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("the silence did not survive the restart: exit %d\n%s", code, out)
	}

	flag.set(0)
	waitAll("resolved", resolved)
	pdr := rec.matching("/pagerduty", resolved)[0]
	if str(pdr.body, "dedup_key") != str(pd.body, "dedup_key") {
		t.Errorf("PagerDuty resolve dedup_key %q, trigger had %q", str(pdr.body, "dedup_key"), str(pd.body, "dedup_key"))
	}
	if gc := rec.matching("/opsgenie", resolved)[0]; !strings.Contains(gc.path, "/v2/alerts/") {
		t.Errorf("Opsgenie close path %s", gc.path)
	}
	checkPayloads(t, rec)
	for _, line := range strings.Split(v.output(), "\n") {
		if strings.Contains(line, "genie-secret") || strings.Contains(line, "pd-routing-key") {
			t.Errorf("a secret was logged: %s", line)
		}
	}
	flag.close()
	v.stopClean(t)
}

// checkPayloads decodes every request the notifiers made with the receiving service's
// published type and checks its required fields; the firing and resolved ones must carry the
// alert.
func checkPayloads(t *testing.T, rec *recorder) {
	t.Helper()
	rec.mu.Lock()
	reqs := slices.Clone(rec.reqs)
	rec.mu.Unlock()
	seen := map[string]int{}
	for _, q := range reqs {
		var err error
		switch {
		case strings.HasPrefix(q.path, "/hook"):
			var m webhook.Message
			if err = decodeStrict(q.raw, &m); err == nil {
				err = checkWebhook(m)
			}
			if err == nil && m.Alerts[0].Labels["alertname"] != "FlagUp" {
				err = fmt.Errorf("webhook alert %v", m.Alerts[0].Labels)
			}
			seen["webhook "+m.Status]++
		case strings.HasPrefix(q.path, "/pagerduty"):
			var e pagerduty.V2Event
			if e, err = checkPagerDuty(q.raw); err == nil && e.Action == "trigger" && !strings.Contains(e.Payload.Summary, "FlagUp") {
				err = fmt.Errorf("pagerduty summary %q does not name the alert", e.Payload.Summary)
			}
			seen["pagerduty "+e.Action]++
		case strings.HasPrefix(q.path, "/slack"):
			var m slack.WebhookMessage
			if m, err = checkSlack(q.raw); err == nil && (m.Channel != "#oncall" || !strings.Contains(m.Attachments[0].Title, "FlagUp")) {
				err = fmt.Errorf("slack channel %q, title %q", m.Channel, m.Attachments[0].Title)
			}
			seen["slack"]++
		case strings.HasPrefix(q.path, "/opsgenie"):
			var c *alert.CreateAlertRequest
			var cl *alert.CloseAlertRequest
			c, cl, err = checkOpsgenie(q.path, q.query, q.raw)
			switch {
			case c != nil && !strings.Contains(c.Message, "FlagUp"):
				err = fmt.Errorf("opsgenie message %q does not name the alert", c.Message)
			case c != nil:
				seen["opsgenie create"]++
			case cl != nil:
				seen["opsgenie close"]++
			}
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", q.path, err, q.raw)
		}
	}
	for _, k := range []string{"webhook firing", "webhook resolved", "pagerduty trigger", "pagerduty resolve", "opsgenie create", "opsgenie close"} {
		if seen[k] == 0 {
			t.Errorf("no %s request checked (%v)", k, seen)
		}
	}
	if seen["slack"] < 2 {
		t.Errorf("%d Slack messages checked, want the firing and the resolved one", seen["slack"])
	}
}

const killVigil = alertingHead + `  store: {path: %[4]s/store, retention: 1h}
  alertmanager:
    endpoint: %[5]s
    data_dir: %[4]s/am
    config:
      route: {receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: 2s, repeat_interval: 1h}
      receivers:
        - name: hook
          webhook_configs: [{url: 'http://%[6]s/hook', send_resolved: true}]
`

// flaky answers 503 until up is set, and records what it accepted.
type flaky struct {
	recorder
	mu      sync.Mutex
	up      bool
	refused int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	up := f.up
	if !up {
		f.refused++
	}
	f.mu.Unlock()
	if !up {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	f.recorder.ServeHTTP(w, r)
}

func (f *flaky) setUp(up bool) {
	f.mu.Lock()
	f.up = up
	f.mu.Unlock()
}

// waitRefused waits until the target has refused n requests.
func (f *flaky) waitRefused(t *testing.T, n int) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.refused < n {
			return fmt.Errorf("%d notifications refused so far, want %d", f.refused, n)
		}
		return nil
	})
}

// startKillVigil runs vigil with killVigil paging target, and the flag sender.
func startKillVigil(t *testing.T, target *flaky) (v *vigil, restart func() *vigil, flag *flagSender) {
	t.Helper()
	dir := t.TempDir()
	hookAddr := serveHTTP(t, target)
	rules := filepath.Join(dir, "flag.rules.yaml")
	if err := os.WriteFile(rules, []byte(flagRules), 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr, tel, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(killVigil, grpcAddr, tel, rules, dir, amAddr, hookAddr)
	v = startVigil(t, "vigil", cfg, tel)
	restart = func() *vigil { return startVigil(t, "vigil-restarted", cfg, tel) }
	return v, restart, sendFlag(t, grpcAddr)
}

// TestPageSurvivesKill: the page's target refuses while the alert fires; Vigil is killed with
// SIGKILL before any page got through. After the restart the alert's state comes back from
// the store's WAL, and once the target is up the page arrives, once: a page that was never
// delivered is not lost to a crash, nor sent twice (the outbox leaves it to the restored alert).
func TestPageSurvivesKill(t *testing.T) {
	target := &flaky{}
	v, restart, flag := startKillVigil(t, target)
	target.waitRefused(t, 2)
	flag.close()
	v.kill()
	if n := len(target.matching("/hook", nil)); n != 0 {
		t.Fatalf("%d pages accepted while the target was down", n)
	}

	target.setUp(true)
	v = restart() // no new samples: the WAL has the alert's series and state
	eventually(t, 30*time.Second, func() error {
		for _, q := range target.matching("/hook", nil) {
			if str(q.body, "status") == "firing" {
				return nil
			}
		}
		return fmt.Errorf("the page did not arrive after the restart")
	})
	time.Sleep(5 * time.Second) // evaluations, group intervals and the outbox have had their turn
	firing := 0
	for _, q := range target.matching("/hook", nil) {
		if str(q.body, "status") == "firing" {
			firing++
		}
	}
	if firing != 1 {
		t.Errorf("the page arrived %d times, want once", firing)
	}
	if got := metricValues(t, v.telemetry, "vigil_alerting_outbox_superseded_total"); got != 1 {
		t.Errorf("vigil_alerting_outbox_superseded_total %v, want 1 (the refused page, re-derived from the store instead)", got)
	}
	v.stopClean(t)
}

// TestResolvedSurvivesKill: the alert fires and is paged; then the target goes down, the alert
// resolves, and its resolved notification is refused; Vigil is killed with SIGKILL. Nothing
// after the restart would send that notification again (the alert is no longer active), so
// only the outbox can: once the target is up, the resolved notification arrives.
func TestResolvedSurvivesKill(t *testing.T) {
	target := &flaky{up: true}
	v, restart, flag := startKillVigil(t, target)
	status := func(s string) bool {
		for _, q := range target.matching("/hook", nil) {
			if str(q.body, "status") == s {
				return true
			}
		}
		return false
	}
	eventually(t, 30*time.Second, func() error {
		if !status("firing") {
			return fmt.Errorf("not paged yet")
		}
		return nil
	})
	target.setUp(false)
	flag.set(0)
	target.waitRefused(t, 2) // the resolved notification
	flag.close()
	v.kill()
	if status("resolved") {
		t.Fatal("a resolved notification got through while the target was down")
	}
	target.setUp(true)
	v = restart()
	eventually(t, 30*time.Second, func() error {
		if !status("resolved") {
			return fmt.Errorf("the resolved notification did not arrive after the restart")
		}
		return nil
	})
	if got := metricValues(t, v.telemetry, "vigil_alerting_outbox_delivered_total"); got < 1 {
		t.Errorf("vigil_alerting_outbox_delivered_total %v, want at least 1", got)
	}
	v.stopClean(t)
}
