package promconv

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// seriesNames returns the sorted __name__ of every series in a body, and the label names of
// the first series named first.
func seriesNames(t *testing.T, b []byte, first string) (names, firstLabels []string) {
	t.Helper()
	for _, ts := range decode(t, b).Timeseries {
		var name string
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name)
			if l.Name == "__name__" {
				name = l.Value
			}
		}
		names = append(names, name)
		if name == first && firstLabels == nil {
			firstLabels = ls
		}
	}
	slices.Sort(names)
	return slices.Compact(names), firstLabels
}

// TestFromMetricsNames: what the settings change in the series names and labels.
func TestFromMetricsNames(t *testing.T) {
	build := func() pmetric.Metrics {
		md, ms := newMetrics("host.name", "n1")
		m := ms.AppendEmpty()
		m.SetName("http.requests")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		s.DataPoints().AppendEmpty().SetIntValue(1)
		m = ms.AppendEmpty()
		m.SetName("cpu.utilization")
		m.SetUnit("1")
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.5)
		m = ms.AppendEmpty()
		m.SetName("duration")
		m.SetUnit("ms")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetCount(1)
		dp.BucketCounts().FromRaw([]uint64{1})
		return md
	}
	f := func(name string, s Settings, wantNames, wantLabels []string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			b, rejected, err := FromMetrics(context.Background(), build(), s)
			if err != nil || rejected != 0 {
				t.Fatalf("%d rejected, %v", rejected, err)
			}
			names, ls := seriesNames(t, b.Bytes, wantNames[0])
			if !reflect.DeepEqual(names, wantNames) {
				t.Errorf("names %v, want %v", names, wantNames)
			}
			if !reflect.DeepEqual(ls, wantLabels) {
				t.Errorf("labels of %s: %v, want %v", wantNames[0], ls, wantLabels)
			}
		})
	}
	f("suffixes", Settings{AddMetricSuffixes: true},
		[]string{"cpu_utilization_ratio", "duration_milliseconds_bucket", "duration_milliseconds_count", "http_requests_total", "target_info"},
		[]string{"__name__", "instance", "job"})
	f("no suffixes", Settings{},
		[]string{"cpu_utilization", "duration_bucket", "duration_count", "http_requests", "target_info"},
		[]string{"__name__", "instance", "job"})
	f("namespace", Settings{AddMetricSuffixes: true, Namespace: "vigil"},
		[]string{"vigil_cpu_utilization_ratio", "vigil_duration_milliseconds_bucket", "vigil_duration_milliseconds_count", "vigil_http_requests_total", "vigil_target_info"},
		[]string{"__name__", "instance", "job"})
	f("no target_info", Settings{AddMetricSuffixes: true, DisableTargetInfo: true},
		[]string{"cpu_utilization_ratio", "duration_milliseconds_bucket", "duration_milliseconds_count", "http_requests_total"},
		[]string{"__name__", "instance", "job"})
	f("promote all resource attributes", Settings{AddMetricSuffixes: true, PromoteAllResourceAttributes: true},
		[]string{"cpu_utilization_ratio", "duration_milliseconds_bucket", "duration_milliseconds_count", "http_requests_total", "target_info"},
		[]string{"__name__", "host_name", "instance", "job", "service_instance_id", "service_name", "service_namespace"})
}

// TestFromMetricsRejects: what the translator cannot convert (delta temporality, no type) is
// left out and counted by data point, the error says why, and the rest is in the body.
func TestFromMetricsRejects(t *testing.T) {
	md, ms := newMetrics()
	m := ms.AppendEmpty()
	m.SetName("delta.requests")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	s.DataPoints().AppendEmpty().SetIntValue(1)
	s.DataPoints().AppendEmpty().SetIntValue(2)
	m = ms.AppendEmpty()
	m.SetName("delta.latency")
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	h.DataPoints().AppendEmpty().SetCount(1)
	ms.AppendEmpty().SetName("typeless")
	m = ms.AppendEmpty()
	m.SetName("kept")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)

	b, rejected, err := FromMetrics(context.Background(), md, Settings{AddMetricSuffixes: true})
	if err == nil || !strings.Contains(err.Error(), "delta.requests") {
		t.Errorf("error %v does not name the delta sum", err)
	}
	if rejected != 4 {
		t.Errorf("rejected %d data points, want 4 (2 delta sum, 1 delta histogram, 1 typeless metric)", rejected)
	}
	if names, _ := seriesNames(t, b.Bytes, "kept"); !reflect.DeepEqual(names, []string{"kept"}) {
		t.Errorf("body holds %v, want the gauge", names)
	}
}
