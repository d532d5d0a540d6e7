package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/server"
)

// Reasons a data point is refused, in the log line that reports it.
const (
	reasonDelta       = "delta temporality (only cumulative is served)"
	reasonExponential = "exponential histogram (not supported)"
	reasonMalformed   = "histogram bucket counts do not match its bounds"
	reasonNoType      = "metric without data type"
)

// dropLogEvery bounds how often each reason is logged: a client sending delta sums every second
// must not flood the log.
const dropLogEvery = time.Minute

type kind uint8

const (
	kindGauge kind = iota
	kindCounter
	kindHistogram
	kindSummary
)

var valueTypes = map[kind]prom.ValueType{kindGauge: prom.GaugeValue, kindCounter: prom.CounterValue}

// series is the latest state of one Prometheus series.
type series struct {
	name, help string
	kind       kind
	keys, vals []string // label names, sorted, and their values

	value     float64
	count     uint64
	sum       float64
	buckets   map[float64]uint64 // cumulative counts by upper bound
	quantiles map[float64]float64

	ts   pcommon.Timestamp // of the data point: an older point never overwrites a newer one
	seen time.Time         // when a data point last updated it, for expiry

	desc *prom.Desc // cached; rebuilt when the family's help changes
}

// exporter keeps the latest value of every series and serves them to scrapers. Consume and
// Collect run concurrently; mu guards the series map.
type exporter struct {
	set      component.Settings
	cfg      *Config
	registry *prom.Registry
	handler  http.Handler

	mu        sync.Mutex
	series    map[string]*series
	lastSweep time.Time

	logMu   sync.Mutex
	lastLog map[string]time.Time // by drop reason: a small fixed set

	lifeMu  sync.Mutex
	started bool
	stopped bool
	srv     *http.Server
	addr    string
	serving sync.WaitGroup
}

var (
	_ component.Exporter = (*exporter)(nil)
	_ prom.Collector     = (*exporter)(nil)
)

func newExporter(set component.Settings, cfg *Config) *exporter {
	e := &exporter{
		set:      set,
		cfg:      cfg,
		registry: prom.NewRegistry(),
		series:   map[string]*series{},
		lastLog:  map[string]time.Time{},
	}
	e.registry.MustRegister(e)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{
		EnableOpenMetrics: cfg.EnableOpenMetrics,
		// One bad series (say, a name clash between families) must not hide all the others.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promLogger{set.Logger},
	}))
	e.handler = mux
	return e
}

// Start opens the listener, so that a taken port fails start-up, then serves in the background.
func (e *exporter) Start(_ context.Context, host component.Host) error {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	if e.started || e.stopped {
		return fmt.Errorf("exporter %s: already started", e.set.ID)
	}
	l, err := e.cfg.HTTP.Listen()
	if err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	e.srv = e.cfg.HTTP.NewServer(e.handler, server.ErrorLog(e.set.Logger))
	e.addr = server.Addr(l)
	e.started = true
	e.serving.Add(1)
	go func() {
		defer e.serving.Done()
		if err := e.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			host.ReportFatal(fmt.Errorf("exporter %s: %w", e.set.ID, err))
		}
	}()
	e.set.Logger.Info("Prometheus exporter listening", "endpoint", e.addr, "path", "/metrics")
	return nil
}

