package batch

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/promrw"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Split cuts b into parts of at most max items each, in order, and consumes b (a batch that
// already fits is returned as the only part).
//
// An encoded batch is cut at resource boundaries without decoding: each part is a sub-slice of
// the request bytes, which stay immutable and shared. Only a single resource entry holding more
// than max items is decoded, and split at item level. A decoded batch is split with pdata: items
// move into the parts, and every part that holds items of a resource or scope gets a copy of that
// resource or scope. Metrics are split by data points; a metric cut in two keeps its name, type,
// unit, metadata and temporality on both sides.
//
// Resource entries without items and unknown top-level request fields that sit next to an oversize
// resource may be left out of the parts: they carry no items. On error b is left unchanged.
//
// Every part carries all of b's acknowledgements (Acks): a request's handle is held once per
// part, so it completes only when every part is done, whichever parts its items went to.
func Split(b *Batch, max int) ([]*Batch, error) {
	parts, err := split(b, max)
	if err != nil || len(parts) < 2 {
		return parts, err
	}
	for _, p := range parts {
		p.acks, p.endToEnd = b.acks, b.endToEnd
	}
	return parts, nil
}

func split(b *Batch, max int) ([]*Batch, error) {
	if max <= 0 {
		return nil, fmt.Errorf("split %s: max must be > 0, got %d", b.sig, max)
	}
	if b.items <= max {
		return []*Batch{b}, nil
	}
	if b.hasEnc {
		b.join()
		return splitEncoded(b, max)
	}
	if b.hasRW {
		return splitPromRW(b, max)
	}
	switch b.sig {
	case Traces:
		td, err := b.MutableTraces()
		if err != nil {
			return nil, err
		}
		return splitTraces(td, max), nil
	case Metrics:
		md, err := b.MutableMetrics()
		if err != nil {
			return nil, err
		}
		return splitMetrics(md, max), nil
	default:
		ld, err := b.MutableLogs()
		if err != nil {
			return nil, err
		}
		return splitLogs(ld, max), nil
	}
}

// splitPromRW groups runs of whole series of a remote-write body into byte ranges of at most
// max samples; a single series holding more than max samples becomes a part of its own.
// Everything between series (metadata entries) is copied into every part.
func splitPromRW(b *Batch, max int) ([]*Batch, error) {
	var (
		out           []*Batch
		start, end, n int
		open          bool // a run of series [start, end) holding n items waits to be cut
		outside       []byte
		sc            = promrw.Scanner{Trusted: true}
	)
	flush := func() {
		if open {
			out = append(out, FromPromRWTrusted(b.rw[start:end:end], n))
		}
		n, open = 0, false
	}
	err := sc.ScanV1(b.rw, func(s promrw.SeriesV1) error {
		if s.Start > end {
			outside = append(outside, b.rw[end:s.Start]...)
		}
		k := s.Samples + s.Histograms
		// A series without samples (exemplars only) joins the run like any other: it has no
		// items, but it is data.
		if open && ((n > 0 && n+k > max) || s.Start != end) {
			flush()
		}
		if !open {
			start, open = s.Start, true
		}
		end = s.End
		n += k
		return nil
	})
	if err != nil {
		return nil, err
	}
	outside = append(outside, b.rw[end:]...)
	flush()
	if len(out) == 0 {
		return []*Batch{b}, nil
	}
	if len(outside) > 0 {
		// Metadata describes the series of any part: a part without it converts a classic
		// histogram to loose gauges, and goes out as 2.0 series without type, help and unit.
		for _, p := range out {
			p.rw = append(append(make([]byte, 0, len(p.rw)+len(outside)), p.rw...), outside...)
		}
	}
	return out, nil
}

// splitEncoded groups whole resource entries into byte ranges of at most max items.
func splitEncoded(b *Batch, max int) ([]*Batch, error) {
	var res []Resource
	if err := ScanResources(b.sig, b.enc, func(r Resource) { res = append(res, r) }); err != nil {
		return nil, err
	}
	var (
		out          []*Batch
		start, items int // the pending byte range starts at start and holds items
		lastEnc      = -1
	)
	emit := func(end int) {
		switch {
		case items > 0:
			out = append(out, &Batch{sig: b.sig, items: items, enc: b.enc[start:end:end], hasEnc: true})
			lastEnc = len(out) - 1
		case end > start && lastEnc == len(out)-1 && lastEnc >= 0:
			// Item-less bytes right after an encoded part join it, so nothing is lost needlessly.
			p := out[lastEnc]
			from := start - len(p.enc)
			p.enc = b.enc[from:end:end]
		}
		start, items = end, 0
	}
	for _, r := range res {
		switch {
		case r.Items > max:
			emit(r.Start)
			parts, err := splitOversize(b.sig, b.enc[r.Start:r.End], max)
			if err != nil {
				return nil, err
			}
			out = append(out, parts...)
			start = r.End
		case items+r.Items > max:
			emit(r.Start)
			items = r.Items
		default:
			items += r.Items
		}
	}
	emit(len(b.enc))
	return out, nil
}

