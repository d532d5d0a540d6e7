package serieslimit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// An OTLP series is a metric name with one data point's attributes, within one resource: its
// hash covers the resource attributes, the metric name and the point attributes, each set in
// key order so that attribute order does not make a new series. The scope is not part of it,
// as it is not part of a Prometheus series either.

type pdataScratch struct {
	attrs []kv
	drops []int // indexes of the points to drop, in walk order
}

type kv struct {
	k string
	v pcommon.Value
}

var scratchPool = sync.Pool{New: func() any { return &pdataScratch{} }}

// hashAttrs adds attrs to d in key order.
func (s *pdataScratch) hashAttrs(d *xxhash.Digest, attrs pcommon.Map) {
	s.attrs = s.attrs[:0]
	attrs.Range(func(k string, v pcommon.Value) bool {
		s.attrs = append(s.attrs, kv{k, v})
		return true
	})
	slices.SortFunc(s.attrs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	for _, a := range s.attrs {
		_, _ = d.WriteString(a.k)
		_, _ = d.Write(sep)
		writeValue(d, a.v)
		_, _ = d.Write(sep)
	}
	clear(s.attrs) // the values point into the batch
}

// writeValue adds v as the string Prometheus would see (AsString), without allocating for the
// common scalar types.
func writeValue(d *xxhash.Digest, v pcommon.Value) {
	var buf [32]byte
	switch v.Type() {
	case pcommon.ValueTypeStr:
		_, _ = d.WriteString(v.Str())
	case pcommon.ValueTypeInt:
		_, _ = d.Write(strconv.AppendInt(buf[:0], v.Int(), 10))
	case pcommon.ValueTypeBool:
		_, _ = d.Write(strconv.AppendBool(buf[:0], v.Bool()))
	default:
		_, _ = d.WriteString(v.AsString())
	}
}

var (
	sep     = []byte{0xff}
	nameSep = []byte{0xfe} // between the resource's attributes and the series' own
)

func (l *limiter) consumePData(ctx context.Context, b *batch.Batch) error {
	md, err := b.Metrics()
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", l.set.ID, err))
	}
	s := scratchPool.Get().(*pdataScratch)
	defer scratchPool.Put(s)
	s.drops = s.drops[:0]
	example := l.checkPData(s, md)
	if len(s.drops) == 0 {
		return l.next.Consume(ctx, b)
	}
	// Copies the data if it is shared with another branch (it was marked read-only above).
	md, err = b.MutableMetrics()
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", l.set.ID, err))
	}
	removePoints(md, s.drops)
	b.Recount()
	// Points stand for series here: two points of one series in a batch count twice, which
	// OTLP data rarely has.
	l.report(len(s.drops), len(s.drops), example)
	if b.Items() == 0 {
		return nil
	}
	return l.next.Consume(ctx, b)
}

// checkPData admits or refuses each data point's series, read-only, and records the walk index
// of each refused point in s.drops. It returns a refused metric's name, for the log.
func (l *limiter) checkPData(s *pdataScratch, md pmetric.Metrics) (example string) {
	idx := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		var res xxhash.Digest
		res.Reset()
		s.hashAttrs(&res, rm.Resource().Attributes())
		_, _ = res.Write(nameSep)
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				forEachAttrs(m, func(attrs pcommon.Map) {
					d := res // a copy: the resource's part is hashed once
					_, _ = d.WriteString(m.Name())
					_, _ = d.Write(sep)
					s.hashAttrs(&d, attrs)
					if !l.admit(d.Sum64()) {
						s.drops = append(s.drops, idx)
						if example == "" {
							example = m.Name()
						}
					}
					idx++
				})
			}
		}
	}
	return example
}

// forEachAttrs calls f with each data point's attributes, in order.
func forEachAttrs(m pmetric.Metric, f func(pcommon.Map)) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		eachAttrs(m.Gauge().DataPoints(), f)
	case pmetric.MetricTypeSum:
		eachAttrs(m.Sum().DataPoints(), f)
	case pmetric.MetricTypeHistogram:
		eachAttrs(m.Histogram().DataPoints(), f)
	case pmetric.MetricTypeExponentialHistogram:
		eachAttrs(m.ExponentialHistogram().DataPoints(), f)
	case pmetric.MetricTypeSummary:
		eachAttrs(m.Summary().DataPoints(), f)
	}
}

func eachAttrs[P interface{ Attributes() pcommon.Map }, S interface {
	Len() int
	At(int) P
}](pts S, f func(pcommon.Map)) {
	for i := range pts.Len() {
		f(pts.At(i).Attributes())
	}
}

// removePoints removes the points at the given walk indexes (ascending, in checkPData's order)
// and the metrics, scopes and resources that are left empty by it.
func removePoints(md pmetric.Metrics, drops []int) {
	idx := 0
	next := 0 // position in drops
	gone := func() bool {
		d := next < len(drops) && drops[next] == idx
		if d {
			next++
		}
		idx++
		return d
	}
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		before := rm.ScopeMetrics().Len()
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			before := sm.Metrics().Len()
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				before := batch.MetricPoints(m)
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					m.Gauge().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return gone() })
				case pmetric.MetricTypeSum:
					m.Sum().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return gone() })
				case pmetric.MetricTypeHistogram:
					m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return gone() })
				case pmetric.MetricTypeExponentialHistogram:
					m.ExponentialHistogram().DataPoints().RemoveIf(func(pmetric.ExponentialHistogramDataPoint) bool { return gone() })
				case pmetric.MetricTypeSummary:
					m.Summary().DataPoints().RemoveIf(func(pmetric.SummaryDataPoint) bool { return gone() })
				}
				return before > 0 && batch.MetricPoints(m) == 0
			})
			return before > 0 && sm.Metrics().Len() == 0
		})
		return before > 0 && rm.ScopeMetrics().Len() == 0
	})
}
