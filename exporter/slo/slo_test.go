package slo

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protowire"

	alerting "github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	sloengine "github.com/vigilhq/vigil/slo/engine"
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
        spans: {service: checkout, name: POST /pay, latency: 200ms}
      alerting: {name: PayBudgetBurn}
    - name: payment-log
      objective: 99
      sli:
        logs: {match: {service: checkout}, bad: {severity: error}}
      alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
`

// newExporter builds the exporter on a real SLO engine (and the alerting engine it needs),
// and serves the engine's /api/v1/slos to read the counts back.
func newExporter(t *testing.T) (component.Exporter, *componenttest.Counters, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	ac := alerting.NewConfig()
	ac.Store.Path = filepath.Join(dir, "store")
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	al, err := alerting.New(ac, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = al.Stop() })
	sc := sloengine.NewConfig()
	sc.StateDir = filepath.Join(dir, "slo")
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
	eng, err := sloengine.New(sc, al, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	eng.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	counters := &componenttest.Counters{}
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	set.Counters = counters
	cfg := NewFactory().NewConfig().(*Config)
	if _, err := NewFactory().Create(set, cfg); err == nil || !strings.Contains(err.Error(), "needs the top-level slos section") {
		t.Fatalf("created without an engine: %v", err)
	}
	cfg.Attach(eng)
	c, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, counters, srv
}

// events reads an SLO's total and bad events from /api/v1/slos.
func events(t *testing.T, srv *httptest.Server, name string) (total, bad float64) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/slos")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			SLOs []sloengine.SLOStatus `json:"slos"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Data.SLOs {
		if s.Name == name {
			return s.Events, s.BadEvents
		}
	}
	t.Fatalf("no SLO %q in /api/v1/slos", name)
	return 0, 0
}

// TestCountsSpansAndLogs: the spans and log records the SLIs match are counted (bad ones as
// bad) once Consume returns, from decoded and encoded batches alike; every item of a consumed
// batch is counted as sent, matched or not.
func TestCountsSpansAndLogs(t *testing.T) {
	e, counters, srv := newExporter(t)
	now := time.Now()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	for i, tc := range []struct {
		name string
		d    time.Duration
		err  bool
	}{{"POST /pay", 50 * time.Millisecond, false}, {"POST /pay", time.Second, false}, {"POST /pay", 10 * time.Millisecond, true}, {"GET /health", 0, false}} {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(tc.name)
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-tc.d)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		if tc.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	ctx := context.Background()
	if err := e.Consume(ctx, batch.FromTraces(td)); err != nil {
		t.Fatal(err)
	}
	if total, bad := events(t, srv, "pay"); total != 3 || bad != 2 {
		t.Errorf("after 3 matching spans (one slow, one failed): %v events, %v bad; want 3 and 2", total, bad)
	}
	enc, err := batch.FromTraces(td).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Consume(ctx, b); err != nil {
		t.Fatal(err)
	}
	if total, bad := events(t, srv, "pay"); total != 6 || bad != 4 {
		t.Errorf("after the same spans encoded: %v events, %v bad; want 6 and 4", total, bad)
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, sev := range []string{"info", "error", "info"} {
		r := recs.AppendEmpty()
		r.SetSeverityText(sev)
		r.SetTimestamp(pcommon.NewTimestampFromTime(now))
		r.Body().SetStr("payment")
	}
	if err := e.Consume(ctx, batch.FromLogs(ld)); err != nil {
		t.Fatal(err)
	}
	if total, bad := events(t, srv, "payment-log"); total != 3 || bad != 1 {
		t.Errorf("logs: %v events, %v bad; want 3 and 1", total, bad)
	}
	if got := counters.Get(component.Sent); got != 4+4+3 {
		t.Errorf("sent %d items, want 11", got)
	}
}

// TestRefusesWhatItCannotCount: a metrics batch (the exporter takes traces and logs) and an
// encoded batch that does not decode are refused as permanent failures and counted as
// dropped, and the counts are unchanged.
func TestRefusesWhatItCannotCount(t *testing.T) {
	e, counters, srv := newExporter(t)
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	err := e.Consume(context.Background(), batch.FromMetrics(md))
	if !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "takes traces and logs, got metrics") {
		t.Errorf("metrics: %v, want a permanent refusal", err)
	}
	// A span whose name (field 5) is a varint: the arrival scan checks structure and IDs only,
	// so the batch wraps, but it does not decode.
	span := protowire.AppendTag(nil, 5, protowire.VarintType)
	span = protowire.AppendVarint(span, 7)
	wrap := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	b, err := batch.FromEncoded(batch.Traces, wrap(1, wrap(2, wrap(2, span))))
	if err != nil {
		t.Fatalf("the scan refused the request: %v", err)
	}
	err = e.Consume(context.Background(), b)
	if !consumererror.IsPermanent(err) {
		t.Errorf("undecodable spans: %v, want a permanent refusal", err)
	}
	if got := counters.Get(component.Dropped); got != 2 {
		t.Errorf("dropped %d items, want 2 (a data point and a span)", got)
	}
	if total, _ := events(t, srv, "pay"); total != 0 {
		t.Errorf("%v events counted from refused batches", total)
	}
}
