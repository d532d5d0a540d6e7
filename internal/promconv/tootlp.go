package promconv

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/promrw"
)

// ScopeName is the instrumentation scope of converted metrics that carry no otel_scope_name
// label: the specification asks for the scope of the entity that did the translation.
const ScopeName = "github.com/vigilhq/vigil/internal/promconv"

// Labels and metric names with a meaning of their own in the conversion.
const (
	labelName         = "__name__"
	labelJob          = "job"
	labelInstance     = "instance"
	labelLe           = "le"
	labelQuantile     = "quantile"
	labelScopeName    = "otel_scope_name"
	labelScopeVersion = "otel_scope_version"
	labelTraceID      = "trace_id"
	labelSpanID       = "span_id"

	targetInfo = "target_info"
	scopeInfo  = "otel_scope_info"

	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrServiceInstanceID = "service.instance.id"
	// metadataType is the key under which the specification wants the Prometheus TYPE in the
	// OTLP metric's metadata.
	metadataType = "prometheus.type"
)

// ToMetrics converts a remote-write 1.0 body (an uncompressed prometheus.WriteRequest) to pdata
// with the OpenTelemetry specification's "Prometheus and OpenMetrics compatibility" rules from
// Prometheus to OTLP; README.md has the mapping. Only a body that cannot be parsed is an error;
// samples that have no OTLP form are left out (ToMetricsDropped counts them), because one bad
// series must not lose a batch that other clients' bodies were concatenated into.
//
// Every string in the result is a substring of a single copy of the body: the conversion
// allocates no string per label, and that copy lives as long as any of the strings does.
func ToMetrics(body []byte) (pmetric.Metrics, error) {
	md, _, err := ToMetricsDropped(body)
	return md, err
}

// ToMetricsDropped is ToMetrics that also counts the samples and native histogram samples it
// left out: gauge histograms (the specification drops them), classic histograms and summaries
// without a _count series, buckets without a valid le label and quantiles without a valid
// quantile label, native histograms that fail upstream validation, series without a name.
func ToMetricsDropped(body []byte) (md pmetric.Metrics, dropped int, err error) {
	c := converter{body: body, s: string(body), md: pmetric.NewMetrics()}
	if err := c.readMetadata(); err != nil {
		return pmetric.NewMetrics(), 0, fmt.Errorf("remote write to OTLP: %w", err)
	}
	// The trusted scan checks the framing of the request and of each series' fields, which is
	// all the conversion needs from it: the content checks (label rules, sample order) belong to
	// whoever accepted the body (batch.FromPromRW), and what the conversion reads inside a
	// series it checks as it reads.
	sc := promrw.Scanner{Trusted: true}
	idx := 0
	err = sc.ScanV1(body, func(s promrw.SeriesV1) error {
		if err := c.series(s); err != nil {
			return fmt.Errorf("%w: series %d at byte %d: %v", promrw.ErrMalformed, idx, s.Start, err)
		}
		idx++
		return nil
	})
	if err != nil {
		return pmetric.NewMetrics(), 0, fmt.Errorf("remote write to OTLP: %w", err)
	}
	c.finish()
	return c.md, c.dropped, nil
}

type kind uint8

const (
	kindGauge        kind = iota
	kindCounter           // monotonic cumulative Sum
	kindUpDown            // non-monotonic cumulative Sum: info and stateset
	kindHistogram         // classic, from _bucket/_sum/_count, or a native histogram with custom buckets
	kindSummary           // from {quantile}, _sum and _count
	kindExpHistogram      // native histogram
)

// role says what one float series contributes to its metric.
type role uint8

const (
	rolePoint    role = iota // a data point per sample
	roleBucket               // <family>_bucket{le}
	roleSum                  // <family>_sum
	roleCount                // <family>_count
	roleQuantile             // <family>{quantile}
	roleDrop                 // nothing: the specification drops the type
)

// family is a metric family's metadata; typ is empty when the body has none for it.
type family struct {
	typ        model.MetricType
	help, unit string
}

type label struct{ name, value string }

type sample struct {
	v float64
	t int64
}

type exRef struct {
	lo, hi int // its labels: converter.exLbls[lo:hi]
	v      float64
	t      int64
}

// span is a byte range of the body.
type span struct{ off, n int }

type resKey struct{ job, instance string }

