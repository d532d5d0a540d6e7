//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const promVigil = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  prometheus:
    endpoint: %[2]s
    const_labels: {env: e2e}
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus]}
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[3]s}
`

// honor_labels keeps the job and instance labels the exporter derives from the resource, as
// the exporter's README recommends.
const promConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigil
    honor_labels: true
    static_configs:
      - targets: ['%s']
`

// TestPrometheus sends a counter, a gauge and a histogram over OTLP/gRPC to vigil and reads them
// back from a real Prometheus that scrapes vigil's prometheus exporter.
func TestPrometheus(t *testing.T) {
	promBin := binary(t, "PROMETHEUS_BIN")
	grpcAddr, exportAddr, telemetry, promAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil-prom", fmt.Sprintf(promVigil, grpcAddr, exportAddr, telemetry), telemetry)
	waitTCP(t, v.process, exportAddr, 10*time.Second)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, promConfig, exportAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startProcess(t, "prometheus", promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	waitHTTP(t, prom, "http://"+promAddr+"/-/ready", 60*time.Second)

	sendOTLPMetrics(t, grpcAddr, promMetrics())

	base := map[string]string{"job": "shop/checkout", "instance": "i-1", "env": "e2e", "otel_scope_name": "e2e"}
	with := func(kv ...string) map[string]string {
		out := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	want := []struct {
		query  string
		labels map[string]string
		value  float64
	}{
		{`orders_total`, with("__name__", "orders_total", "payment_method", "card"), 42},
		{`queue_size_bytes`, with("__name__", "queue_size_bytes", "queue", "main"), 1536},
		{`checkout_duration_seconds_bucket{le="0.1"}`, with("__name__", "checkout_duration_seconds_bucket", "route", "/pay", "le", "0.1"), 1},
		{`checkout_duration_seconds_bucket{le="1"}`, with("__name__", "checkout_duration_seconds_bucket", "route", "/pay", "le", "1"), 3},
		{`checkout_duration_seconds_bucket{le="+Inf"}`, with("__name__", "checkout_duration_seconds_bucket", "route", "/pay", "le", "+Inf"), 6},
		{`checkout_duration_seconds_count`, with("__name__", "checkout_duration_seconds_count", "route", "/pay"), 6},
		{`checkout_duration_seconds_sum`, with("__name__", "checkout_duration_seconds_sum", "route", "/pay"), 4.5},
		{`target_info`, map[string]string{"__name__": "target_info", "job": "shop/checkout", "instance": "i-1",
			"env": "e2e", "host_name": "h1", "deployment_environment": "test"}, 1},
	}
	for _, w := range want {
		eventually(t, 30*time.Second, func() error {
			got, err := promQuery(promAddr, w.query)
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("%s: %d series, want 1: %+v", w.query, len(got), got)
			}
			if !maps.Equal(got[0].Metric, w.labels) || got[0].value != w.value {
				return fmt.Errorf("%s = %v %v, want %v %v", w.query, got[0].Metric, got[0].value, w.labels, w.value)
			}
			return nil
		})
	}

	// A newer value replaces the old one: the exporter serves the latest value only.
	md := promMetrics()
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).SetIntValue(50)
	sendOTLPMetrics(t, grpcAddr, md)
	eventually(t, 30*time.Second, func() error {
		got, err := promQuery(promAddr, "orders_total")
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].value != 50 {
			return fmt.Errorf("orders_total = %+v, want one series of 50", got)
		}
		return nil
	})
	v.stopClean(t)
}

// promMetrics builds a monotonic counter, a gauge and a histogram with attributes.
func promMetrics() pmetric.Metrics {
	now := pcommon.NewTimestampFromTime(time.Now())
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("service.instance.id", "i-1")
	ra.PutStr("host.name", "h1")
	ra.PutStr("deployment.environment", "test")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("e2e")
	ms := sm.Metrics()

	m := ms.AppendEmpty()
	m.SetName("orders")
	m.SetUnit("{order}")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.SetIntValue(42)
	dp.Attributes().PutStr("payment.method", "card")

	m = ms.AppendEmpty()
	m.SetName("queue.size")
	m.SetUnit("By")
	dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.SetDoubleValue(1536)
	dp.Attributes().PutStr("queue", "main")

	m = ms.AppendEmpty()
	m.SetName("checkout.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := h.DataPoints().AppendEmpty()
	hdp.SetTimestamp(now)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	hdp.SetCount(6)
	hdp.SetSum(4.5)
	hdp.Attributes().PutStr("route", "/pay")
	return md
}

func sendOTLPMetrics(t *testing.T, addr string, md pmetric.Metrics) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
		t.Fatalf("export: %v", err)
	}
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	value  float64
}

// promQuery runs an instant query and returns the series with their values parsed.
func promQuery(addr, query string) ([]promSeries, error) { return promQueryAt(addr, query, "") }

// promQueryAt runs an instant query at an evaluation time (Unix seconds; "" for now).
func promQueryAt(addr, query, at string) ([]promSeries, error) {
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query)
	if at != "" {
		u += "&time=" + at
	}
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %s: %w", query, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s %s", query, body.Status, body.Error)
	}
	for i := range body.Data.Result {
		s, _ := body.Data.Result[i].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", query, body.Data.Result[i].Value, err)
		}
		body.Data.Result[i].value = v
	}
	return body.Data.Result, nil
}
