//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const reloadRules = `groups:
  - name: flag
    interval: 1s
    rules:
      - alert: FlagUp
        expr: e2e_flag > 0
        for: 1s
      - alert: FlagLongPending
        expr: e2e_flag > 0
        for: 10m
`

const reloadAM = `route: {receiver: %[1]s, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: %[1]s
    webhook_configs: [{url: 'http://%[2]s/%[1]s', send_resolved: true}]
`

const reloadVigil = alertingHead + `  store: {path: %[4]s/store, retention: 1h}
  alertmanager:
    endpoint: %[5]s
    data_dir: %[4]s/am
    config_file: %[6]s
`

// TestReloadRulesAndRoutes: the rules and the in-agent Alertmanager's routes are reloaded by
// POST /-/reload and by SIGHUP. A rule that did not change keeps its state (the pending alert
// keeps its activeAt), an added rule is evaluated, and the new route sends the firing alert to
// its new receiver. A broken rule file is refused with a 400 that names it, the running rules
// stay, and vigil_config_last_reload_successful says so until a good reload.
func TestReloadRulesAndRoutes(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	hookAddr := serveHTTP(t, rec)
	rules := filepath.Join(dir, "flag.rules.yaml")
	amFile := filepath.Join(dir, "am.yml")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(rules, reloadRules)
	write(amFile, fmt.Sprintf(reloadAM, "one", hookAddr))
	grpcAddr, tel, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(reloadVigil, grpcAddr, tel, rules, dir, amAddr, amFile), tel)
	flag := sendFlag(t, grpcAddr)

	alertState := func() map[string]e2eAlert {
		t.Helper()
		as, err := agentAlerts(tel)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	eventually(t, 30*time.Second, func() error {
		if len(rec.matching("/one", nil)) == 0 {
			return fmt.Errorf("FlagUp not notified to receiver one yet")
		}
		return nil
	})
	pending := alertState()["FlagLongPending"]
	if pending.State != "pending" {
		t.Fatalf("FlagLongPending: %+v, want pending", pending)
	}

	reload := func() (int, string) {
		t.Helper()
		resp, err := httpClient.Post("http://"+tel+"/-/reload", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A new rule and a new route, by POST /-/reload.
	write(rules, reloadRules+"      - alert: Added\n        expr: e2e_flag > 0\n")
	write(amFile, fmt.Sprintf(reloadAM, "two", hookAddr))
	if code, body := reload(); code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() error {
		if len(rec.matching("/two", nil)) == 0 {
			return fmt.Errorf("the firing alert did not reach the new route's receiver")
		}
		if alertState()["Added"].State == "" {
			return fmt.Errorf("the added rule is not evaluated")
		}
		return nil
	})
	if got := alertState()["FlagLongPending"]; got.State != "pending" || !got.ActiveAt.Equal(pending.ActiveAt) {
		t.Errorf("an unchanged rule lost its state in the reload: %+v, had %+v", got, pending)
	}

	// A broken rule file: the config does not load (its rule files are checked as at start),
	// so the reload is refused with a 400 that names the file, and the running rules stay.
	write(rules, reloadRules+"      - alert: Broken\n        expr: sum(rate(\n")
	code, body := reload()
	if code != http.StatusBadRequest || !strings.Contains(body, "flag.rules.yaml") {
		t.Errorf("POST /-/reload with a broken file: %d %q, want 400 naming the file", code, body)
	}
	if got := metricValues(t, tel, "vigil_config_last_reload_successful"); got != 0 {
		t.Errorf("vigil_config_last_reload_successful %v after a failed reload", got)
	}
	time.Sleep(2 * time.Second)
	if a := alertState(); a["Added"].State == "" || !a["FlagLongPending"].ActiveAt.Equal(pending.ActiveAt) {
		t.Errorf("after a failed reload the running rules changed: %+v", a)
	}
	if r, err := httpClient.Get("http://" + tel + "/-/reload"); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /-/reload: %d, want 405", r.StatusCode)
		}
	}

	// SIGHUP with the file fixed (the rule Added removed).
	write(rules, reloadRules)
	if err := v.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		if got := metricValues(t, tel, "vigil_config_last_reload_successful"); got != 1 {
			return fmt.Errorf("vigil_config_last_reload_successful %v after SIGHUP", got)
		}
		if got := metricValues(t, tel, "vigil_alerting_last_reload_successful"); got != 1 {
			return fmt.Errorf("vigil_alerting_last_reload_successful %v after SIGHUP", got)
		}
		if _, ok := alertState()["Added"]; ok {
			return fmt.Errorf("the removed rule still runs")
		}
		return nil
	})
	if got := alertState()["FlagLongPending"]; !got.ActiveAt.Equal(pending.ActiveAt) {
		t.Errorf("the SIGHUP reload lost FlagLongPending's state: %+v, had %+v", got, pending)
	}
	flag.close()
	if code := v.stop(30 * time.Second); code != 0 {
		t.Errorf("vigil exited %d after SIGTERM, want 0", code)
	}
	for line := range strings.SplitSeq(v.output(), "\n") { // the refused reload is the one error
		if strings.Contains(line, `"level":"ERROR"`) && !strings.Contains(line, "reload failed") {
			t.Errorf("vigil logged an error: %s", line)
		}
	}
}

const watchedConfig = `receivers:
  otlp: {protocols: {http: {endpoint: %q}}}
exporters:
%s
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [%s]}
  telemetry:
    metrics: {address: %q}