// resource collects what belongs to one job and instance. Its pdata is made with its first
// metric, so a target_info without metrics leaves no empty resource behind.
type resource struct {
	resKey
	target []label // target_info labels, the resource attributes
	rm     pmetric.ResourceMetrics
	made   bool
	scopes index[scopeKey, scope]
}

type scopeKey struct{ name, version string }

type scope struct {
	scopeKey
	attrs   []label // otel_scope_info labels
	sm      pmetric.ScopeMetrics
	made    bool
	metrics index[metricKey, metric]
}

type metricKey struct {
	name string
	kind kind
}

type metric struct {
	metricKey
	m pmetric.Metric
	// points is the number of data points appended; a group knows the index of its own, which
	// finish needs to remove the points of dropped groups.
	points int
	groups map[string]*group
	list   []*group
}

type converter struct {
	body    []byte
	s       string // the body as a string: names and values in the result are substrings of it
	md      pmetric.Metrics
	dropped int
	removed bool // some group was dropped after its data point was made

	meta map[string]family

	res index[resKey, resource]

	// Scratch for the series being converted.
	lbls    []label
	samples []sample
	exs     []exRef
	exLbls  []label
	hists   []span
	key     []byte
	exDst   []pmetric.ExemplarSlice // where the exemplars of the series can go, one per point…
	exTs    []int64                 // …and that point's timestamp
}

func (c *converter) series(s promrw.SeriesV1) error {
	if err := c.parseSeries(s.Raw, s.End-len(s.Raw)); err != nil {
		return err
	}
	var name, job, instance, scName, scVersion string
	for _, l := range c.lbls {
		switch l.name {
		case labelName:
			name = l.value
		case labelJob:
			job = l.value
		case labelInstance:
			instance = l.value
		case labelScopeName:
			scName = l.value
		case labelScopeVersion:
			scVersion = l.value
		}
	}
	if len(c.samples)+len(c.hists) == 0 {
		return nil
	}
	if name == "" {
		c.dropped += len(c.samples) + len(c.hists)
		return nil
	}
	r := c.resource(job, instance)
	switch name {
	case targetInfo:
		for _, l := range c.lbls {
			if l.name != labelName && l.name != labelJob && l.name != labelInstance {
				r.target = append(r.target, l)
			}
		}
		return nil
	case scopeInfo:
		sc := r.scope(scName, scVersion)
		for _, l := range c.lbls {
			if !identifying(l.name) {
				sc.attrs = append(sc.attrs, l)
			}
		}
		return nil
	}
	sc := r.scope(scName, scVersion)
	if len(c.samples) > 0 {
		c.floats(r, sc, name)
	}
	if len(c.hists) > 0 {
		if err := c.natives(r, sc, name); err != nil {
			return err
		}
	}
	return nil
}

// identifying reports the labels that place a series (metric, resource, scope) rather than
// being its attributes.
func identifying(name string) bool {
	switch name {
	case labelName, labelJob, labelInstance, labelScopeName, labelScopeVersion:
		return true
	}
	return false
}

// classify decides what a float series named name is part of: the metric's kind and name, its
// family's metadata and the series' role. With metadata it follows the family's type; without,
// only `_total` is taken as a sign (of a counter): histograms are never guessed from names.
func (c *converter) classify(name string) (kind, string, family, role) {
	if f, ok := c.meta[name]; ok {
		switch f.typ {
		case model.MetricTypeCounter:
			return kindCounter, trimTotal(name), f, rolePoint
		case model.MetricTypeInfo, model.MetricTypeStateset:
			return kindUpDown, name, f, rolePoint
		case model.MetricTypeSummary:
			return kindSummary, name, f, roleQuantile
		case model.MetricTypeGaugeHistogram:
			return kindGauge, name, f, roleDrop
		case model.MetricTypeHistogram:
			// Float samples under the family's own name are no part of a classic histogram
			// (_bucket, _sum, _count are): keep them, untyped.
			return kindGauge, name, family{}, rolePoint
		}
		return kindGauge, name, f, rolePoint
	}
	if i := strings.LastIndexByte(name, '_'); i > 0 && len(c.meta) > 0 {
		base, suffix := name[:i], name[i:]
		if f, ok := c.meta[base]; ok {
			switch f.typ {
			case model.MetricTypeHistogram:
				switch suffix {
				case "_bucket":
					return kindHistogram, base, f, roleBucket
				case "_sum":
					return kindHistogram, base, f, roleSum
				case "_count":
					return kindHistogram, base, f, roleCount
				}
			case model.MetricTypeSummary:
				switch suffix {
				case "_sum":
					return kindSummary, base, f, roleSum
				case "_count":
					return kindSummary, base, f, roleCount
				}
			case model.MetricTypeGaugeHistogram:
				switch suffix {
				case "_bucket", "_gcount", "_gsum", "_count", "_sum":
					return kindGauge, base, f, roleDrop
				}
			case model.MetricTypeCounter:
				if suffix == "_total" {
					return kindCounter, base, f, rolePoint
				}
			case model.MetricTypeInfo:
				if suffix == "_info" {
					return kindUpDown, name, f, rolePoint
				}
			}
		}
	}
	if base := trimTotal(name); base != name {
		return kindCounter, base, family{}, rolePoint
	}
	return kindGauge, name, family{}, rolePoint
}

