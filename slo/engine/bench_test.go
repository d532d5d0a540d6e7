package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/slo/spec"
)

// benchEngine is an engine (no alerting engine: ConsumeTraces does not need it) with n span
// SLOs, on services svc-0 … svc-(n-1), each on its server spans of POST /pay under 200 ms.
func benchEngine(b *testing.B, n int) *Engine {
	e := &Engine{now: time.Now}
	e.initMetrics()
	for i := range n {
		s := &spec.SLO{ID: fmt.Sprintf("svc-%d-pay", i), Service: fmt.Sprintf("svc-%d", i), Name: "pay", Objective: 99.9,
			SLI:      spec.SLI{Spans: &spec.Spans{Service: fmt.Sprintf("svc-%d", i), Kind: "server", Name: "POST /pay", Latency: 200 * time.Millisecond}},
			Alerting: spec.Alerting{Name: "A"}}
		slo, err := NewSLO(s, Options{}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		m, _ := newSpanMatcher(s.SLI.Spans)
		e.slos = append(e.slos, &entry{SLO: slo, spans: m})
	}
	return e
}

// BenchmarkSpanSLI: batches of 1000 spans (10 services × 100, half of them the SLO's route,
// 1% errors) through 10 span SLOs. spans/s is the rate the exporter counts at.
func BenchmarkSpanSLI(b *testing.B) {
	e := benchEngine(b, 10)
	td := ptrace.NewTraces()
	now := time.Now()
	for s := range 10 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range 100 {
			sp := spans.AppendEmpty()
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName("POST /pay")
			if i%2 == 1 {
				sp.SetName("GET /cart")
			}
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(rand.IntN(300)) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
			if i == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		e.ConsumeTraces(td)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkStatePerSLO: the memory one 30-day SLO's counts take (live heap per SLO over 100
// of them), and its snapshot on disk idle and after a month of traffic in every minute.
func BenchmarkStatePerSLO(b *testing.B) {
	var before, after runtime.MemStats
	var e *Engine
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		e = benchEngine(b, 100)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100, "heap-B/slo")
	r := e.slos[0].Ring
	var idle, busy bytes.Buffer
	if err := r.WriteSnapshot(&idle, 1); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for m := range 30 * 24 * 60 {
		at := now.Add(-time.Duration(m) * time.Minute)
		r.Add(now, at, float64(rand.IntN(5)), float64(900+rand.IntN(200)))
	}
	if err := r.WriteSnapshot(&busy, 1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(idle.Len()), "snapshot-idle-B")
	b.ReportMetric(float64(busy.Len()), "snapshot-busy-B")
	runtime.KeepAlive(e)
}