// splitOversize decodes one resource entry (which is itself a valid request) and splits it.
func splitOversize(sig Signal, req []byte, max int) ([]*Batch, error) {
	one := &Batch{sig: sig, enc: req, hasEnc: true}
	if err := one.decode(); err != nil {
		return nil, err
	}
	switch sig {
	case Traces:
		return splitTraces(one.traces, max), nil
	case Metrics:
		return splitMetrics(one.metrics, max), nil
	default:
		return splitLogs(one.logs, max), nil
	}
}

// parts collects the output of a pdata split: a list of containers and the item count of each.
type parts[T any] struct {
	max    int
	newT   func() T
	out    []T
	counts []int
}

// last returns the part being filled, starting the first one if needed.
func (p *parts[T]) last() T {
	if len(p.out) == 0 {
		p.cut()
	}
	return p.out[len(p.out)-1]
}

// index identifies the part being filled, so copies of resources and scopes are made once per part.
func (p *parts[T]) index() int { p.last(); return len(p.out) - 1 }

func (p *parts[T]) room() int { p.last(); return p.max - p.counts[len(p.counts)-1] }

func (p *parts[T]) add(n int) { p.counts[len(p.counts)-1] += n }

func (p *parts[T]) cut() {
	p.out = append(p.out, p.newT())
	p.counts = append(p.counts, 0)
}

// ensureRoom starts a new part when the current one is full.
func (p *parts[T]) ensureRoom() {
	if p.room() == 0 {
		p.cut()
	}
}

// lazy returns a func that creates a destination container in the current part the first time
// it is called for that part, so a container that straddles parts is copied into each of them.
func lazy[T, P any](p *parts[P], create func() T) func() T {
	at := -1
	var v T
	return func() T {
		if i := p.index(); i != at {
			v, at = create(), i
		}
		return v
	}
}

// slice is what every pdata item slice offers.
type slice[E any] interface {
	Len() int
	At(int) E
	AppendEmpty() E
	EnsureCapacity(int)
}

// moveRange moves src[from:from+n] to the end of dst.
func moveRange[S slice[E], E interface{ MoveTo(E) }](src, dst S, from, n int) {
	dst.EnsureCapacity(dst.Len() + n)
	for i := from; i < from+n; i++ {
		src.At(i).MoveTo(dst.AppendEmpty())
	}
}

// fill moves the items of src into parts as room allows, asking dest for the destination slice of
// the current part.
func fill[T any, S slice[E], E interface{ MoveTo(E) }](p *parts[T], src S, dest func() S) {
	for k := 0; k < src.Len(); {
		p.ensureRoom()
		n := min(p.room(), src.Len()-k)
		moveRange(src, dest(), k, n)
		p.add(n)
		k += n
	}
}

func splitTraces(td ptrace.Traces, max int) []*Batch {
	p := &parts[ptrace.Traces]{max: max, newT: ptrace.NewTraces}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if n := resourceSpans(rs); n <= p.room() {
			rs.MoveTo(p.last().ResourceSpans().AppendEmpty())
			p.add(n)
			continue
		}
		dstRS := lazy(p, func() ptrace.ResourceSpans {
			d := p.last().ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(d.Resource())
			d.SetSchemaUrl(rs.SchemaUrl())
			return d
		})
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			if n := ss.Spans().Len(); n <= p.room() {
				ss.MoveTo(dstRS().ScopeSpans().AppendEmpty())
				p.add(n)
				continue
			}
			dstSS := lazy(p, func() ptrace.ScopeSpans {
				d := dstRS().ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(d.Scope())
				d.SetSchemaUrl(ss.SchemaUrl())
				return d
			})
			fill(p, ss.Spans(), func() ptrace.SpanSlice { return dstSS().Spans() })
		}
	}
	out := make([]*Batch, len(p.out))
	for i, td := range p.out {
		out[i] = &Batch{sig: Traces, items: p.counts[i], traces: td, hasDec: true}
	}
	return out
}

func resourceSpans(rs ptrace.ResourceSpans) int {
	n := 0
	for i := 0; i < rs.ScopeSpans().Len(); i++ {
		n += rs.ScopeSpans().At(i).Spans().Len()
	}
	return n
}

func splitLogs(ld plog.Logs, max int) []*Batch {
	p := &parts[plog.Logs]{max: max, newT: plog.NewLogs}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		if n := resourceLogs(rl); n <= p.room() {
			rl.MoveTo(p.last().ResourceLogs().AppendEmpty())
			p.add(n)
			continue
		}
		dstRL := lazy(p, func() plog.ResourceLogs {
			d := p.last().ResourceLogs().AppendEmpty()
			rl.Resource().CopyTo(d.Resource())
			d.SetSchemaUrl(rl.SchemaUrl())
			return d
		})
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			if n := sl.LogRecords().Len(); n <= p.room() {
				sl.MoveTo(dstRL().ScopeLogs().AppendEmpty())
				p.add(n)
				continue
			}
			dstSL := lazy(p, func() plog.ScopeLogs {
				d := dstRL().ScopeLogs().AppendEmpty()
				sl.Scope().CopyTo(d.Scope())
				d.SetSchemaUrl(sl.SchemaUrl())
				return d
			})
			fill(p, sl.LogRecords(), func() plog.LogRecordSlice { return dstSL().LogRecords() })
		}
	}
	out := make([]*Batch, len(p.out))
	for i, ld := range p.out {
		out[i] = &Batch{sig: Logs, items: p.counts[i], logs: ld, hasDec: true}
	}
	return out
}

