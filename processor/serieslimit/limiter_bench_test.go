package serieslimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
)

// podBody builds n series shaped like a Kubernetes scrape (7 labels, one sample each).
func podBody(n, offset int) []byte {
	var enc promrw.SeriesEncoder
	var body []byte
	for i := offset; i < offset+n; i++ {
		enc.Label("__name__", fmt.Sprintf("container_metric_%d", i%50))
		enc.Label("container", "app")
		enc.Label("instance", fmt.Sprintf("10.0.%d.%d:9100", i/250%250, i%250))
		enc.Label("job", "kubernetes-pods")
		enc.Label("namespace", fmt.Sprintf("ns-%d", i%20))
		enc.Label("pod", fmt.Sprintf("app-%d-7d9f8b6c5-x2k4p", i/50))
		enc.Label("uid", fmt.Sprintf("%x", i*7919))
		enc.Sample(float64(i), 1_700_000_000_000)
		body = enc.AppendTo(body)
	}
	return body
}

// BenchmarkRemoteWrite limits a 10k-series body: "known" is the steady state (every series
// already admitted), "over_limit" a body of which half is new beyond the limit.
func BenchmarkRemoteWrite(b *testing.B) {
	const n = 10_000
	for _, c := range []struct {
		name   string
		offset int
	}{{"known", 0}, {"over_limit", n / 2}} {
		b.Run(c.name, func(b *testing.B) {
			fx := newFixture(b, n, time.Hour)
			fx.l.next = component.Discard
			if err := fx.l.Consume(context.Background(), batch.FromPromRWTrusted(podBody(n, 0), n)); err != nil {
				b.Fatal(err)
			}
			body := podBody(n, c.offset)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := fx.l.Consume(context.Background(), batch.FromPromRWTrusted(body, n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
	}
}

// BenchmarkPData limits 10k known OTLP data points (one resource, 50 metrics, 4 attributes).
func BenchmarkPData(b *testing.B) {
	const n = 10_000
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("k8s.pod.name", "checkout-7d9f8b6c5-x2k4p")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for m := range 50 {
		dps := ms.AppendEmpty()
		dps.SetName(fmt.Sprintf("metric.%d", m))
		pts := dps.SetEmptyGauge().DataPoints()
		for i := range n / 50 {
			dp := pts.AppendEmpty()
			dp.Attributes().PutStr("http.route", fmt.Sprintf("/r/%d", i))
			dp.Attributes().PutStr("http.method", "GET")
			dp.Attributes().PutInt("http.status_code", 200)
			dp.Attributes().PutStr("server.address", "10.0.0.1")
		}
	}
	md.MarkReadOnly()
	fx := newFixture(b, n, time.Hour)
	fx.l.next = component.Discard
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := fx.l.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
}
