package promconv

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Settings control OTLP → Prometheus naming, as the OpenTelemetry specification allows.
type Settings struct {
	// Namespace is prefixed to every metric name.
	Namespace string
	// AddMetricSuffixes adds unit and type suffixes (`_seconds`, `_total`), as the specification
	// says an exporter should. Default true in every component that exposes it.
	AddMetricSuffixes bool
	// PromoteAllResourceAttributes turns every resource attribute into a label on every series
	// (beyond job and instance); otherwise they are only on target_info.
	PromoteAllResourceAttributes bool
	// DisableTargetInfo stops the target_info series being written.
	DisableTargetInfo bool
}

// FromMetrics converts pdata metrics to a remote-write 1.0 body with the upstream translator,
// which implements the specification (name and unit suffixes, `_total`, target_info, resource
// attribute promotion, exponential → native histograms). Metrics that cannot be converted (delta
// temporality, an unset type) are left out: rejected counts their data points and err says why;
// the body holds everything else.
func FromMetrics(ctx context.Context, md pmetric.Metrics, s Settings) (body Body, rejected int, err error) {
	app := NewAppender(ctx, nil)
	rejected, err = Convert(ctx, md, s, app)
	return app.Take(), rejected, err
}

// Convert is FromMetrics into any appender (the alerting store's, say); it does not commit.
func Convert(ctx context.Context, md pmetric.Metrics, s Settings, app storage.AppenderV2) (rejected int, err error) {
	conv := prometheusremotewrite.NewPrometheusConverter(app)
	ts := prometheusremotewrite.Settings{
		Namespace:         s.Namespace,
		AddMetricSuffixes: s.AddMetricSuffixes,
		DisableTargetInfo: s.DisableTargetInfo,
	}
	if s.PromoteAllResourceAttributes {
		ts.PromoteResourceAttributes = promoteAll
	}
	_, err = conv.FromMetrics(ctx, md, ts)
	if err != nil {
		rejected = unconvertible(md)
		err = fmt.Errorf("convert to Prometheus: %w", err)
	}
	return rejected, err
}

// unconvertible counts the data points the translator skips: metrics of no type and sums and
// histograms that are not cumulative.
func unconvertible(md pmetric.Metrics) int {
	n := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.Sum().DataPoints().Len()
					}
				case pmetric.MetricTypeHistogram:
					if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.Histogram().DataPoints().Len()
					}
				case pmetric.MetricTypeExponentialHistogram:
					if m.ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.ExponentialHistogram().DataPoints().Len()
					}
				case pmetric.MetricTypeEmpty:
					n++
				}
			}
		}
	}
	return n
}

var promoteAll = prometheusremotewrite.NewPromoteResourceAttributes(config.OTLPConfig{PromoteAllResourceAttributes: true})