func resourceLogs(rl plog.ResourceLogs) int {
	n := 0
	for i := 0; i < rl.ScopeLogs().Len(); i++ {
		n += rl.ScopeLogs().At(i).LogRecords().Len()
	}
	return n
}

func splitMetrics(md pmetric.Metrics, max int) []*Batch {
	p := &parts[pmetric.Metrics]{max: max, newT: pmetric.NewMetrics}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		if n := resourcePoints(rm); n <= p.room() {
			rm.MoveTo(p.last().ResourceMetrics().AppendEmpty())
			p.add(n)
			continue
		}
		dstRM := lazy(p, func() pmetric.ResourceMetrics {
			d := p.last().ResourceMetrics().AppendEmpty()
			rm.Resource().CopyTo(d.Resource())
			d.SetSchemaUrl(rm.SchemaUrl())
			return d
		})
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			if n := scopePoints(sm); n <= p.room() {
				sm.MoveTo(dstRM().ScopeMetrics().AppendEmpty())
				p.add(n)
				continue
			}
			dstSM := lazy(p, func() pmetric.ScopeMetrics {
				d := dstRM().ScopeMetrics().AppendEmpty()
				sm.Scope().CopyTo(d.Scope())
				d.SetSchemaUrl(sm.SchemaUrl())
				return d
			})
			for k := 0; k < sm.Metrics().Len(); k++ {
				m := sm.Metrics().At(k)
				if n := MetricPoints(m); n <= p.room() {
					m.MoveTo(dstSM().Metrics().AppendEmpty())
					p.add(n)
					continue
				}
				dstM := lazy(p, func() pmetric.Metric {
					d := dstSM().Metrics().AppendEmpty()
					copyMetricShell(m, d)
					return d
				})
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					fill(p, m.Gauge().DataPoints(), func() pmetric.NumberDataPointSlice { return dstM().Gauge().DataPoints() })
				case pmetric.MetricTypeSum:
					fill(p, m.Sum().DataPoints(), func() pmetric.NumberDataPointSlice { return dstM().Sum().DataPoints() })
				case pmetric.MetricTypeHistogram:
					fill(p, m.Histogram().DataPoints(), func() pmetric.HistogramDataPointSlice { return dstM().Histogram().DataPoints() })
				case pmetric.MetricTypeExponentialHistogram:
					fill(p, m.ExponentialHistogram().DataPoints(), func() pmetric.ExponentialHistogramDataPointSlice {
						return dstM().ExponentialHistogram().DataPoints()
					})
				case pmetric.MetricTypeSummary:
					fill(p, m.Summary().DataPoints(), func() pmetric.SummaryDataPointSlice { return dstM().Summary().DataPoints() })
				}
			}
		}
	}
	out := make([]*Batch, len(p.out))
	for i, md := range p.out {
		out[i] = &Batch{sig: Metrics, items: p.counts[i], metrics: md, hasDec: true}
	}
	return out
}

// copyMetricShell copies everything of a metric but its data points, so each part of a metric
// that is cut in two describes the same stream.
func copyMetricShell(src, dst pmetric.Metric) {
	dst.SetName(src.Name())
	dst.SetDescription(src.Description())
	dst.SetUnit(src.Unit())
	src.Metadata().CopyTo(dst.Metadata())
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		dst.SetEmptyGauge()
	case pmetric.MetricTypeSum:
		s := dst.SetEmptySum()
		s.SetAggregationTemporality(src.Sum().AggregationTemporality())
		s.SetIsMonotonic(src.Sum().IsMonotonic())
	case pmetric.MetricTypeHistogram:
		dst.SetEmptyHistogram().SetAggregationTemporality(src.Histogram().AggregationTemporality())
	case pmetric.MetricTypeExponentialHistogram:
		dst.SetEmptyExponentialHistogram().SetAggregationTemporality(src.ExponentialHistogram().AggregationTemporality())
	case pmetric.MetricTypeSummary:
		dst.SetEmptySummary()
	}
}

func resourcePoints(rm pmetric.ResourceMetrics) int {
	n := 0
	for i := 0; i < rm.ScopeMetrics().Len(); i++ {
		n += scopePoints(rm.ScopeMetrics().At(i))
	}
	return n
}

func scopePoints(sm pmetric.ScopeMetrics) int {
	n := 0
	for i := 0; i < sm.Metrics().Len(); i++ {
		n += MetricPoints(sm.Metrics().At(i))
	}
	return n
}

// MetricPoints is the number of data points of one metric, whatever its type.
func MetricPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
