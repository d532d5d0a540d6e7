package promconv

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// scrapeBody builds 1000 series the way 40 scraped targets would, with 7 labels each like a
// Kubernetes scrape: per target a classic histogram family (10 buckets, _sum, _count), 7
// counters, 5 gauges and target_info, with metadata. Without metadata, the same series as a
// Prometheus remote write sends them.
func scrapeBody(b *testing.B, withMetadata bool) []byte {
	app := NewAppender(context.Background(), nil)
	add := func(opts storage.AOptions, v float64, ls ...string) {
		if !withMetadata {
			opts = storage.AOptions{}
		}
		if _, err := app.Append(0, labels.FromStrings(ls...), 0, ms0, v, nil, nil, opts); err != nil {
			b.Fatal(err)
		}
	}
	hist := storage.AOptions{MetricFamilyName: "http_request_duration_seconds", Metadata: metadata.Metadata{Type: model.MetricTypeHistogram, Help: "Request latency.", Unit: "seconds"}}
	counter := storage.AOptions{MetricFamilyName: "http_requests", Metadata: metadata.Metadata{Type: model.MetricTypeCounter, Help: "Requests."}}
	gauge := storage.AOptions{MetricFamilyName: "process_resident_memory_bytes", Metadata: metadata.Metadata{Type: model.MetricTypeGauge, Help: "Memory.", Unit: "bytes"}}
	series := 0
	for target := 0; series < 1000; target++ {
		inst := fmt.Sprintf("10.0.%d.%d:8080", target/250, target%250)
		pod := "api-7f9c8d6b5-" + strconv.Itoa(10000+target)
		common := []string{"container", "api", "instance", inst, "job", "kubernetes-pods", "namespace", "shop", "pod", pod}
		with := func(name string, extra ...string) []string {
			ls := append([]string{"__name__", name}, common...)
			return append(ls, extra...)
		}
		cum := 0.0
		for i, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"} {
			cum += float64(i + 1)
			add(hist, cum, with("http_request_duration_seconds_bucket", "le", le)...)
		}
		add(hist, 12.5, with("http_request_duration_seconds_sum")...)
		add(hist, cum, with("http_request_duration_seconds_count")...)
		for i := range 7 {
			add(counter, float64(1000*i+target), with("http_requests_total", "code", strconv.Itoa(200+i))...)
		}
		for i := range 5 {
			add(gauge, float64(1<<20*(i+1)), with("process_resident_memory_bytes", "area", strconv.Itoa(i))...)
		}
		add(storage.AOptions{}, 1, with("target_info", "zone", "eu-1a")...)
		series += 25
	}
	body := app.Take()
	if body.Counts.Series != 1000 {
		b.Fatalf("%d series", body.Counts.Series)
	}
	return body.Bytes
}

// BenchmarkToMetrics converts a 1000-series body; ns/series is the time per input series.
func BenchmarkToMetrics(b *testing.B) {
	for _, withMetadata := range []bool{true, false} {
		name := "scrape"
		if !withMetadata {
			name = "no_metadata"
		}
		b.Run(name, func(b *testing.B) {
			body := scrapeBody(b, withMetadata)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ToMetrics(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/series")
		})
	}
}
