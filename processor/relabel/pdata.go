package relabel

import (
	"context"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// On OTLP data the rules see one data point at a time: its attributes as labels (values as
// strings, empty ones left out, since Prometheus treats an empty label as absent) plus __name__,
// the metric's name as it is (not translated to a Prometheus name). Resource and scope
// attributes are not visible. Label changes are written back to the attributes; attributes the
// rules did not touch keep their type. A changed __name__ moves the point to the metric of that
// name in the same scope, which is created with the source metric's type, unit and description
// if there is none.

// pdataScratch is the per-call state of the OTLP path: points renamed to another metric wait in
// staging metrics until their scope has been processed, so that no point meets the rules twice.
type pdataScratch struct {
	staged map[stageKey]pmetric.Metric
	order  []stageKey // staged in creation order, for a deterministic result
}

type stageKey struct {
	name string
	sig  metricSig
}

// metricSig is what must agree for points of two metrics to share one: the type and, where it
// applies, temporality and monotonicity.
type metricSig struct {
	typ         pmetric.MetricType
	temporality pmetric.AggregationTemporality
	monotonic   bool
}

func sigOf(m pmetric.Metric) metricSig {
	s := metricSig{typ: m.Type()}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		s.temporality, s.monotonic = m.Sum().AggregationTemporality(), m.Sum().IsMonotonic()
	case pmetric.MetricTypeHistogram:
		s.temporality = m.Histogram().AggregationTemporality()
	case pmetric.MetricTypeExponentialHistogram:
		s.temporality = m.ExponentialHistogram().AggregationTemporality()
	}
	return s
}

func (s *pdataScratch) reset() {
	clear(s.staged)
	s.order = s.order[:0]
}

// stage returns the staging metric for points of src renamed to name, creating it like src.
func (s *pdataScratch) stage(src pmetric.Metric, name string) pmetric.Metric {
	key := stageKey{name: name, sig: sigOf(src)}
	if m, ok := s.staged[key]; ok {
		return m
	}
	m := pmetric.NewMetric()
	m.SetName(name)
	m.SetUnit(src.Unit())
	m.SetDescription(src.Description())
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		m.SetEmptyGauge()
	case pmetric.MetricTypeSum:
		m.SetEmptySum().SetAggregationTemporality(key.sig.temporality)
		m.Sum().SetIsMonotonic(key.sig.monotonic)
	case pmetric.MetricTypeHistogram:
		m.SetEmptyHistogram().SetAggregationTemporality(key.sig.temporality)
	case pmetric.MetricTypeExponentialHistogram:
		m.SetEmptyExponentialHistogram().SetAggregationTemporality(key.sig.temporality)
	case pmetric.MetricTypeSummary:
		m.SetEmptySummary()
	}
	if s.staged == nil {
		s.staged = map[stageKey]pmetric.Metric{}
	}
	s.staged[key] = m
	s.order = append(s.order, key)
	return m
}

func attrString(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeEmpty:
		return ""
	}
	return v.AsString()
}

// verdict is what the rules decided for one data point.
type verdict uint8

const (
	unchanged verdict = iota
	rewrite           // new attributes
	move              // new attributes and another metric name
	drop
)

// evalPoint runs the rules on a data point of the metric name.
func (p *processor) evalPoint(st *state, name string, attrs pcommon.Map) (verdict, labels.Labels) {
	st.sb.Reset()
	n := 0
	if name != "" {
		st.sb.Add(model.MetricNameLabel, name)
		n++
	}
	attrs.Range(func(k string, v pcommon.Value) bool {
		if k == model.MetricNameLabel {
			return true // invisible: the metric's name is __name__
		}
		if s := attrString(v); s != "" {
			st.sb.Add(k, s)
			n++
		}
		return true
	})
	st.maxAdded = max(st.maxAdded, n)
	st.sb.Sort()
	st.sb.Overwrite(&st.in)
	res, keep, changed := p.apply(st)
	switch {
	case !keep:
		return drop, res
	case !changed:
		return unchanged, res
	case res.Get(model.MetricNameLabel) != name:
		return move, res
	}
	return rewrite, res
}