// trimTotal removes a counter's `_total` suffix, as the Sum's name.
func trimTotal(name string) string {
	if base, ok := strings.CutSuffix(name, "_total"); ok && base != "" {
		return base
	}
	return name
}

// floats converts the float samples of the current series.
func (c *converter) floats(r *resource, sc *scope, name string) {
	k, mname, f, rl := c.classify(name)
	if rl == roleDrop {
		c.dropped += len(c.samples)
		return
	}
	var at float64 // the bucket's le or the quantile
	switch rl {
	case roleBucket, roleQuantile:
		lname := labelLe
		if rl == roleQuantile {
			lname = labelQuantile
		}
		v, err := strconv.ParseFloat(c.label(lname), 64)
		if err != nil || math.IsNaN(v) {
			c.dropped += len(c.samples)
			return
		}
		at = v
	}
	m := c.metric(r, sc, mname, k, f)
	c.exDst, c.exTs = c.exDst[:0], c.exTs[:0]
	if rl == rolePoint {
		dps := m.numberPoints()
		var first pmetric.NumberDataPoint
		for i, s := range c.samples {
			dp := dps.AppendEmpty()
			m.points++
			if i == 0 {
				c.putAttrs(dp.Attributes(), "")
				first = dp
			} else {
				first.Attributes().CopyTo(dp.Attributes())
			}
			dp.SetTimestamp(nanos(s.t))
			dp.SetDoubleValue(s.v)
			if isStale(s.v) {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			}
			c.exDst = append(c.exDst, dp.Exemplars())
			c.exTs = append(c.exTs, s.t)
		}
		c.attachExemplars()
		return
	}

	// Part of a classic histogram or summary: the group of series with the same labels (but
	// le or quantile) and timestamp makes one data point.
	skip := labelLe
	if k == kindSummary {
		skip = labelQuantile
	}
	c.key = c.key[:0]
	for _, l := range c.lbls {
		if identifying(l.name) || l.name == skip {
			continue
		}
		// 0xff never occurs in UTF-8, so the key is unambiguous.
		c.key = append(c.key, l.name...)
		c.key = append(c.key, 0xff)
		c.key = append(c.key, l.value...)
		c.key = append(c.key, 0xff)
	}
	labelsLen := len(c.key)
	for _, s := range c.samples {
		c.key = binary.LittleEndian.AppendUint64(c.key[:labelsLen], uint64(s.t))
		g := c.group(m, skip, s.t)
		g.samples++
		if isStale(s.v) {
			g.stale = true
		}
		switch rl {
		case roleBucket, roleQuantile:
			g.vals = append(g.vals, bound{at: at, v: s.v})
		case roleSum:
			g.sum, g.hasSum = s.v, true
		case roleCount:
			g.count, g.hasCount = s.v, true
		}
		if k == kindHistogram {
			c.exDst = append(c.exDst, g.hdp.Exemplars())
			c.exTs = append(c.exTs, s.t)
		}
	}
	// Summary data points have no exemplars in OTLP: they are dropped.
	c.attachExemplars()
}