// Shutdown stops the listener, letting scrapes in flight finish until ctx ends. The exporter
// holds nothing to flush: scrapers pull.
func (e *exporter) Shutdown(ctx context.Context) error {
	e.lifeMu.Lock()
	first := e.started && !e.stopped
	e.stopped = true
	srv := e.srv
	e.lifeMu.Unlock()
	if !first {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	e.serving.Wait()
	if err != nil {
		return fmt.Errorf("exporter %s: shutdown: %w", e.set.ID, err)
	}
	return nil
}

// Consume stores the latest value of every data point in b. Points the exporter cannot serve
// (delta temporality, exponential histograms) are counted dropped and logged; the rest are
// counted sent. It never returns a retryable error: there is nothing to retry against.
func (e *exporter) Consume(_ context.Context, b *batch.Batch) error {
	if b.Signal() != batch.Metrics {
		e.set.Counters.Add(component.Dropped, b.Signal(), b.Items())
		return consumererror.NewPermanent(fmt.Errorf("exporter %s: serves metrics only, got %s", e.set.ID, b.Signal()))
	}
	md, err := b.Metrics()
	if err != nil {
		e.set.Counters.Add(component.Dropped, batch.Metrics, b.Items())
		return consumererror.NewPermanent(fmt.Errorf("exporter %s: %w", e.set.ID, err))
	}
	u := updater{e: e, now: time.Now(), dropped: map[string]dropInfo{}}
	e.mu.Lock()
	for _, rm := range md.ResourceMetrics().All() {
		u.resource(rm)
	}
	e.sweepLocked(u.now, false)
	e.mu.Unlock()

	e.set.Counters.Add(component.Sent, batch.Metrics, u.stored)
	n := 0
	for reason, d := range u.dropped {
		n += d.points
		e.logDrop(reason, d)
	}
	e.set.Counters.Add(component.Dropped, batch.Metrics, n)
	return nil
}

type dropInfo struct {
	points int
	metric string // one example
}

func (e *exporter) logDrop(reason string, d dropInfo) {
	e.logMu.Lock()
	now := time.Now()
	last, ok := e.lastLog[reason]
	due := !ok || now.Sub(last) >= dropLogEvery
	if due {
		e.lastLog[reason] = now
	}
	e.logMu.Unlock()
	if due {
		e.set.Logger.Warn("data points dropped", "reason", reason, "data_points", d.points, "metric", d.metric,
			"note", "logged at most once a minute per reason; see the dropped counter")
	}
}

// sweepLocked forgets expired series. Outside scrapes it runs at most every tenth of the
// expiration, so that Consume stays cheap and the map never holds much beyond the live series.
func (e *exporter) sweepLocked(now time.Time, force bool) {
	exp := e.cfg.MetricExpiration
	if !force && now.Sub(e.lastSweep) < exp/10 {
		return
	}
	e.lastSweep = now
	for k, s := range e.series {
		if now.Sub(s.seen) > exp {
			delete(e.series, k)
		}
	}
}

// updater applies one batch to the series map; e.mu is held.
type updater struct {
	e       *exporter
	now     time.Time
	stored  int
	dropped map[string]dropInfo
}

func (u *updater) drop(reason, metric string, n int) {
	d := u.dropped[reason]
	d.points += n
	if d.metric == "" {
		d.metric = metric
	}
	u.dropped[reason] = d
}

// Resource attributes that become job and instance instead of plain labels.
const (
	attrServiceName      = "service.name"
	attrServiceNamespace = "service.namespace"
	attrServiceInstance  = "service.instance.id"
)

func (u *updater) resource(rm pmetric.ResourceMetrics) {
	cfg := u.e.cfg
	attrs := rm.Resource().Attributes()
	base := map[string]string{}
	if cfg.ResourceToTelemetryConversion.Enabled {
		addAttrs(base, attrs)
	}
	job, instance := jobInstance(attrs)
	if job != "" {
		base["job"] = job
	}
	if instance != "" {
		base["instance"] = instance
	}
	u.targetInfo(attrs, job, instance)
	for _, sm := range rm.ScopeMetrics().All() {
		scope := maps.Clone(base)
		if n := sm.Scope().Name(); n != "" {
			scope["otel_scope_name"] = n
		}
		if v := sm.Scope().Version(); v != "" {
			scope["otel_scope_version"] = v
		}
		for _, m := range sm.Metrics().All() {
			u.metric(m, scope)
		}
	}
}

// jobInstance derives the job and instance labels: "namespace/name" (or the name) and the
// instance id.
func jobInstance(attrs pcommon.Map) (job, instance string) {
	if v, ok := attrs.Get(attrServiceName); ok {
		job = v.AsString()
		if ns, ok := attrs.Get(attrServiceNamespace); ok && ns.AsString() != "" && job != "" {
			job = ns.AsString() + "/" + job
		}
	}
	if v, ok := attrs.Get(attrServiceInstance); ok {
		instance = v.AsString()
	}
	return job, instance
}

// targetInfo records the target_info gauge for a resource with attributes beyond the ones that
// make job and instance.
func (u *updater) targetInfo(attrs pcommon.Map, job, instance string) {
	labels := map[string]string{}
	addAttrs(labels, attrs)
	for _, k := range []string{attrServiceName, attrServiceNamespace, attrServiceInstance} {
		delete(labels, labelName(k))
	}
	if len(labels) == 0 {
		return
	}
	if job != "" {
		labels["job"] = job
	}
	if instance != "" {
		labels["instance"] = instance
	}
	s := u.upsert("target_info", "Target metadata", kindGauge, labels, 0)
	s.value = 1
}

func (u *updater) metric(m pmetric.Metric, scope map[string]string) {
	cfg := u.e.cfg
	name := metricName(m, cfg.Namespace, cfg.AddMetricSuffixes)
	help := m.Description()
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			if s := u.point(name, help, kindGauge, scope, dp.Attributes(), dp.Timestamp(), dp.Flags()); s != nil {
				s.value = number(dp)
			}
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		if sum.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			u.drop(reasonDelta, m.Name(), sum.DataPoints().Len())
			return
		}
		k := kindGauge
		if sum.IsMonotonic() {
			k = kindCounter
		}
		for _, dp := range sum.DataPoints().All() {
			if s := u.point(name, help, k, scope, dp.Attributes(), dp.Timestamp(), dp.Flags()); s != nil {
				s.value = number(dp)
			}
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			u.drop(reasonDelta, m.Name(), h.DataPoints().Len())
			return
		}
		for _, dp := range h.DataPoints().All() {
			bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
			if counts.Len() != 0 && counts.Len() != bounds.Len()+1 {
				u.drop(reasonMalformed, m.Name(), 1)
				continue
			}
			s := u.point(name, help, kindHistogram, scope, dp.Attributes(), dp.Timestamp(), dp.Flags())
			if s == nil {
				continue
			}
			s.count, s.sum = dp.Count(), dp.Sum()
			s.buckets = make(map[float64]uint64, bounds.Len())
			if counts.Len() > 0 {
				var acc uint64
				for i, b := range bounds.All() {
					acc += counts.At(i)
					s.buckets[b] = acc
				}
			}
		}
	case pmetric.MetricTypeSummary:
		for _, dp := range m.Summary().DataPoints().All() {
			s := u.point(name, help, kindSummary, scope, dp.Attributes(), dp.Timestamp(), dp.Flags())
			if s == nil {
				continue
			}
			s.count, s.sum = dp.Count(), dp.Sum()
			s.quantiles = make(map[float64]float64, dp.QuantileValues().Len())
			for _, q := range dp.QuantileValues().All() {
				s.quantiles[q.Quantile()] = q.Value()
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		u.drop(reasonExponential, m.Name(), m.ExponentialHistogram().DataPoints().Len())
	default:
		u.drop(reasonNoType, m.Name(), 1)
	}
}

// point finds or creates the series of one data point and returns it for the caller to set its
// value, or nil when the point must not be stored: it is older than what the series holds, or it
// says the series has no value any more (then the series is forgotten).
func (u *updater) point(name, help string, k kind, scope map[string]string, attrs pcommon.Map,
	ts pcommon.Timestamp, flags pmetric.DataPointFlags) *series {
	u.stored++
	labels := maps.Clone(scope)
	addAttrs(labels, attrs)
	if flags.NoRecordedValue() {
		delete(u.e.series, seriesKey(name, labels, u.e.cfg.ConstLabels))
		return nil
	}
	return u.upsert(name, help, k, labels, ts)
}

func (u *updater) upsert(name, help string, k kind, labels map[string]string, ts pcommon.Timestamp) *series {
	for c, v := range u.e.cfg.ConstLabels {
		labels[c] = v
	}
	key := seriesKey(name, labels, nil)
	s, ok := u.e.series[key]
	if ok && s.kind == k && s.ts > ts {
		return nil
	}
	if !ok || s.kind != k {
		keys := slices.Sorted(maps.Keys(labels))
		vals := make([]string, len(keys))
		for i, lk := range keys {
			vals[i] = labels[lk]
		}
		s = &series{name: name, kind: k, keys: keys, vals: vals}
		u.e.series[key] = s
	}
	s.help, s.ts, s.seen = help, ts, u.now
	return s
}

// seriesKey identifies a series by name and labels (extra, when given, overrides labels).
func seriesKey(name string, labels, extra map[string]string) string {
	if len(extra) > 0 {
		labels = maps.Clone(labels)
		maps.Copy(labels, extra)
	}
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteByte(0xff)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// addAttrs adds attributes as labels. Keys that sanitize to the same label name are joined with
// ";" in the order of the original keys, as the specification asks; empty values are left out
// (Prometheus treats an empty label as no label).
func addAttrs(labels map[string]string, attrs pcommon.Map) {
	if attrs.Len() == 0 {
		return
	}
	keys := make([]string, 0, attrs.Len())
	for k := range attrs.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	mine := make(map[string]bool, len(keys))
	for _, k := range keys {
		v, _ := attrs.Get(k)
		val, name := v.AsString(), labelName(k)
		if name == "" || val == "" {
			continue
		}
		if mine[name] {
			labels[name] += ";" + val
			continue
		}
		labels[name], mine[name] = val, true
	}
}

func number(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// Describe sends nothing: the exporter is an unchecked collector, its series are not known in
// advance.
func (e *exporter) Describe(chan<- *prom.Desc) {}

// Collect emits every live series as a const metric. Where several series share a name with a
// different type, the most recently updated one decides the family's type and help, and the
// others are left out of this scrape.
func (e *exporter) Collect(ch chan<- prom.Metric) {
	now := time.Now()
	e.mu.Lock()
	e.sweepLocked(now, true)
	newest := map[string]*series{}
	for _, s := range e.series {
		if n, ok := newest[s.name]; !ok || s.seen.After(n.seen) || (s.seen.Equal(n.seen) && s.kind < n.kind) {
			newest[s.name] = s
		}
	}
	out := make([]prom.Metric, 0, len(e.series))
	for _, s := range e.series {
		fam := newest[s.name]
		if fam.kind != s.kind {
			continue
		}
		if s.desc == nil || s.help != fam.help {
			s.help = fam.help
			s.desc = prom.NewDesc(s.name, s.help, s.keys, nil)
		}
		out = append(out, s.metric())
	}
	e.mu.Unlock()
	// Sent without the lock: the registry may take its time, and Consume must not wait for it.
	for _, m := range out {
		ch <- m
	}
}

func (s *series) metric() prom.Metric {
	var (
		m   prom.Metric
		err error
	)
	switch s.kind {
	case kindHistogram:
		m, err = prom.NewConstHistogram(s.desc, s.count, s.sum, maps.Clone(s.buckets), s.vals...)
	case kindSummary:
		m, err = prom.NewConstSummary(s.desc, s.count, s.sum, maps.Clone(s.quantiles), s.vals...)
	default:
		m, err = prom.NewConstMetric(s.desc, valueTypes[s.kind], s.value, s.vals...)
	}
	if err != nil {
		return prom.NewInvalidMetric(s.desc, err)
	}
	return m
}

// promLogger sends promhttp's errors (a series that fails to encode) to the component's log.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("scrape error", "error", fmt.Sprint(v...)) }
