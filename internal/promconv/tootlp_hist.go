package promconv

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// group gathers the series of one classic histogram or summary data point: the same labels
// (but le or quantile) at the same timestamp. Its data point is made when the group is, so that
// points keep the order of the body; its values are set by finishGroups, once all are known.
type group struct {
	idx        int // of its data point in the metric
	hdp        pmetric.HistogramDataPoint
	sdp        pmetric.SummaryDataPoint
	vals       []bound // buckets (le, cumulative count) or quantiles (quantile, value)
	count, sum float64
	hasCount   bool
	hasSum     bool
	stale      bool
	drop       bool
	samples    int
}

type bound struct{ at, v float64 }

// group finds or makes the group keyed by c.key in m.
func (c *converter) group(m *metric, skip string, t int64) *group {
	if g, ok := m.groups[string(c.key)]; ok {
		return g
	}
	g := &group{idx: m.points}
	m.points++
	if m.kind == kindHistogram {
		g.hdp = m.m.Histogram().DataPoints().AppendEmpty()
		c.putAttrs(g.hdp.Attributes(), skip)
		g.hdp.SetTimestamp(nanos(t))
	} else {
		g.sdp = m.m.Summary().DataPoints().AppendEmpty()
		c.putAttrs(g.sdp.Attributes(), skip)
		g.sdp.SetTimestamp(nanos(t))
	}
	if m.groups == nil {
		m.groups = make(map[string]*group)
	}
	m.groups[string(c.key)] = g
	m.list = append(m.list, g)
	return g
}

// finishGroups sets the values of m's classic histogram or summary points, following the
// specification: a point without _count is dropped; a histogram without _sum has no sum, a
// summary without one a sum of 0; each le but +Inf is a bound, and the cumulative bucket
// counts become per-bucket counts, the last (+Inf) bucket being what _count adds to them.
func (c *converter) finishGroups(m *metric) {
	if len(m.list) == 0 {
		return
	}
	drops := 0
	for _, g := range m.list {
		if !g.hasCount {
			g.drop = true
			drops++
			c.dropped += g.samples
			continue
		}
		if m.kind == kindHistogram {
			finishHistogram(g)
		} else {
			finishSummary(g)
		}
	}
	if drops == 0 {
		return
	}
	c.removed = true
	i, next := 0, 0
	dropAt := func() bool {
		for next < len(m.list) && !m.list[next].drop {
			next++
		}
		drop := next < len(m.list) && m.list[next].idx == i
		if drop {
			next++
		}
		i++
		return drop
	}
	if m.kind == kindHistogram {
		m.m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return dropAt() })
	} else {
		m.m.Summary().DataPoints().RemoveIf(func(pmetric.SummaryDataPoint) bool { return dropAt() })
	}
}

func finishHistogram(g *group) {
	dp := g.hdp
	if g.stale {
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		return
	}
	// Buckets arrive in label order, which sorts le as text ("10" before "2.5").
	slices.SortStableFunc(g.vals, func(a, b bound) int { return cmp.Compare(a.at, b.at) })
	bounds := make([]float64, 0, len(g.vals))
	counts := make([]uint64, 0, len(g.vals)+1)
	var prev uint64
	for i, b := range g.vals {
		if math.IsInf(b.at, 1) || (i > 0 && b.at == g.vals[i-1].at) {
			continue
		}
		cum := toCount(b.v)
		bounds = append(bounds, b.at)
		counts = append(counts, cum-min(cum, prev))
		prev = max(prev, cum)
	}
	count := toCount(g.count)
	counts = append(counts, count-min(count, prev))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	dp.SetCount(count)
	if g.hasSum {
		dp.SetSum(g.sum)
	}
}

func finishSummary(g *group) {
	dp := g.sdp
	if g.stale {
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		return
	}
	slices.SortStableFunc(g.vals, func(a, b bound) int { return cmp.Compare(a.at, b.at) })
	qs := dp.QuantileValues()
	qs.EnsureCapacity(len(g.vals))
	for i, b := range g.vals {
		if i > 0 && b.at == g.vals[i-1].at {
			continue
		}
		q := qs.AppendEmpty()
		q.SetQuantile(b.at)
		q.SetValue(b.v)
	}
	dp.SetCount(toCount(g.count))
	dp.SetSum(g.sum)
}

// maxDenseBuckets bounds how many OTLP buckets a native histogram's side may expand to when its
// populated buckets are sparse: OTLP buckets are dense, so two buckets far apart would otherwise
// cost every bucket between them (a few bytes of input could ask for gigabytes). A wider side
// has its resolution reduced, merging buckets exactly as OpenTelemetry SDKs do at their default
// limit of 160 buckets; a side whose width is no more than 4× its buckets is kept as it is.
const maxDenseBuckets = 160

