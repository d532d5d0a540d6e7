package prometheusremotewrite

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promrw"
)

// FuzzReceiver posts arbitrary (snappy-encoded) bodies as 1.0 and 2.0 requests: every answer is
// 204 or a 4xx, and whatever the pipeline gets is a valid 1.0 body with the items it claims.
func FuzzReceiver(f *testing.F) {
	f.Add(v1Body(f, series("up", []string{"job", "a"}, prompb.Sample{Value: 1, Timestamp: 1})), false)
	f.Add(v2Body(f), true)
	f.Add([]byte{}, false)
	f.Add([]byte("\x0a\x02\x0a\x00"), true)
	f.Fuzz(func(t *testing.T, body []byte, isV2 bool) {
		var got *batch.Batch
		r := newTestReceiver(t, nil, consumerFunc(func(_ context.Context, b *batch.Batch) error {
			got = b
			return nil
		}))
		ct := "application/x-protobuf"
		if isV2 {
			ct += ";proto=io.prometheus.write.v2.Request"
		}
		w := r.do(request{contentType: ct, body: body})
		switch {
		case w.Code == http.StatusNoContent:
			if got == nil {
				t.Fatal("204 without a batch")
			}
			rw, ok := got.PromRW()
			if !ok {
				t.Fatal("batch without a remote-write body")
			}
			samples, hists, _, err := promrw.CountV1(rw)
			if err != nil {
				t.Fatalf("the pipeline got an invalid body: %v", err)
			}
			if samples+hists != got.Items() {
				t.Fatalf("batch claims %d items, body holds %d", got.Items(), samples+hists)
			}
		case w.Code >= 400 && w.Code < 500:
			if got != nil {
				t.Fatal("refused request reached the pipeline")
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
