package debug

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// exporter logs batches through the agent's logger. It reads batches only through read-only
// accessors: the same batch may be shared with other exporters.
type exporter struct {
	set       component.Settings
	verbosity string
	samplers  map[batch.Signal]*sampler
}

var _ component.Exporter = (*exporter)(nil)

func newExporter(set component.Settings, verbosity string, initial, thereafter int) *exporter {
	e := &exporter{set: set, verbosity: verbosity, samplers: map[batch.Signal]*sampler{}}
	for _, s := range batch.Signals {
		// One sampler per signal, as the Collector's log sampler keys on the message.
		e.samplers[s] = &sampler{initial: initial, thereafter: thereafter}
	}
	return e
}

func (e *exporter) Start(context.Context, component.Host) error { return nil }
func (e *exporter) Shutdown(context.Context) error              { return nil }

// Consume logs b if the sampler lets it through, and counts it sent either way: the exporter
// did what it is for.
func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	sig, n := b.Signal(), b.Items()
	s, ok := e.samplers[sig]
	if !ok {
		return fmt.Errorf("%s: unknown signal %s", e.set.ID, sig)
	}
	log := e.set.Logger
	if log.Enabled(ctx, slog.LevelInfo) && s.allow() {
		if err := e.write(ctx, log, b); err != nil {
			log.Warn("cannot show batch", "signal", sig.String(), "error", err)
		}
	}
	e.set.Counters.Add(component.Sent, sig, n)
	return nil
}

func (e *exporter) write(ctx context.Context, log *slog.Logger, b *batch.Batch) error {
	log.LogAttrs(ctx, slog.LevelInfo, b.Signal().String(), basicAttrs(b)...)
	switch e.verbosity {
	case Normal:
		return perItem(ctx, log, b)
	case Detailed:
		raw, err := b.JSON()
		if err != nil {
			return err
		}
		// RawMessage keeps JSON logs nested instead of escaping the document into a string.
		log.LogAttrs(ctx, slog.LevelInfo, b.Signal().String()+" detail", slog.Any("otlp", json.RawMessage(raw)))
	}
	return nil
}

// basicAttrs describes a batch without decoding it: the item count is known, the size of the
// encoded form is known or computed from pdata, and resources are counted by a wire scan.
func basicAttrs(b *batch.Batch) []slog.Attr {
	itemKey := map[batch.Signal]string{batch.Traces: "spans", batch.Metrics: "data_points", batch.Logs: "log_records"}
	attrs := []slog.Attr{
		slog.Int("resources", resources(b)),
		slog.Int(itemKey[b.Signal()], b.Items()),
		slog.Bool("encoded", b.IsEncoded()),
		slog.Int("bytes", b.EncodedSize()),
	}
	return attrs
}

func resources(b *batch.Batch) int {
	if b.IsDecoded() {
		switch b.Signal() {
		case batch.Traces:
			td, _ := b.Traces()
			return td.ResourceSpans().Len()
		case batch.Metrics:
			md, _ := b.Metrics()
			return md.ResourceMetrics().Len()
		default:
			ld, _ := b.Logs()
			return ld.ResourceLogs().Len()
		}
	}
	// Available without decoding; a batch in pieces is counted piece by piece (each is a whole
	// request), so nothing is joined just to be counted.
	pieces, err := b.EncodedParts()
	if err != nil {
		return -1
	}
	n := 0
	for _, p := range pieces {
		if err := batch.ScanResources(b.Signal(), p, func(batch.Resource) { n++ }); err != nil {
			return -1
		}
	}
	return n
}

