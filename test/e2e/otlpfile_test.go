//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// item is one span, data point or log record read back from the file exporter's output, flattened
// with what the checks need.
type item struct {
	res   pcommon.Map // resource attributes
	attrs pcommon.Map // item attributes
	run   string      // the e2e.run attribute: which telemetrygen run produced the item

	// traces
	traceID, spanID string
	root            bool
	// metrics
	metric string
	value  int64
	// logs
	body, severity string
}

// readItems decodes every complete line of an OTLP/JSON file (one Export request per line).
func readItems(signal, path string) ([]item, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var items []item
	for i, line := range lines {
		var err error
		switch signal {
		case "traces":
			items, err = appendSpans(items, line)
		case "metrics":
			items, err = appendPoints(items, line)
		case "logs":
			items, err = appendRecords(items, line)
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
	}
	return items, nil
}

func runOf(m pcommon.Map) string {
	v, _ := m.Get("e2e.run")
	return v.AsString()
}

func appendSpans(items []item, line []byte) ([]item, error) {
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
	if err != nil {
		return nil, err
	}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				items = append(items, item{
					res: rs.Resource().Attributes(), attrs: sp.Attributes(), run: runOf(sp.Attributes()),
					traceID: sp.TraceID().String(), spanID: sp.SpanID().String(), root: sp.ParentSpanID().IsEmpty(),
				})
			}
		}
	}
	return items, nil
}

func appendPoints(items []item, line []byte) ([]item, error) {
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
	if err != nil {
		return nil, err
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Type() != pmetric.MetricTypeGauge {
					return nil, fmt.Errorf("metric %q has type %s, telemetrygen sends gauges", m.Name(), m.Type())
				}
				for _, dp := range m.Gauge().DataPoints().All() {
					items = append(items, item{
						res: rm.Resource().Attributes(), attrs: dp.Attributes(), run: runOf(dp.Attributes()),
						metric: m.Name(), value: dp.IntValue(),
					})
				}
			}
		}
	}
	return items, nil
}

func appendRecords(items []item, line []byte) ([]item, error) {
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
	if err != nil {
		return nil, err
	}
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				items = append(items, item{
					res: rl.Resource().Attributes(), attrs: lr.Attributes(), run: runOf(lr.Attributes()),
					body: lr.Body().AsString(), severity: lr.SeverityText(),
				})
			}
		}
	}
	return items, nil
}

// waitItems polls the file until it holds at least want items, then waits a little longer and
// reads it again, so that late duplicates would be seen too.
func waitItems(t *testing.T, signal, path string, want int) []item {
	t.Helper()
	var items []item
	eventually(t, 60*time.Second, func() error {
		var err error
		items, err = readItems(signal, path)
		if err != nil {
			return err
		}
		if len(items) < want {
			return fmt.Errorf("%s: %d of %d %s arrived", path, len(items), want, signal)
		}
		return nil
	})
	// Longer than the batch timeout and the file exporter's flush interval together.
	time.Sleep(1500 * time.Millisecond)
	items, err := readItems(signal, path)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// attrString returns a string attribute or "<missing>".
func attrString(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return "<missing>"
	}
	if v.Type() != pcommon.ValueTypeStr {
		return fmt.Sprintf("<%s %s>", v.Type(), v.AsString())
	}
	return v.Str()
}

// attrInt returns an int attribute, or -1 when missing or not an int.
func attrInt(m pcommon.Map, k string) int64 {
	v, ok := m.Get(k)
	if !ok || v.Type() != pcommon.ValueTypeInt {
		return -1
	}
	return v.Int()
}

// attrBool reports whether a bool attribute is present and true.
func attrBool(m pcommon.Map, k string) bool {
	v, ok := m.Get(k)
	return ok && v.Type() == pcommon.ValueTypeBool && v.Bool()
}
