// Package testdata builds small, deterministic traces, metrics and logs for tests and benchmarks.
// Every item carries a "seq" attribute so end-to-end tests can check each one arrived.
package testdata

import (
	"encoding/binary"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func resource(r pcommon.Resource, i int) {
	r.Attributes().PutStr("service.name", "vigil-test")
	r.Attributes().PutInt("resource.index", int64(i))
}

// Traces returns resources×spans spans; seq numbers start at first.
func Traces(resources, spans, first int) ptrace.Traces {
	td := ptrace.NewTraces()
	seq := first
	for r := 0; r < resources; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		resource(rs.Resource(), r)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("vigil/testdata")
		for s := 0; s < spans; s++ {
			sp := ss.Spans().AppendEmpty()
			var tid [16]byte
			var sid [8]byte
			binary.BigEndian.PutUint64(tid[8:], uint64(seq)+1)
			binary.BigEndian.PutUint64(sid[:], uint64(seq)+1)
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			sp.SetName("GET /api/items")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(epoch.Add(time.Duration(seq) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(epoch.Add(time.Duration(seq)*time.Millisecond + 5*time.Millisecond)))
			sp.Attributes().PutInt("seq", int64(seq))
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutInt("http.response.status_code", 200)
			seq++
		}
	}
	return td
}

// Metrics returns resources×points gauge data points, one metric per point.
func Metrics(resources, points, first int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	seq := first
	for r := 0; r < resources; r++ {
		rm := md.ResourceMetrics().AppendEmpty()
		resource(rm.Resource(), r)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("vigil/testdata")
		for p := 0; p < points; p++ {
			m := sm.Metrics().AppendEmpty()
			m.SetName("test.gauge")
			m.SetUnit("1")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(epoch.Add(time.Duration(seq) * time.Millisecond)))
			dp.SetDoubleValue(float64(seq))
			dp.Attributes().PutInt("seq", int64(seq))
			seq++
		}
	}
	return md
}

// Logs returns resources×records log records.
func Logs(resources, records, first int) plog.Logs {
	ld := plog.NewLogs()
	seq := first
	for r := 0; r < resources; r++ {
		rl := ld.ResourceLogs().AppendEmpty()
		resource(rl.Resource(), r)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("vigil/testdata")
		for i := 0; i < records; i++ {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(epoch.Add(time.Duration(seq) * time.Millisecond)))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr("request served")
			lr.Attributes().PutInt("seq", int64(seq))
			seq++
		}
	}
	return ld
}
