package prometheusremotewrite

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
)

// benchBody is n series of 9 labels and one sample each, as a scrape or a Prometheus sends them.
func benchBody(n int) []byte {
	var body []byte
	var enc promrw.SeriesEncoder
	for i := range n {
		enc.Reset()
		enc.Label("__name__", fmt.Sprintf("bench_metric_%d", i%50))
		enc.Label("instance", fmt.Sprintf("host-%d:9100", i%100))
		enc.Label("job", "bench")
		for l := range 6 {
			enc.Label(fmt.Sprintf("label_%d", l), fmt.Sprintf("value-%d-%d", i, l))
		}
		enc.Sample(float64(i), 1_700_000_000_000)
		body = enc.AppendTo(body)
	}
	return body
}

// BenchmarkPrepare is the exporter's work per batch before the network: shard by series hash,
// cut into requests, snappy (or convert to 2.0 first).
func BenchmarkPrepare(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shards int
		mod    func(*Config)
	}{
		{"1.0/1shard", 1, nil},
		{"1.0/8shards", 8, nil},
		{"1.0/8shards/external_labels", 8, func(c *Config) { c.ExternalLabels = map[string]string{"cluster": "eu1", "replica": "a"} }},
		{"2.0/8shards", 8, func(c *Config) { c.Protocol = ProtocolV2 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := NewConfig()
			cfg.Client.Endpoint = "http://127.0.0.1:1/api/v1/write"
			cfg.QueueConfig.MinShards, cfg.QueueConfig.MaxShards = tc.shards, tc.shards
			if tc.mod != nil {
				tc.mod(cfg)
			}
			e, err := newExporter(component.Settings{ID: component.ID{Type: Type}}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			body := benchBody(10000)
			bt := batch.FromPromRWTrusted(body, 10000)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := e.prepare(context.Background(), bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*10000/time.Since(start).Seconds(), "samples/s")
		})
	}
}

// BenchmarkSend is prepare plus the HTTP round trips to a backend that only reads the body.
func BenchmarkSend(b *testing.B) {
	for _, shards := range []int{1, 4} {
		b.Run(fmt.Sprintf("%dshards", shards), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			cfg := NewConfig()
			cfg.Client.Endpoint = srv.URL
			cfg.QueueConfig.MinShards, cfg.QueueConfig.MaxShards = shards, shards
			cfg.Sender.Queue.Enabled = false
			e, err := newExporter(component.Settings{ID: component.ID{Type: Type}}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
			defer e.Shutdown(context.Background())
			body := benchBody(10000)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if err := e.Consume(context.Background(), batch.FromPromRWTrusted(body, 10000)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*10000/time.Since(start).Seconds(), "samples/s")
		})
	}
}