// writeBack makes attrs match the relabelled labels res: attributes whose label went are removed,
// new or changed labels are set as strings, the others keep their value and type.
func writeBack(attrs pcommon.Map, res labels.Labels) {
	attrs.RemoveIf(func(k string, v pcommon.Value) bool {
		return k != model.MetricNameLabel && attrString(v) != "" && !res.Has(k)
	})
	res.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		if v, ok := attrs.Get(l.Name); ok && attrString(v) == l.Value {
			return
		}
		attrs.PutStr(l.Name, l.Value)
	})
}

func (p *processor) consumePData(ctx context.Context, st *state, b *batch.Batch) error {
	if b.IsEncoded() || b.IsPromRW() {
		// Look before changing: a batch that no rule changes keeps its encoded form and goes on
		// without being copied or re-encoded.
		md, err := b.Metrics()
		if err != nil {
			return consumererror.NewPermanent(fmt.Errorf("%s: %w", p.set.ID, err))
		}
		if !p.changesAny(st, md) {
			return p.next.Consume(ctx, b)
		}
	}
	md, err := b.MutableMetrics()
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", p.set.ID, err))
	}
	dropped := p.relabelMetrics(st, md)
	b.Recount()
	if dropped > 0 {
		p.set.Counters.Add(component.Dropped, batch.Metrics, dropped)
		if b.Items() == 0 {
			return nil
		}
	}
	return p.next.Consume(ctx, b)
}

// changesAny reports whether the rules change any data point of md (read-only).
func (p *processor) changesAny(st *state, md pmetric.Metrics) bool {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if forEachAttrs(m, func(attrs pcommon.Map) bool {
					v, _ := p.evalPoint(st, m.Name(), attrs)
					return v != unchanged
				}) {
					return true
				}
			}
		}
	}
	return false
}

// forEachAttrs calls f with the attributes of each data point of m until f returns true, and
// reports whether it did.
func forEachAttrs(m pmetric.Metric, f func(pcommon.Map) bool) bool {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return anyAttrs(m.Gauge().DataPoints(), f)
	case pmetric.MetricTypeSum:
		return anyAttrs(m.Sum().DataPoints(), f)
	case pmetric.MetricTypeHistogram:
		return anyAttrs(m.Histogram().DataPoints(), f)
	case pmetric.MetricTypeExponentialHistogram:
		return anyAttrs(m.ExponentialHistogram().DataPoints(), f)
	case pmetric.MetricTypeSummary:
		return anyAttrs(m.Summary().DataPoints(), f)
	}
	return false
}

type dataPoint[P any] interface {
	Attributes() pcommon.Map
	MoveTo(dest P)
}

func anyAttrs[P dataPoint[P], S interface {
	Len() int
	At(i int) P
}](pts S, f func(pcommon.Map) bool) bool {
	for i := range pts.Len() {
		if f(pts.At(i).Attributes()) {
			return true
		}
	}
	return false
}

// relabelMetrics applies the rules to every data point of md and returns how many it dropped.
// Metrics, scopes and resources left empty by the rules are removed.
func (p *processor) relabelMetrics(st *state, md pmetric.Metrics) (dropped int) {
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		before := rm.ScopeMetrics().Len()
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			before := sm.Metrics().Len()
			dropped += p.relabelScope(st, sm)
			return before > 0 && sm.Metrics().Len() == 0
		})
		return before > 0 && rm.ScopeMetrics().Len() == 0
	})
	return dropped
}