`

// TestReloadWatchedFile: with --watch-config, an edited config file is applied without a signal:
// an exporter is added while the receiver keeps its listener (the same keep-alive connection
// carries requests before and after), and a broken edit is refused, counted, and changes nothing.
func TestReloadWatchedFile(t *testing.T) {
	dir := t.TempDir()
	httpAddr, tel := freeAddr(t), freeAddr(t)
	one, two := filepath.Join(dir, "one.json"), filepath.Join(dir, "two.json")
	path := filepath.Join(dir, "vigil.yaml")
	write := func(exporters, names string) {
		t.Helper()
		text := fmt.Sprintf(watchedConfig, httpAddr, exporters, names, tel)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fileExp := func(name, p string) string {
		return fmt.Sprintf("  file/%s: {path: %q, flush_interval: 100ms}\n", name, p)
	}
	write(fileExp("one", one), "file/one")
	v := &vigil{process: startProcess(t, "vigil", binary(t, "VIGIL_BIN"), "run", "--config", path, "--watch-config", "200ms"), telemetry: tel}
	waitHTTP(t, v.process, "http://"+tel+"/readyz", 30*time.Second)

	conns := 0
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	send := func(run string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", strings.NewReader(string(tracesRequest(t, 5, run, true))))
		req.Header.Set("Content-Type", "application/json")
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused {
				conns++
			}
		}}
		resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/traces: %d", resp.StatusCode)
		}
	}
	fileHas := func(p, run string) error {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), run) {
			return fmt.Errorf("%s lacks run %s", p, run)
		}
		return nil
	}
	send("before")
	eventually(t, 10*time.Second, func() error { return fileHas(one, "before") })

	write(fileExp("one", one)+fileExp("two", two), "file/one, file/two")
	eventually(t, 10*time.Second, func() error {
		if metricValues(t, tel, "vigil_config_reloads_total") < 1 {
			return fmt.Errorf("no reload after the file changed")
		}
		return nil
	})
	send("after")
	eventually(t, 10*time.Second, func() error {
		if err := fileHas(two, "after"); err != nil {
			return err
		}
		return fileHas(one, "after")
	})
	if conns != 1 {
		t.Errorf("%d connections for requests before and after the reload, want 1 (the unchanged receiver kept it)", conns)
	}
	if !strings.Contains(v.output(), `"changes":"[exporter file/two: added]"`) {
		t.Errorf("the reload did not log what it changed:\n%s", v.output())
	}

	// A broken edit: refused, counted, the running graph stays.
	if err := os.WriteFile(path, []byte("receivers: {otlp: {protocols: {http: {endpoint: [}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if metricValues(t, tel, "vigil_config_last_reload_successful") != 0 {
			return fmt.Errorf("the broken edit is not reported as a failed reload")
		}
		return nil
	})
	send("broken")
	eventually(t, 10*time.Second, func() error { return fileHas(two, "broken") })
	if code := v.stop(30 * time.Second); code != 0 {
		t.Errorf("vigil exited %d after SIGTERM", code)
	}
}
