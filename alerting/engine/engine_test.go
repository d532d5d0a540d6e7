package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/alerting/rulestest"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promrw"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

func testConfig(t *testing.T, dir string) *Config {
	t.Helper()
	cfg := NewConfig()
	cfg.RuleFiles = []string{"testdata/*.rules.yaml"}
	cfg.EvaluationInterval = 100 * time.Millisecond
	cfg.ExternalLabels = map[string]string{"agent": "node-1"}
	cfg.Store.Path = dir
	cfg.Store.Retention = time.Hour
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// feed appends one sample of each series at now.
func feed(t *testing.T, e *Engine, series ...labels.Labels) *feedResult {
	t.Helper()
	app := e.Store().Feed(context.Background())
	now := time.Now().UnixMilli()
	for _, ls := range series {
		if _, err := app.Append(0, ls, 0, now, 10, nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return &feedResult{app.Appended, app.Skipped, app.Refused}
}

type feedResult struct{ appended, skipped, refused int }

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func get(t *testing.T, srv *httptest.Server, path string, q url.Values) (int, apiResponse) {
	t.Helper()
	resp, err := http.Get(srv.URL + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, r
}

type alertsData struct {
	Alerts []apiAlert `json:"alerts"`
}

type apiAlert = struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
}

// waitAlert polls /api/v1/alerts for up to 15 s until an alert satisfies found, and returns it.
func waitAlert(t *testing.T, srv *httptest.Server, what string, found func(apiAlert) bool) apiAlert {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_, r := get(t, srv, "/api/v1/alerts", nil)
		var d alertsData
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Alerts {
			if found(a) {
				return a
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 15s", what)
	return apiAlert{}
}

func waitFiring(t *testing.T, srv *httptest.Server) (activeAt time.Time, summary string) {
	t.Helper()
	a := waitAlert(t, srv, "ManyErrors firing", func(a apiAlert) bool { return a.State == "firing" })
	if a.Labels["severity"] != "page" || a.Labels["job"] != "api" || a.Labels["alertname"] != "ManyErrors" {
		t.Errorf("firing alert labels %v", a.Labels)
	}
	return a.ActiveAt, a.Annotations["summary"]
}

var timeZero time.Time

func startForFuzz(f *testing.F) (*Engine, *httptest.Server) {
	cfg := NewConfig()
	cfg.RuleFiles = []string{"testdata/*.rules.yaml"}
	cfg.Store.Path = f.TempDir()
	cfg.Query.Timeout = time.Second
	return start(f, cfg)
}

func start(t testing.TB, cfg *Config) (*Engine, *httptest.Server) {
	t.Helper()
	e, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.Register(mux)
	srv := httptest.NewServer(mux)
	return e, srv
}

// TestRulesFireAndStateSurvivesRestart: samples fed to the store are evaluated by the upstream
// rule manager (recording rule, then an alert on its output with `for`); the API shows the
// alert firing with its rendered annotation, the recorded series and ALERTS; unselected series
// are not stored. After a restart on the same directory the alert is firing again at once with
// the same activeAt (restored from ALERTS_FOR_STATE in the WAL), not pending anew.
func TestRulesFireAndStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	e, srv := start(t, cfg)
	var (
		outMu sync.Mutex
		out   = map[string]int{} // metric name → samples the outputs got
	)
	remove := e.AddOutput(func(_ context.Context, b *batch.Batch) error {
		body, _ := b.PromRW()
		outMu.Lock()
		defer outMu.Unlock()
		return promrw.ScanV1(body, func(s promrw.SeriesV1) error {
			out[string(s.MetricName())] += s.Samples
			return nil
		})
	})
	api := labels.FromStrings("__name__", "errors_total", "job", "api")
	res := feed(t, e, api, labels.FromStrings("__name__", "unrelated_total", "job", "api"))
	if res.appended != 1 || res.skipped != 1 {
		t.Errorf("fed 1 selected and 1 unselected series: appended %d, skipped %d", res.appended, res.skipped)
	}
	stopFeeding := make(chan struct{})
	fed := make(chan struct{})
	go func() { // keep the series fresh while the alert waits for its `for`
		defer close(fed)
		for {
			select {
			case <-stopFeeding:
				return
			case <-time.After(200 * time.Millisecond):
				feed(t, e, api)
			}
		}
	}()
	activeAt, summary := waitFiring(t, srv)
	if summary != "api has 10 errors" {
		t.Errorf("summary %q, want the rendered template", summary)
	}

	for _, tc := range []struct{ query, want string }{
		{`job:errors:sum`, `"job":"api"`},
		{`ALERTS{alertname="ManyErrors",alertstate="firing"}`, `"severity":"page"`},
		{`ALERTS_FOR_STATE`, `"ALERTS_FOR_STATE"`},
		// A subquery without a step steps at the evaluation interval (it once dereferenced nil).
		{`max_over_time(job:errors:sum[1m:])`, `"job":"api"`},
	} {
		code, r := get(t, srv, "/api/v1/query", url.Values{"query": {tc.query}})
		if code != 200 || r.Status != "success" || !strings.Contains(string(r.Data), tc.want) || !strings.Contains(string(r.Data), `"resultType":"vector"`) {
			t.Errorf("query %s: %d %s %s", tc.query, code, r.Status, r.Data)
		}
	}
	if _, r := get(t, srv, "/api/v1/series", url.Values{"match[]": {"unrelated_total"}}); string(r.Data) != "[]" {
		t.Errorf("a series no rule selects was stored: %s", r.Data)
	}
	if _, r := get(t, srv, "/api/v1/series", url.Values{"match[]": {"errors_total"}}); !strings.Contains(string(r.Data), `"job":"api"`) {
		t.Errorf("series errors_total: %s", r.Data)
	}
	if _, r := get(t, srv, "/api/v1/labels", nil); !strings.Contains(string(r.Data), `"job"`) || !strings.Contains(string(r.Data), `"alertstate"`) {
		t.Errorf("labels: %s", r.Data)
	}
	if _, r := get(t, srv, "/api/v1/label/job/values", url.Values{"match[]": {"errors_total"}}); string(r.Data) != `["api"]` {
		t.Errorf("label values of job for errors_total: %s", r.Data)
	}
	if _, r := get(t, srv, "/api/v1/rules", nil); !strings.Contains(string(r.Data), `"state":"firing"`) || !strings.Contains(string(r.Data), `"type":"recording"`) {
		t.Errorf("rules: %s", r.Data)
	}
	remove()
	outMu.Lock()
	for _, name := range []string{"job:errors:sum", "ALERTS", "ALERTS_FOR_STATE"} {
		if out[name] == 0 {
			t.Errorf("the outputs got no %s: %v", name, out)
		}
	}
	outMu.Unlock()
	close(stopFeeding)
	<-fed
	srv.Close()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	e2, srv2 := start(t, cfg)
	defer func() {
		srv2.Close()
		if err := e2.Stop(); err != nil {
			t.Error(err)
		}
	}()
	feed(t, e2, api)
	restoredAt, _ := waitFiring(t, srv2)
	if !restoredAt.Equal(activeAt.Truncate(time.Second)) {
		t.Errorf("after a restart activeAt is %s, want %s restored (to the second, as Prometheus stores it)", restoredAt, activeAt.Truncate(time.Second))
	}
}

// TestPendingKeepsItsAgeAcrossRestart: an alert pending on a long `for` is pending again after
// a restart and keeps the time it had spent pending (its activeAt moves forward by the time the
// agent was down, as in Prometheus; for_grace_period is 0), so a restart does not put off the
// page by the whole `for`.
func TestPendingKeepsItsAgeAcrossRestart(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.RuleFiles = []string{"testdata/pending/*.rules.yaml"}
	api := labels.FromStrings("__name__", "errors_total", "job", "api")
	pending := func(srv *httptest.Server) time.Time {
		t.Helper()
		a := waitAlert(t, srv, "SlowBurn", func(a apiAlert) bool { return a.Labels["alertname"] == "SlowBurn" })
		if a.State != "pending" {
			t.Fatalf("SlowBurn is %s, want pending for an hour", a.State)
		}
		return a.ActiveAt
	}
	e, srv := start(t, cfg)
	feed(t, e, api)
	activeAt := pending(srv)
	time.Sleep(3 * time.Second) // pending for 3 s, ALERTS_FOR_STATE written meanwhile
	spent := time.Since(activeAt)
	srv.Close()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	time.Sleep(2 * time.Second) // down for 2 s
	e2, srv2 := start(t, cfg)
	defer func() {
		srv2.Close()
		if err := e2.Stop(); err != nil {
			t.Error(err)
		}
	}()
	feed(t, e2, api)
	pending(srv2)
	// The manager restores `for` state after the second evaluation of a group (the first may
	// lack data); until then the alert is pending anew.
	time.Sleep(500 * time.Millisecond)
	restored := pending(srv2)
	// A fresh alert would have been pending for well under a second; the restored one for what
	// it had, give or take a second (ALERTS_FOR_STATE keeps activeAt, and the restore reads the
	// last sample's time, to the second).
	if got := time.Since(restored); got < spent-1200*time.Millisecond || got > spent+1800*time.Millisecond {
		t.Errorf("after a restart the alert has been pending for %s (activeAt %s), want about the %s it had before (activeAt %s)",
			got.Round(time.Millisecond), restored, spent.Round(time.Millisecond), activeAt)
	}
}

// TestAPIErrors: bad parameters get Prometheus's error envelope and status codes.
func TestAPIErrors(t *testing.T) {
	e, srv := start(t, testConfig(t, t.TempDir()))
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	for _, tc := range []struct {
		path string
		q    url.Values
		code int
		typ  string
	}{
		{"/api/v1/query", url.Values{"query": {"sum("}}, 400, "bad_data"},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100"}, "step": {"0"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data"},
		{"/api/v1/series", nil, 400, "bad_data"},
		{"/api/v1/series", url.Values{"match[]": {"{"}}, 400, "bad_data"},
		{"/api/v1/rules", url.Values{"type": {"x"}}, 400, "bad_data"},
	} {
		code, r := get(t, srv, tc.path, tc.q)
		if code != tc.code || r.Status != "error" || r.ErrorType != tc.typ || r.Error == "" {
			t.Errorf("%s %v: %d %+v, want %d %s", tc.path, tc.q, code, r, tc.code, tc.typ)
		}
	}
	code, r := get(t, srv, "/api/v1/query_range", url.Values{"query": {"vector(1)"}, "start": {"0"}, "end": {"60"}, "step": {"15s"}})
	if code != 200 || !strings.Contains(string(r.Data), `"resultType":"matrix"`) || strings.Count(string(r.Data), `"1"`) != 5 {
		t.Errorf("query_range: %d %s", code, r.Data)
	}
}

// TestMaxSeries: beyond max_series a new series is refused and counted; known series go on.
func TestMaxSeries(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Store.MaxSeries = 2
	e, srv := start(t, cfg)
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	s := func(job string) labels.Labels { return labels.FromStrings("__name__", "errors_total", "job", job) }
	if r := feed(t, e, s("a"), s("b"), s("c")); r.appended != 2 || r.refused != 1 {
		t.Errorf("3 new series, limit 2: %+v", *r)
	}
	if r := feed(t, e, s("a"), s("d")); r.appended != 1 || r.refused != 1 {
		t.Errorf("a known and a new series at the limit: %+v", *r)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad rule file", func(c *Config) { c.RuleFiles = []string{"testdata/bad/*.yaml"} }, "rule_files:"},
		{"short retention", func(c *Config) { c.Store.Retention = time.Minute; c.RuleFiles = []string{"testdata/long/*.yaml"} }, "store.retention: 1m0s is less than twice"},
		{"bad external label", func(c *Config) { c.ExternalLabels = map[string]string{"a-b": "x"} }, "external_labels"},
		{"bad keep", func(c *Config) { c.Store.Keep = []string{"{"} }, "store.keep[0]"},
		{"bad url", func(c *Config) { c.ExternalURL = "vigil" }, "external_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			c.RuleFiles = []string{filepath.Join("testdata", "*.rules.yaml")}
			tc.mod(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReload: new rule files are picked up (and the series they select stored); a broken one
// keeps the running rules, counted as a failed reload.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.rules.yaml", "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: a_total > 0\n")
	cfg := NewConfig()
	cfg.RuleFiles = []string{filepath.Join(dir, "*.rules.yaml")}
	cfg.Store.Path = filepath.Join(dir, "store")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, srv := start(t, cfg)
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	b := labels.FromStrings("__name__", "b_total", "job", "x")
	if r := feed(t, e, b); r.skipped != 1 {
		t.Fatalf("b_total stored before a rule selects it: %+v", *r)
	}
	write("b.rules.yaml", "groups:\n  - name: b\n    rules:\n      - alert: B\n        expr: b_total > 0\n")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mgr.RuleGroups()); n != 2 {
		t.Errorf("%d groups after adding a file, want 2", n)
	}
	if r := feed(t, e, b); r.appended != 1 {
		t.Errorf("b_total not stored after the reload: %+v", *r)
	}
	write("c.rules.yaml", "groups:\n  - name: c\n    rules:\n      - alert: C\n        expr: sum(\n")
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "c.rules.yaml") {
		t.Errorf("a broken rule file: %v, want an error naming it", err)
	}
	if n := len(e.mgr.RuleGroups()); n != 2 {
		t.Errorf("%d groups after a failed reload, want the 2 running", n)
	}
	if v := testutil.ToFloat64(e.lastReload); v != 0 {
		t.Errorf("last reload successful = %v after a failure", v)
	}
}

// TestSelfHealthPack: the embedded pack passes its unit tests (promtool's format, which the
// e2e suite also runs through Debian's promtool), and self_health loads it without rule files.
func TestSelfHealthPack(t *testing.T) {
	var out strings.Builder
	if code := rulestest.Run(&out, "testdata/selfhealth/selfhealth.test.yaml"); code != 0 {
		t.Fatalf("self-health unit tests: exit %d\n%s", code, out.String())
	}
	cfg := NewConfig()
	cfg.SelfHealth = true
	cfg.Store.Path = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, srv := start(t, cfg)
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	if n := len(e.mgr.Rules()); n != 7 {
		t.Errorf("%d self-health rules loaded, want 7", n)
	}
	if r := feed(t, e, labels.FromStrings("__name__", "up", "job", "vigil", "instance", "127.0.0.1:8888")); r.appended != 1 {
		t.Errorf("up not selected by the pack: %+v", *r)
	}
}

// TestRuleProducing100kSeries: a rule whose result has 100 000 series. With the rule's
// `limit` it fails that evaluation, says so in /api/v1/rules and is counted; without one its
// output is held to the store's max_series, the rest refused and counted. Either way the
// other rules keep being evaluated and the alert beside them fires.
func TestRuleProducing100kSeries(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "wide.rules.yaml")
	if err := os.WriteFile(file, []byte(`groups:
  - name: limited
    limit: 1000
    rules:
      - record: wide:doubled
        expr: wide * 2
  - name: unlimited
    rules:
      - record: wide:tripled
        expr: wide * 3
  - name: other
    rules:
      - alert: StillEvaluated
        expr: vector(1) > 0
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.RuleFiles = []string{file}
	cfg.EvaluationInterval = 200 * time.Millisecond
	cfg.Store.Path = filepath.Join(dir, "store")
	cfg.Store.MaxSeries = 150_000
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e, err := New(cfg, slog.New(slog.DiscardHandler), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	series := make([]labels.Labels, 100_000)
	for i := range series {
		series[i] = labels.FromStrings("__name__", "wide", "i", strconv.Itoa(i))
	}
	// Fed before the rules start, so that the first evaluation already sees all of them.
	if r := feed(t, e, series...); r.appended != len(series) {
		t.Fatalf("feeding the input: %+v", *r)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.Register(mux)
	srv := httptest.NewServer(mux)
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	gather := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
		return sum
	}
	type rule struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		State     string `json:"state"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, r := get(t, srv, "/api/v1/rules", nil)
		var d struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []rule `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		byName := map[string]rule{}
		for _, g := range d.Groups {
			for _, r := range g.Rules {
				byName[r.Name] = r
			}
		}
		refused := gather("vigil_alerting_store_refused_series_total")
		lim := byName["wide:doubled"]
		if lim.Health == "err" && strings.Contains(lim.LastError, "limit") && refused > 0 &&
			byName["StillEvaluated"].State == "firing" && gather("prometheus_rule_evaluation_failures_total") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: rules %+v, %v series refused, %v evaluation failures, %v series, %v appended", byName, refused,
				gather("prometheus_rule_evaluation_failures_total"), gather("vigil_alerting_store_series"), gather("vigil_alerting_store_samples_appended_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := gather("vigil_alerting_store_series"); n > float64(cfg.Store.MaxSeries) {
		t.Errorf("the store holds %v series, above max_series %d", n, cfg.Store.MaxSeries)
	}
}

// TestAlertLogSaysEachChangeOnce: the rule manager's resends of a firing or resolved alert are
// not logged again; a new activeAt (fired again) and a resolution are.
func TestAlertLogSaysEachChangeOnce(t *testing.T) {
	var l alertLog
	t0 := time.Now()
	t1 := t0.Add(time.Hour)
	for i, step := range []struct {
		h        uint64
		activeAt time.Time
		resolved bool
		want     bool
	}{
		{1, t0, false, true},
		{1, t0, false, false}, // resent
		{2, t0, false, true},  // another alert
		{1, t0, true, true},   // resolved
		{1, t0, true, false},  // resolved, resent
		{1, t1, false, true},  // firing again
		{1, t1, false, false},
	} {
		if got := l.changed(step.h, step.activeAt, step.resolved, time.Minute); got != step.want {
			t.Errorf("step %d: changed = %v, want %v", i, got, step.want)
		}
	}
}
