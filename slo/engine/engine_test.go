package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	alerting "github.com/vigilhq/vigil/alerting/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

const specs = `
- version: prometheus/v1
  service: checkout
  slos:
    - name: pay
      objective: 99.9
      sli:
        spans: {service: checkout, kind: server, name: POST /pay, latency: 200ms}
      alerting:
        name: CheckoutPayBudgetBurn
        labels: {team: payments}
        annotations: {runbook: "https://runbooks.example/{{ $labels.sloth_slo }}", value: "{{ $value | printf \"%.1f\" }}"}
        page_alert: {labels: {route: pager}}
    - name: payment-log
      objective: 99
      sli:
        logs: {match: {service: checkout, body: "^payment"}, bad: {severity: error}}
      alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
    - name: api
      objective: 99
      sli:
        events:
          error_query: sum(rate(http_requests_total{code="500"}[{{.window}}]))
          total_query: sum(rate(http_requests_total[{{.window}}]))
      alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
`

type harness struct {
	t      *testing.T
	al     *alerting.Engine
	slo    *Engine
	now    time.Time
	mu     sync.Mutex
	alerts []*rules.Alert
}

func newHarness(t *testing.T, dir string, now time.Time) *harness {
	t.Helper()
	h := &harness{t: t, now: now}
	ac := alerting.NewConfig()
	ac.Store.Path = filepath.Join(dir, "store")
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	var err error
	h.al, err = alerting.New(ac, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(_ context.Context, _ string, as ...*rules.Alert) {
		h.mu.Lock()
		h.alerts = append(h.alerts, as...)
		h.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := NewConfig()
	sc.StateDir = filepath.Join(dir, "slo")
	sc.MinEvents = 0
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(specs), &n); err != nil {
		t.Fatal(err)
	}
	if err := n.Content[0].Decode(&sc.Specs); err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	h.slo, err = newEngine(sc, h.al, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func() time.Time { return h.now })
	if err != nil {
		_ = h.al.Stop()
		t.Fatal(err)
	}
	return h
}

func (h *harness) close() {
	h.slo.Stop()
	if err := h.al.Stop(); err != nil {
		h.t.Error(err)
	}
}

func spans(n, errors int, end time.Time, slow bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := ss.AppendEmpty()
		sp.SetName("POST /pay")
		sp.SetKind(ptrace.SpanKindServer)
		d := 50 * time.Millisecond
		if slow {
			d = time.Second
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-d)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		if i < errors {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	// A span of another route, and one of another service: not counted.
	other := ss.AppendEmpty()
	other.SetName("GET /health")
	other.SetKind(ptrace.SpanKindServer)
	return td
}

func (h *harness) value(q string) float64 {
	h.t.Helper()
	v, err := h.al.Query(context.Background(), q, h.now)
	if err != nil || len(v) != 1 {
		h.t.Fatalf("%s: %v %v", q, v, err)
	}
	return v[0].F
}

// TestEngineEndToEnd: spans and logs handed over by the exporter, and a counter in the alerting
// store, are counted; a burst of errors pages through the alerting engine's notify function
// with the SLO's labels and annotations; Sloth's metrics are in the store; /api/v1/slos says
// the same; and after a restart the counts come back from state_dir.
func TestEngineEndToEnd(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := newHarness(t, dir, t0)
	// Counters for the events SLI: 10 requests a second, 1 of them a 500, scraped every 15 s.
	app := h.al.Store().Feed(context.Background())
	for k := 0; k <= 40; k++ {
		ts := t0.Add(-10*time.Minute + time.Duration(k)*15*time.Second).UnixMilli()
		total := labels.FromStrings("__name__", "http_requests_total", "code", "200")
		bad := labels.FromStrings("__name__", "http_requests_total", "code", "500")
		if _, err := app.Append(0, total, 0, ts, float64(k*15*9), nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Append(0, bad, 0, ts, float64(k*15), nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// Ten minutes of good, fast spans, then one minute of errors and one of slow spans.
	for m := range 10 {
		h.now = t0.Add(time.Duration(m-10) * time.Minute)
		h.slo.ConsumeTraces(spans(100, 0, h.now, false))
	}
	h.now = t0.Add(-30 * time.Second)
	h.slo.ConsumeTraces(spans(100, 100, h.now, false))
	h.slo.ConsumeTraces(spans(100, 0, h.now, true))
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	for i, text := range []string{"payment ok", "payment failed", "unrelated"} {
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr(text)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(h.now))
		if i == 1 {
			lr.SetSeverityNumber(plog.SeverityNumberError)
		}
	}
	h.slo.ConsumeLogs(logs)

	h.now = t0
	h.slo.Tick(context.Background(), h.now)
	h.mu.Lock()
	got := h.alerts
	h.mu.Unlock()
	var page *rules.Alert
	for _, a := range got {
		if a.Labels.Get("severity") == "page" && a.Labels.Get("window") == "1h" {
			page = a
		}
	}
	if page == nil {
		t.Fatalf("no 1h page among %v", got)
	}
	if page.Labels.Get("alertname") != "CheckoutPayBudgetBurn" || page.Labels.Get("slo") != "pay" || page.Labels.Get("service") != "checkout" ||
		page.Labels.Get("team") != "payments" || page.Labels.Get("route") != "pager" || page.State != rules.StateFiring {
		t.Errorf("page labels %v state %v", page.Labels, page.State)
	}
	if page.Annotations.Get("runbook") != "https://runbooks.example/pay" || page.Annotations.Get("value") != "166.7" {
		t.Errorf("templated annotations not rendered: %v", page.Annotations)
	}
	if page.Annotations.Get("burn_rate") == "" || page.Annotations.Get("error_budget_remaining") == "" || page.ValidUntil.Before(h.now) {
		t.Errorf("page annotations %v, valid until %v", page.Annotations, page.ValidUntil)
	}
	// 200 bad (100 errors, 100 slow) of 1200 spans in the last hour.
	sel := `{sloth_id="checkout-pay"}`
	if v := h.value(`slo:sli_error:ratio_rate1h` + sel); math.Abs(v-200.0/1200) > 1e-9 {
		t.Errorf("1h error ratio %v, want %v", v, 200.0/1200)
	}
	if v := h.value(`slo:objective:ratio` + sel); math.Abs(v-0.999) > 1e-12 {
		t.Errorf("objective %v", v)
	}
	if v := h.value(`slo:period_error_budget_remaining:ratio` + sel); math.Abs(v-(1-(200.0/1200)/0.001)) > 1e-6 {
		t.Errorf("budget remaining %v", v)
	}
	if v := h.value(`slo:error_budget:ratio` + sel); math.Abs(v-0.001) > 1e-12 {
		t.Errorf("error budget %v, want 0.001", v)
	}
	if v := h.value(`slo:time_period:days` + sel); v != 30 {
		t.Errorf("time period %v days, want 30", v)
	}
	// Burn rates are the error ratios over the budget: the shortest window's is the current one.
	if v, r := h.value(`slo:current_burn_rate:ratio`+sel), h.value(`slo:sli_error:ratio_rate5m`+sel); r == 0 || math.Abs(v-r/0.001) > 1e-6 {
		t.Errorf("current burn rate %v, want the 5m ratio %v over the budget", v, r)
	}
	if v := h.value(`slo:period_burn_rate:ratio` + sel); math.Abs(v-(200.0/1200)/0.001) > 1e-6 {
		t.Errorf("period burn rate %v, want %v", v, (200.0/1200)/0.001)
	}
	if v := h.value(`slo:sli_error:ratio_rate5m{sloth_id="checkout-payment-log"}`); v != 0.5 {
		t.Errorf("log SLO 5m ratio %v, want 0.5 (1 error of 2 payment lines)", v)
	}
	// The events SLI: a tenth of the requests fail.
	if v := h.value(`slo:sli_error:ratio_rate5m{sloth_id="checkout-api"}`); math.Abs(v-0.1) > 1e-6 {
		t.Errorf("events SLO 5m ratio %v, want 0.1", v)
	}

	mux := http.NewServeMux()
	h.slo.Register(mux)
	srv := httptest.NewServer(mux)
	resp, err := http.Get(srv.URL + "/api/v1/slos")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Status string `json:"status"`
		Data   struct {
			SLOs []SLOStatus `json:"slos"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	srv.Close()
	if err != nil || body.Status != "success" || len(body.Data.SLOs) != 3 {
		t.Fatalf("/api/v1/slos: %v %+v", err, body)
	}
	pay := body.Data.SLOs[0]
	if pay.ID != "checkout-pay" || pay.Events != 1200 || pay.BadEvents != 200 || len(pay.Alerts) == 0 || pay.BurnRates["1h"] < 14.4 {
		t.Errorf("/api/v1/slos pay: %+v", pay)
	}
	h.close()

	// A restart: the counts come back.
	h2 := newHarness(t, dir, t0.Add(30*time.Second))
	defer h2.close()
	st := h2.slo.slos[0].Status(h2.now)
	if st.Period.Total != 1200 || st.Period.Bad != 200 {
		t.Errorf("after a restart: %v of %v events, want 200 of 1200", st.Period.Bad, st.Period.Total)
	}
}