// relabelScope relabels the points of one scope's metrics. Renamed points are staged and joined
// to their new metric after the scope's own metrics are done.
func (p *processor) relabelScope(st *state, sm pmetric.ScopeMetrics) (dropped int) {
	st.pd.reset()
	ms := sm.Metrics()
	n := ms.Len()
	emptied := make([]bool, n)
	for i := range n {
		m := ms.At(i)
		before := batch.MetricPoints(m)
		dropped += p.relabelMetric(st, m)
		emptied[i] = before > 0 && batch.MetricPoints(m) == 0
	}
	for _, key := range st.pd.order {
		staged := st.pd.staged[key]
		target, found := findMetric(ms, key.name)
		switch {
		case !found:
			staged.MoveTo(ms.AppendEmpty())
		case sigOf(target) == key.sig:
			movePoints(staged, target)
		default:
			lost := batch.MetricPoints(staged)
			dropped += lost
			p.warn.Warn(p.set.Logger, "a rule renamed points to a metric of another type in the same scope; points dropped",
				"error", fmt.Errorf("metric %q is %s, the points are %s", key.name, target.Type(), key.sig.typ), "items", lost)
		}
	}
	i := 0
	ms.RemoveIf(func(m pmetric.Metric) bool {
		gone := i < n && emptied[i] && batch.MetricPoints(m) == 0
		i++
		return gone
	})
	return dropped
}

func findMetric(ms pmetric.MetricSlice, name string) (pmetric.Metric, bool) {
	for i := range ms.Len() {
		if ms.At(i).Name() == name {
			return ms.At(i), true
		}
	}
	return pmetric.Metric{}, false
}

// movePoints appends src's points to dst, which has the same signature.
func movePoints(src, dst pmetric.Metric) {
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		src.Gauge().DataPoints().MoveAndAppendTo(dst.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		src.Sum().DataPoints().MoveAndAppendTo(dst.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		src.Histogram().DataPoints().MoveAndAppendTo(dst.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		src.ExponentialHistogram().DataPoints().MoveAndAppendTo(dst.ExponentialHistogram().DataPoints())
	case pmetric.MetricTypeSummary:
		src.Summary().DataPoints().MoveAndAppendTo(dst.Summary().DataPoints())
	}
}

func (p *processor) relabelMetric(st *state, m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return relabelPoints(p, st, m, m.Gauge().DataPoints(),
			func(name string) pmetric.NumberDataPointSlice { return st.pd.stage(m, name).Gauge().DataPoints() })
	case pmetric.MetricTypeSum:
		return relabelPoints(p, st, m, m.Sum().DataPoints(),
			func(name string) pmetric.NumberDataPointSlice { return st.pd.stage(m, name).Sum().DataPoints() })
	case pmetric.MetricTypeHistogram:
		return relabelPoints(p, st, m, m.Histogram().DataPoints(),
			func(name string) pmetric.HistogramDataPointSlice {
				return st.pd.stage(m, name).Histogram().DataPoints()
			})
	case pmetric.MetricTypeExponentialHistogram:
		return relabelPoints(p, st, m, m.ExponentialHistogram().DataPoints(),
			func(name string) pmetric.ExponentialHistogramDataPointSlice {
				return st.pd.stage(m, name).ExponentialHistogram().DataPoints()
			})
	case pmetric.MetricTypeSummary:
		return relabelPoints(p, st, m, m.Summary().DataPoints(),
			func(name string) pmetric.SummaryDataPointSlice { return st.pd.stage(m, name).Summary().DataPoints() })
	}
	return 0
}

// relabelPoints applies the rules to each point of pts (the points of m): dropped points are
// removed, rewritten ones changed in place, renamed ones moved to the staging slice for their
// new name. It returns the number dropped.
func relabelPoints[P dataPoint[P], S interface {
	RemoveIf(f func(P) bool)
	AppendEmpty() P
}](p *processor, st *state, m pmetric.Metric, pts S, stage func(name string) S) (dropped int) {
	name := m.Name()
	pts.RemoveIf(func(dp P) bool {
		v, res := p.evalPoint(st, name, dp.Attributes())
		switch v {
		case drop:
			dropped++
			return true
		case rewrite:
			writeBack(dp.Attributes(), res)
		case move:
			writeBack(dp.Attributes(), res)
			dp.MoveTo(stage(res.Get(model.MetricNameLabel)).AppendEmpty())
			return true
		}
		return false
	})
	return dropped
}
