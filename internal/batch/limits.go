package batch

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// CheckLimits holds decoded data (an OTLP/JSON request) to lim, as ScanLimited does the
// encoded form, with errors that name the same places and wrap ErrLimit.
func CheckLimits(b *Batch, lim Limits) error {
	if !lim.attrs() || !b.hasDec {
		return nil
	}
	c := attrChecker{lim: lim}
	switch b.sig {
	case Traces:
		c.traces(b.traces)
	case Logs:
		c.logs(b.logs)
	default:
		c.metrics(b.metrics)
	}
	return c.err
}

// attrChecker keeps the first place found over the limit.
type attrChecker struct {
	lim Limits
	err error
}

// check records m as over a limit, in the words of where, unless an error is kept already.
// It finds the same attribute Limits.attr finds in the encoded form.
func (c *attrChecker) check(m pcommon.Map, where func() string) bool {
	if c.err != nil {
		return false
	}
	if c.lim.MaxAttributes > 0 && m.Len() > c.lim.MaxAttributes {
		c.err = fmt.Errorf("%s: %w", where(), c.lim.tooMany())
		return false
	}
	if c.lim.MaxAttributeBytes > 0 {
		for k, v := range m.All() {
			if size := len(k) + decodedValueBytes(v); size > c.lim.MaxAttributeBytes {
				c.err = fmt.Errorf("%s: %w", where(), c.lim.tooLarge(k, size))
				return false
			}
		}
	}
	return true
}

// decodedValueBytes is valueBytes of a decoded value.
func decodedValueBytes(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str())
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len()
	case pcommon.ValueTypeSlice:
		n := 0
		for _, e := range v.Slice().All() {
			n += decodedValueBytes(e)
		}
		return n
	case pcommon.ValueTypeMap:
		n := 0
		for k, e := range v.Map().All() {
			n += len(k) + decodedValueBytes(e)
		}
		return n
	}
	return 0
}

// resource checks a resource's attributes, which the encoded form holds whether or not any
// scope follows: once per resource (a JSON request may pair large attributes with many scopes).
func (c *attrChecker) resource(i int, r pcommon.Resource) bool {
	return c.check(r.Attributes(), func() string { return fmt.Sprintf("resource %d: resource attributes", i) })
}

func (c *attrChecker) scope(i int, scope pcommon.InstrumentationScope) bool {
	return c.check(scope.Attributes(), func() string { return fmt.Sprintf("resource %d: scope attributes", i) })
}

func (c *attrChecker) traces(td ptrace.Traces) {
	for i := 0; i < td.ResourceSpans().Len() && c.err == nil; i++ {
		rs := td.ResourceSpans().At(i)
		n := 0
		if !c.resource(i, rs.Resource()) {
			break
		}
		for j := 0; j < rs.ScopeSpans().Len() && c.scope(i, rs.ScopeSpans().At(j).Scope()); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len() && c.err == nil; k, n = k+1, n+1 {
				sp, at := spans.At(k), func() string { return fmt.Sprintf("resource %d: span %d", i, n) }
				c.check(sp.Attributes(), at)
				for e := 0; e < sp.Events().Len(); e++ {
					c.check(sp.Events().At(e).Attributes(), func() string { return at() + ": event" })
				}
				for l := 0; l < sp.Links().Len(); l++ {
					c.check(sp.Links().At(l).Attributes(), at)
				}
			}
		}
	}
}

func (c *attrChecker) logs(ld plog.Logs) {
	for i := 0; i < ld.ResourceLogs().Len() && c.err == nil; i++ {
		rl := ld.ResourceLogs().At(i)
		n := 0
		if !c.resource(i, rl.Resource()) {
			break
		}
		for j := 0; j < rl.ScopeLogs().Len() && c.scope(i, rl.ScopeLogs().At(j).Scope()); j++ {
			recs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < recs.Len() && c.err == nil; k, n = k+1, n+1 {
				c.check(recs.At(k).Attributes(), func() string { return fmt.Sprintf("resource %d: log record %d", i, n) })
			}
		}
	}
}

func (c *attrChecker) metrics(md pmetric.Metrics) {
	for i := 0; i < md.ResourceMetrics().Len() && c.err == nil; i++ {
		rm := md.ResourceMetrics().At(i)
		if !c.resource(i, rm.Resource()) {
			break
		}
		for j := 0; j < rm.ScopeMetrics().Len() && c.scope(i, rm.ScopeMetrics().At(j).Scope()); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len() && c.err == nil; k++ {
				c.metric(i, ms.At(k))
			}
		}
	}
}

func (c *attrChecker) metric(res int, m pmetric.Metric) {
	if !c.check(m.Metadata(), func() string { return fmt.Sprintf("resource %d: metric metadata", res) }) {
		return
	}
	point := func(p int, attrs pcommon.Map, ex pmetric.ExemplarSlice) {
		at := func() string { return fmt.Sprintf("resource %d: data point %d", res, p) }
		c.check(attrs, at)
		for e := 0; e < ex.Len(); e++ {
			c.check(ex.At(e).FilteredAttributes(), at)
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for p := 0; p < m.Gauge().DataPoints().Len(); p++ {
			dp := m.Gauge().DataPoints().At(p)
			point(p, dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeSum:
		for p := 0; p < m.Sum().DataPoints().Len(); p++ {
			dp := m.Sum().DataPoints().At(p)
			point(p, dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
			dp := m.Histogram().DataPoints().At(p)
			point(p, dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
			dp := m.ExponentialHistogram().DataPoints().At(p)
			point(p, dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeSummary:
		for p := 0; p < m.Summary().DataPoints().Len(); p++ {
			point(p, m.Summary().DataPoints().At(p).Attributes(), pmetric.NewExemplarSlice())
		}
	}
}
