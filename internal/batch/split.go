package batch

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/promrw"

	"google.golang.org/protobuf/encoding/protowire"

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

// SplitBytes cuts b into parts whose encoded size (EncodedSize) is at most max bytes, in order.
// An item that is larger than max on its own (with the resource and scope around it) becomes a
// part of its own, larger than max: whoever sends it finds out whether the backend takes it.
//
// An encoded batch is cut without decoding anything, and b stays valid: the parts share its
// bytes, so a sender may cut the batch it has to retry. Runs of whole resource entries are
// sub-slices of the request (unknown request-level fields go with the resource before them). A
// resource entry larger than max is cut at scope boundaries, a scope at item boundaries, and, for
// metrics, a metric at data point boundaries. Each part of a cut entry is written anew: the
// fields around what it holds (the resource, the scope, a metric's name, type, unit and
// temporality) are copied into every part, the items byte for byte; unknown request-level
// fields next to a cut resource are left out. A remote-write batch is cut between series, its
// metadata copied into every part as Split does.
//
// A decoded batch is split by item count (Split) into as many parts as its size needs, and a
// part still over max is split again; pdata computes the sizes without encoding. Its parts are
// not cut at resource boundaries: Split fills each part.
//
// Acknowledgements are handed out as by Split: every part carries all of b's.
func SplitBytes(b *Batch, max int) ([]*Batch, error) {
	if max <= 0 {
		return nil, fmt.Errorf("split %s: max bytes must be > 0, got %d", b.sig, max)
	}
	parts, err := splitBytes(b, max)
	if err != nil || len(parts) < 2 {
		return parts, err
	}
	for _, p := range parts {
		p.acks, p.endToEnd = b.acks, b.endToEnd
	}
	return parts, nil
}

func splitBytes(b *Batch, max int) ([]*Batch, error) {
	if b.EncodedSize() <= max {
		return []*Batch{b}, nil
	}
	switch {
	case b.hasEnc:
		b.join()
		return splitEncodedBytes(b, max)
	case b.hasRW:
		return splitPromRWBytes(b, max)
	}
	return splitDecodedBytes(b, max, b.EncodedSize())
}

