package prometheusremotewrite

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promrw"
)

// BenchmarkReceive is one 1.0 request of 2000 series (9 labels, one sample each) through the
// handler: read, snappy, validate and count, hand over.
func BenchmarkReceive(b *testing.B) {
	var body []byte
	var enc promrw.SeriesEncoder
	for i := range 2000 {
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
	compressed := promrw.Encode(nil, body)
	r := newTestReceiver(b, nil, consumerFunc(func(context.Context, *batch.Batch) error { return nil }))
	h := r.cfg.HTTP.NewServer(r).Handler
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(compressed))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)*2000/time.Since(start).Seconds(), "samples/s")
}