// label returns the value of the current series' label name, or "".
func (c *converter) label(name string) string {
	for _, l := range c.lbls {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

// putAttrs sets the current series' labels as attributes, but for those that identify it and
// skip.
func (c *converter) putAttrs(m pcommon.Map, skip string) {
	m.EnsureCapacity(len(c.lbls))
	for _, l := range c.lbls {
		if identifying(l.name) || (skip != "" && l.name == skip) {
			continue
		}
		m.PutStr(l.name, l.value)
	}
}

func (c *converter) resource(job, instance string) *resource {
	k := resKey{job: job, instance: instance}
	if r := c.res.find(k); r != nil {
		return r
	}
	r := &resource{resKey: k}
	c.res.add(k, r)
	return r
}

func (r *resource) scope(name, version string) *scope {
	k := scopeKey{name: name, version: version}
	if s := r.scopes.find(k); s != nil {
		return s
	}
	s := &scope{scopeKey: k}
	r.scopes.add(k, s)
	return s
}

// index keeps values by key in the order they were first added, and remembers the last one
// found: consecutive series mostly share their resource, scope and metric.
type index[K comparable, V any] struct {
	m     map[K]*V
	list  []*V
	lastK K
	last  *V
}

func (x *index[K, V]) find(k K) *V {
	if x.last != nil && x.lastK == k {
		return x.last
	}
	v := x.m[k]
	if v != nil {
		x.lastK, x.last = k, v
	}
	return v
}

func (x *index[K, V]) add(k K, v *V) {
	if x.m == nil {
		x.m = make(map[K]*V)
	}
	x.m[k] = v
	x.list = append(x.list, v)
	x.lastK, x.last = k, v
}

// metric finds or makes the metric name of kind k in the scope, in the order of first
// appearance.
func (c *converter) metric(r *resource, sc *scope, name string, k kind, f family) *metric {
	key := metricKey{name: name, kind: k}
	if m := sc.metrics.find(key); m != nil {
		return m
	}
	if !sc.made {
		if !r.made {
			r.rm = c.md.ResourceMetrics().AppendEmpty()
			r.made = true
		}
		sc.sm = r.rm.ScopeMetrics().AppendEmpty()
		sc.made = true
	}
	m := &metric{metricKey: key, m: sc.sm.Metrics().AppendEmpty()}
	m.m.SetName(name)
	m.m.SetDescription(f.help)
	m.m.SetUnit(otelUnit(f.unit))
	typ := f.typ
	if typ == "" {
		typ = model.MetricTypeUnknown
	}
	m.m.Metadata().PutStr(metadataType, string(typ))
	switch k {
	case kindGauge:
		m.m.SetEmptyGauge()
	case kindCounter, kindUpDown:
		s := m.m.SetEmptySum()
		s.SetIsMonotonic(k == kindCounter)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	case kindHistogram:
		m.m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	case kindExpHistogram:
		m.m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	case kindSummary:
		m.m.SetEmptySummary()
	}
	sc.metrics.add(key, m)
	return m
}

func (m *metric) numberPoints() pmetric.NumberDataPointSlice {
	if m.kind == kindGauge {
		return m.m.Gauge().DataPoints()
	}
	return m.m.Sum().DataPoints()
}

// attachExemplars gives each exemplar of the current series to the first of its points at or
// after the exemplar's time (the last point if none is): with one sample per series, the usual
// case, to that point.
func (c *converter) attachExemplars() {
	if len(c.exs) == 0 || len(c.exDst) == 0 {
		return
	}
	for _, e := range c.exs {
		i := 0
		for i < len(c.exTs)-1 && c.exTs[i] < e.t {
			i++
		}
		x := c.exDst[i].AppendEmpty()
		x.SetTimestamp(nanos(e.t))
		x.SetDoubleValue(e.v)
		for _, l := range c.exLbls[e.lo:e.hi] {
			switch l.name {
			case labelTraceID:
				var id pcommon.TraceID
				if decodeHex(id[:], l.value) {
					x.SetTraceID(id)
					continue
				}
			case labelSpanID:
				var id pcommon.SpanID
				if decodeHex(id[:], l.value) {
					x.SetSpanID(id)
					continue
				}
			}
			x.FilteredAttributes().PutStr(l.name, l.value)
		}
	}
}

// decodeHex fills dst from s, which must be exactly its hex encoding.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// finish sets what is only known at the end (resource and scope attributes, classic
// histograms and summaries) and removes what dropped groups left empty.
func (c *converter) finish() {
	for _, r := range c.res.list {
		if !r.made {
			continue
		}
		attrs := r.rm.Resource().Attributes()
		attrs.EnsureCapacity(len(r.target) + 3)
		if r.job != "" {
			ns, name := splitJob(r.job)
			attrs.PutStr(attrServiceName, name)
			if ns != "" {
				attrs.PutStr(attrServiceNamespace, ns)
			}
		}
		if r.instance != "" {
			attrs.PutStr(attrServiceInstanceID, r.instance)
		}
		putNew(attrs, r.target)
		for _, sc := range r.scopes.list {
			if !sc.made {
				continue
			}
			s := sc.sm.Scope()
			if sc.name != "" {
				s.SetName(sc.name)
			} else {
				s.SetName(ScopeName)
			}
			s.SetVersion(sc.version)
			putNew(s.Attributes(), sc.attrs)
			for _, m := range sc.metrics.list {
				c.finishGroups(m)
			}
		}
	}
	if c.removed {
		removeEmpty(c.md)
	}
}

// putNew adds the labels as attributes but for keys m has: identity from job and instance wins
// over target_info, and the first of repeated target_info samples wins.
func putNew(m pcommon.Map, ls []label) {
	for _, l := range ls {
		if _, ok := m.Get(l.name); !ok {
			m.PutStr(l.name, l.value)
		}
	}
}

// splitJob undoes the specification's job = service.namespace + "/" + service.name at the first
// slash.
func splitJob(job string) (namespace, name string) {
	if i := strings.IndexByte(job, '/'); i > 0 && i < len(job)-1 {
		return job[:i], job[i+1:]
	}
	return "", job
}

func removeEmpty(md pmetric.Metrics) {
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				switch m.Type() {
				case pmetric.MetricTypeHistogram:
					return m.Histogram().DataPoints().Len() == 0
				case pmetric.MetricTypeSummary:
					return m.Summary().DataPoints().Len() == 0
				}
				return false
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
}

// nanos converts a Prometheus timestamp (ms) to OTLP's (ns since the epoch, unsigned): times
// before 1970 become 0, which OTLP reads as unknown.
func nanos(ms int64) pcommon.Timestamp {
	switch {
	case ms <= 0:
		return 0
	case uint64(ms) > math.MaxUint64/1_000_000:
		return pcommon.Timestamp(math.MaxUint64)
	}
	return pcommon.Timestamp(uint64(ms) * 1_000_000)
}

// toCount converts a count carried as a float (classic histogram series, float histograms) to
// OTLP's integer, rounding; NaN and negative counts become 0.
func toCount(v float64) uint64 {
	switch {
	case !(v > 0):
		return 0
	case v >= 1<<64:
		return math.MaxUint64
	}
	return uint64(math.Round(v))
}

// otelUnit translates a Prometheus unit to OpenTelemetry's conventions as the specification
// asks: full words to UCUM abbreviations, "ratio" to "1", "foo_per_bar" to "foo/bar". Units it
// does not know stay as they are.
func otelUnit(u string) string {
	if u == "" {
		return ""
	}
	if per, ok := strings.CutPrefix(u, "per_"); ok {
		return "1/" + perUnit(per)
	}
	main, per, ok := strings.Cut(u, "_per_")
	if w, known := unitWords[main]; known {
		main = w
	}
	if !ok {
		return main
	}
	return main + "/" + perUnit(per)
}

func perUnit(u string) string {
	if w, ok := perUnitWords[u]; ok {
		return w
	}
	return u
}

var unitWords = map[string]string{
	"days":         "d",
	"hours":        "h",
	"minutes":      "min",
	"seconds":      "s",
	"milliseconds": "ms",
	"microseconds": "us",
	"nanoseconds":  "ns",
	"bytes":        "By",
	"kibibytes":    "KiBy",
	"mebibytes":    "MiBy",
	"gibibytes":    "GiBy",
	"tibibytes":    "TiBy",
	"kilobytes":    "KBy",
	"megabytes":    "MBy",
	"gigabytes":    "GBy",
	"terabytes":    "TBy",
	"meters":       "m",
	"volts":        "V",
	"amperes":      "A",
	"joules":       "J",
	"watts":        "W",
	"grams":        "g",
	"celsius":      "Cel",
	"hertz":        "Hz",
	"percent":      "%",
	"ratio":        "1",
}

var perUnitWords = map[string]string{
	"second": "s",
	"minute": "min",
	"hour":   "h",
	"day":    "d",
	"week":   "w",
	"month":  "mo",
	"year":   "y",
}