// perItem logs one line per span, data point or log record.
func perItem(ctx context.Context, log *slog.Logger, b *batch.Batch) error {
	switch b.Signal() {
	case batch.Traces:
		td, err := b.Traces()
		if err != nil {
			return err
		}
		for _, rs := range td.ResourceSpans().All() {
			svc := service(rs.Resource())
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					log.LogAttrs(ctx, slog.LevelInfo, "span",
						slog.String("service", svc),
						slog.String("name", sp.Name()),
						slog.String("trace_id", sp.TraceID().String()),
						slog.String("span_id", sp.SpanID().String()),
						slog.String("parent_span_id", sp.ParentSpanID().String()),
						slog.String("span_kind", sp.Kind().String()),
						slog.String("status", sp.Status().Code().String()),
						slog.String("duration", sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()).String()),
						slog.Any("attributes", sp.Attributes().AsRaw()))
				}
			}
		}
	case batch.Metrics:
		md, err := b.Metrics()
		if err != nil {
			return err
		}
		for _, rm := range md.ResourceMetrics().All() {
			svc := service(rm.Resource())
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					points(m, func(ts pcommon.Timestamp, attrs pcommon.Map, value ...slog.Attr) {
						log.LogAttrs(ctx, slog.LevelInfo, "data point", append([]slog.Attr{
							slog.String("service", svc),
							slog.String("metric", m.Name()),
							slog.String("type", m.Type().String()),
							slog.String("unit", m.Unit()),
							slog.Time("time", ts.AsTime()),
							slog.Any("attributes", attrs.AsRaw()),
						}, value...)...)
					})
				}
			}
		}
	default:
		ld, err := b.Logs()
		if err != nil {
			return err
		}
		for _, rl := range ld.ResourceLogs().All() {
			svc := service(rl.Resource())
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					log.LogAttrs(ctx, slog.LevelInfo, "log record",
						slog.String("service", svc),
						slog.Time("time", lr.Timestamp().AsTime()),
						slog.String("severity", severity(lr)),
						slog.String("body", lr.Body().AsString()),
						slog.String("trace_id", lr.TraceID().String()),
						slog.String("span_id", lr.SpanID().String()),
						slog.Any("attributes", lr.Attributes().AsRaw()))
				}
			}
		}
	}
	return nil
}

// points calls fn for each data point of m with its value summarised for the metric's type.
func points(m pmetric.Metric, fn func(pcommon.Timestamp, pcommon.Map, ...slog.Attr)) {
	number := func(dps pmetric.NumberDataPointSlice) {
		for _, dp := range dps.All() {
			v := slog.Float64("value", dp.DoubleValue())
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = slog.Int64("value", dp.IntValue())
			}
			fn(dp.Timestamp(), dp.Attributes(), v)
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		number(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		number(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			fn(dp.Timestamp(), dp.Attributes(), slog.Uint64("count", dp.Count()), slog.Float64("sum", dp.Sum()))
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			fn(dp.Timestamp(), dp.Attributes(), slog.Uint64("count", dp.Count()), slog.Float64("sum", dp.Sum()))
		}
	case pmetric.MetricTypeSummary:
		for _, dp := range m.Summary().DataPoints().All() {
			fn(dp.Timestamp(), dp.Attributes(), slog.Uint64("count", dp.Count()), slog.Float64("sum", dp.Sum()))
		}
	}
}

func service(r pcommon.Resource) string {
	if v, ok := r.Attributes().Get("service.name"); ok {
		return v.AsString()
	}
	return ""
}

func severity(lr plog.LogRecord) string {
	if lr.SeverityText() != "" {
		return lr.SeverityText()
	}
	return lr.SeverityNumber().String()
}

// sampler lets the first initial calls of each second through, then every thereafter-th one:
// the Collector's (zap's) log sampling.
type sampler struct {
	initial, thereafter int

	mu    sync.Mutex
	start time.Time
	n     int
}

func (s *sampler) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.start.IsZero() || now.Sub(s.start) >= time.Second {
		s.start, s.n = now, 0
	}
	s.n++
	if s.n <= s.initial {
		return true
	}
	return s.thereafter > 0 && (s.n-s.initial)%s.thereafter == 0
}