// natives converts the native histogram samples of the current series: exponential schemas to
// cumulative exponential histograms, custom buckets (NHCB) to cumulative classic histograms.
// Decoding, schema reduction and validation are upstream's (prompb, model/histogram), as in
// Prometheus's own remote-write receiver; what fails them is dropped and counted.
func (c *converter) natives(r *resource, sc *scope, name string) error {
	f := c.meta[name]
	if f.typ == model.MetricTypeGaugeHistogram {
		c.dropped += len(c.hists)
		return nil
	}
	c.exDst, c.exTs = c.exDst[:0], c.exTs[:0]
	for _, hs := range c.hists {
		var ph prompb.Histogram
		if err := ph.Unmarshal(c.body[hs.off : hs.off+hs.n]); err != nil {
			return fmt.Errorf("histogram: %w", err)
		}
		if !histogram.IsKnownSchema(ph.Schema) {
			c.dropped++
			continue
		}
		custom := histogram.IsCustomBucketsSchema(ph.Schema)
		stale := isStale(ph.Sum)
		var fh *histogram.FloatHistogram
		if !stale {
			if fh = valid(&ph); fh == nil || !fit(fh) {
				c.dropped++
				continue
			}
		}
		k := kindExpHistogram
		if custom {
			k = kindHistogram
		}
		m := c.metric(r, sc, name, k, f)
		m.points++
		if custom {
			dp := m.m.Histogram().DataPoints().AppendEmpty()
			c.putAttrs(dp.Attributes(), "")
			dp.SetTimestamp(nanos(ph.Timestamp))
			if stale {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			} else {
				customPoint(dp, fh)
			}
			c.exDst = append(c.exDst, dp.Exemplars())
		} else {
			dp := m.m.ExponentialHistogram().DataPoints().AppendEmpty()
			c.putAttrs(dp.Attributes(), "")
			dp.SetTimestamp(nanos(ph.Timestamp))
			if stale {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			} else {
				exponentialPoint(dp, fh)
			}
			c.exDst = append(c.exDst, dp.Exemplars())
		}
		c.exTs = append(c.exTs, ph.Timestamp)
	}
	c.attachExemplars()
	return nil
}

// valid decodes ph as upstream's remote-write receiver does: schemas above 8, which Prometheus
// reserves for the future, are reduced to 8; integer histograms are validated as integers
// (their count must add up), float ones as floats. It returns nil for an invalid histogram.
func valid(ph *prompb.Histogram) *histogram.FloatHistogram {
	if ph.IsFloatHistogram() {
		fh := ph.ToFloatHistogram()
		if fh.Schema > histogram.ExponentialSchemaMax {
			if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
				return nil
			}
		}
		if err := fh.Validate(); err != nil {
			return nil
		}
		return fh
	}
	h := ph.ToIntHistogram()
	if h.Schema > histogram.ExponentialSchemaMax {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return nil
		}
	}
	if err := h.Validate(); err != nil {
		return nil
	}
	return h.ToFloat(nil)
}

// fit reduces the resolution of a valid exponential histogram until both its sides fit
// maxDenseBuckets.
func fit(fh *histogram.FloatHistogram) bool {
	if fh.UsesCustomBuckets() {
		return true
	}
	for tooWide(fh.PositiveSpans, len(fh.PositiveBuckets)) || tooWide(fh.NegativeSpans, len(fh.NegativeBuckets)) {
		// Bucket indexes far beyond float64's range stay too wide at the lowest schema.
		if fh.Schema <= histogram.ExponentialSchemaMin {
			return false
		}
		if err := fh.ReduceResolution(fh.Schema - 1); err != nil {
			return false
		}
	}
	return true
}

func tooWide(spans []histogram.Span, buckets int) bool {
	first, last, ok := spanRange(spans)
	return ok && last-first+1 > int64(max(maxDenseBuckets, 4*buckets))
}

// spanRange returns the first and last bucket index the spans cover, walking them as the
// upstream bucket iterators do (the first offset is an index, the next ones are gaps).
func spanRange(spans []histogram.Span) (first, last int64, ok bool) {
	var idx int64
	for _, s := range spans {
		idx += int64(s.Offset)
		if s.Length > 0 {
			if !ok {
				first, ok = idx, true
			}
			last = idx + int64(s.Length) - 1
		}
		idx += int64(s.Length)
	}
	return first, last, ok
}

// exponentialPoint fills an exponential data point from a validated histogram. Prometheus's
// bucket i covers (base^(i-1), base^i], OpenTelemetry's covers (base^i, base^(i+1)]: the OTLP
// offset is the first Prometheus index minus one, and gaps between spans become zero buckets.
func exponentialPoint(dp pmetric.ExponentialHistogramDataPoint, fh *histogram.FloatHistogram) {
	dp.SetScale(fh.Schema)
	dp.SetZeroThreshold(fh.ZeroThreshold)
	dp.SetZeroCount(toCount(fh.ZeroCount))
	dp.SetCount(toCount(fh.Count))
	dp.SetSum(fh.Sum)
	denseBuckets(dp.Positive(), fh.PositiveSpans, fh.PositiveBucketIterator())
	denseBuckets(dp.Negative(), fh.NegativeSpans, fh.NegativeBucketIterator())
}

func denseBuckets(b pmetric.ExponentialHistogramDataPointBuckets, spans []histogram.Span, it histogram.BucketIterator[float64]) {
	first, last, ok := spanRange(spans)
	if !ok {
		return
	}
	counts := make([]uint64, last-first+1)
	for it.Next() {
		bk := it.At()
		if i := int64(bk.Index) - first; i >= 0 && i < int64(len(counts)) {
			counts[i] = toCount(bk.Count)
		}
	}
	b.SetOffset(int32(first - 1))
	b.BucketCounts().FromRaw(counts)
}

// customPoint fills a classic data point from a validated histogram with custom buckets: its
// custom values are the explicit bounds, bucket i its (non-cumulative) count, the one past the
// last bound the +Inf bucket.
func customPoint(dp pmetric.HistogramDataPoint, fh *histogram.FloatHistogram) {
	counts := make([]uint64, len(fh.CustomValues)+1)
	for it := fh.PositiveBucketIterator(); it.Next(); {
		bk := it.At()
		if bk.Index >= 0 && int(bk.Index) < len(counts) {
			counts[bk.Index] = toCount(bk.Count)
		}
	}
	// The histogram was decoded for this conversion alone: its bounds can be handed over.
	dp.ExplicitBounds().FromRaw(fh.CustomValues)
	dp.BucketCounts().FromRaw(counts)
	dp.SetCount(toCount(fh.Count))
	dp.SetSum(fh.Sum)
}