// splitDecodedBytes splits pdata by item count into parts of about max bytes, and splits again
// each part that the average did not fit (its items were larger than the batch's).
func splitDecodedBytes(b *Batch, max, size int) ([]*Batch, error) {
	if b.items <= 1 {
		return []*Batch{b}, nil
	}
	per := int(int64(b.items) * int64(max) / int64(size)) // < b.items, since size > max
	if per < 1 {
		per = 1
	}
	parts, err := split(b, per)
	if err != nil {
		return nil, err
	}
	out := make([]*Batch, 0, len(parts))
	for _, p := range parts {
		if size := p.EncodedSize(); size > max && p.items > 1 {
			again, err := splitDecodedBytes(p, max, size)
			if err != nil {
				return nil, err
			}
			out = append(out, again...)
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// splitEncodedBytes groups whole resource entries into byte ranges of at most max bytes and cuts
// the entries larger than that.
func splitEncodedBytes(b *Batch, max int) ([]*Batch, error) {
	var res []Resource
	if err := ScanResources(b.sig, b.enc, func(r Resource) { res = append(res, r) }); err != nil {
		return nil, err
	}
	var (
		out          []*Batch
		start, items int  // the pending range starts at start and holds items
		open         bool // the pending range holds a resource
	)
	flush := func(end int) {
		if open {
			out = append(out, &Batch{sig: b.sig, items: items, enc: b.enc[start:end:end], hasEnc: true})
		}
		start, items, open = end, 0, false
	}
	for i, r := range res {
		// Bytes between this entry and the next (unknown request fields) go with this one.
		end := len(b.enc)
		if i+1 < len(res) {
			end = res[i+1].Start
		}
		if r.End-r.Start > max {
			flush(r.Start)
			w := wireSplitter{sig: b.sig, max: max}
			if err := w.split(nil, fieldResource, b.enc[r.Start:r.End], 0); err != nil {
				return nil, err
			}
			out = append(out, w.out...)
			start = end
			continue
		}
		if open && end-start > max {
			flush(r.Start)
		}
		items += r.Items
		open = true
	}
	flush(len(b.enc))
	if len(out) == 0 {
		return []*Batch{b}, nil
	}
	return out, nil
}

// wireSplitter cuts one encoded resource entry into requests of at most max bytes, one level
// of nesting at a time, without decoding: see SplitBytes.
type wireSplitter struct {
	sig Signal
	max int
	out []*Batch
}

// frame is a message around the one being cut: its field number in its parent, and its fields
// other than the child being cut (whole, tags included), which every part carries.
type frame struct {
	num  protowire.Number
	head []byte
}

// wireChild is one child field of a message being cut: the whole field and its item count.
type wireChild struct {
	num   protowire.Number
	field []byte
	items int
}

// leafDepth is how deep the items sit below a resource entry (0): spans and log records in
// scopes (2); data points in the data message (3) of metrics (2) in scopes.
func (w *wireSplitter) leafDepth() int {
	if w.sig == Metrics {
		return 4
	}
	return 2
}

// children splits the body of a message at depth into the fields around its children (head)
// and its children. A metric's child is its data field (the last one, if a malformed metric has
// several, as pdata reads it; the others stay in the head, where the last one overrides them).
func (w *wireSplitter) children(body []byte, depth int) (head []byte, kids []wireChild, err error) {
	lastData := -1
	if w.sig == Metrics && depth == 2 {
		off := 0
		for off < len(body) {
			num, typ, _, n, err := next(body[off:])
			if err != nil {
				return nil, nil, err
			}
			if typ == protowire.BytesType && isMetricData(num) {
				lastData = off
			}
			off += n
		}
	}
	for off := 0; off < len(body); {
		num, typ, v, n, err := next(body[off:])
		if err != nil {
			return nil, nil, err
		}
		field := body[off : off+n : off+n]
		isChild := typ == protowire.BytesType
		switch {
		case w.sig == Metrics && depth == 2:
			isChild = isChild && off == lastData
		case w.sig == Metrics && depth == 3:
			isChild = isChild && num == 1
		default:
			isChild = isChild && num == fieldScope // = fieldItem: field 2 at both levels
		}
		off += n
		if !isChild {
			head = append(head, field...)
			continue
		}
		items := 1
		if depth+1 < w.leafDepth() {
			if items, err = w.count(v, depth+1); err != nil {
				return nil, nil, err
			}
		}
		kids = append(kids, wireChild{num: num, field: field, items: items})
	}
	return head, kids, nil
}

func isMetricData(num protowire.Number) bool {
	for _, f := range metricDataFields {
		if num == f {
			return true
		}
	}
	return false
}

// count is the number of items in the body of a message at depth.
func (w *wireSplitter) count(body []byte, depth int) (int, error) {
	switch {
	case w.sig == Metrics && depth == 2:
		return scanMetric(body, Limits{})
	case depth == w.leafDepth():
		return 1, nil
	}
	_, kids, err := w.children(body, depth)
	n := 0
	for _, k := range kids {
		n += k.items
	}
	return n, err
}

// split cuts entry, a field number num at depth whose enclosing messages are frames, into parts
// that each hold a run of its children. A child too large for a part of its own is cut in turn,
// unless it is an item.
func (w *wireSplitter) split(frames []frame, num protowire.Number, entry []byte, depth int) error {
	_, _, body, _, err := next(entry)
	if err != nil {
		return err
	}
	head, kids, err := w.children(body, depth)
	if err != nil {
		return err
	}
	if len(kids) == 0 {
		w.emit(frames, num, head, nil, 0) // nothing to cut it at: it goes whole
		return nil
	}
	inner := append(frames[:len(frames):len(frames)], frame{num: num, head: head})
	var (
		run         [][]byte
		size, items int
	)
	flush := func() {
		if len(run) > 0 {
			w.emit(frames, num, head, run, items)
		}
		run, size, items = nil, 0, 0
	}
	for _, k := range kids {
		if depth+1 < w.leafDepth() && wrapped(frames, num, len(head)+len(k.field)) > w.max {
			flush()
			if err := w.split(inner, k.num, k.field, depth+1); err != nil {
				return err
			}
			continue
		}
		if len(run) > 0 && wrapped(frames, num, len(head)+size+len(k.field)) > w.max {
			flush()
		}
		run = append(run, k.field)
		size += len(k.field)
		items += k.items
	}
	flush()
	return nil
}

// wrapped is the size of a request that holds a message of n bytes as field num inside frames.
func wrapped(frames []frame, num protowire.Number, n int) int {
	n = protowire.SizeTag(num) + protowire.SizeBytes(n)
	for i := len(frames) - 1; i >= 0; i-- {
		n = protowire.SizeTag(frames[i].num) + protowire.SizeBytes(len(frames[i].head)+n)
	}
	return n
}

// emit writes a request holding the message (head and kids) as field num inside frames.
func (w *wireSplitter) emit(frames []frame, num protowire.Number, head []byte, kids [][]byte, items int) {
	tag := func(i int) protowire.Number { // the field number of level i: a frame, or the message
		if i < len(frames) {
			return frames[i].num
		}
		return num
	}
	// lens[i] is the length of level i's message.
	lens := make([]int, len(frames)+1)
	lens[len(frames)] = len(head)
	for _, k := range kids {
		lens[len(frames)] += len(k)
	}
	for i := len(frames) - 1; i >= 0; i-- {
		lens[i] = len(frames[i].head) + protowire.SizeTag(tag(i+1)) + protowire.SizeBytes(lens[i+1])
	}
	buf := make([]byte, 0, protowire.SizeTag(tag(0))+protowire.SizeBytes(lens[0]))
	for i := range lens {
		buf = protowire.AppendTag(buf, tag(i), protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(lens[i]))
		if i < len(frames) {
			buf = append(buf, frames[i].head...)
		}
	}
	buf = append(buf, head...)
	for _, k := range kids {
		buf = append(buf, k...)
	}
	w.out = append(w.out, &Batch{sig: w.sig, items: items, enc: buf, hasEnc: true})
}

// splitPromRWBytes groups runs of whole series of a remote-write body into parts of at most max
// bytes, metadata included: everything between series is copied into every part, as splitPromRW
// does. A series larger than that becomes a part of its own.
func splitPromRWBytes(b *Batch, max int) ([]*Batch, error) {
	type series struct{ start, end, items int }
	var (
		all     []series
		end     int
		outside []byte
		sc      = promrw.Scanner{Trusted: true}
	)
	err := sc.ScanV1(b.rw, func(s promrw.SeriesV1) error {
		if s.Start > end {
			outside = append(outside, b.rw[end:s.Start]...)
		}
		all = append(all, series{s.Start, s.End, s.Samples + s.Histograms})
		end = s.End
		return nil
	})
	if err != nil {
		return nil, err
	}
	outside = append(outside, b.rw[end:]...)
	if len(all) == 0 {
		return []*Batch{b}, nil
	}
	room := max - len(outside) // what series may take of a part
	var out []*Batch
	emit := func(run []series) {
		items := 0
		for _, s := range run {
			items += s.items
		}
		from, to := run[0].start, run[len(run)-1].end
		body := b.rw[from:to:to]
		if len(outside) > 0 {
			body = append(append(make([]byte, 0, to-from+len(outside)), body...), outside...)
		}
		out = append(out, FromPromRWTrusted(body, items))
	}
	first := 0
	for i := 1; i < len(all); i++ {
		// A run is contiguous: metadata between series is not part of it.
		if all[i].start != all[i-1].end || all[i].end-all[first].start > room {
			emit(all[first:i])
			first = i
		}
	}
	emit(all[first:])
	return out, nil
}
