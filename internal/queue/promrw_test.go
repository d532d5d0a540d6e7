package queue

import (
	"bytes"
	"context"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vigilhq/vigil/internal/batch"
)

// A remote-write batch goes to disk as its remote-write body (format 1) and comes back as one,
// across a crash, without a detour through OTLP.
func TestWALKeepsRemoteWriteBodies(t *testing.T) {
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "x"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
	}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := open(t, walOpts(t))
	if err := w.Put(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	w = reopen(t, w, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, done, ok := w.Get(ctx)
	if !ok {
		t.Fatal("nothing replayed")
	}
	defer done(true)
	rw, isRW := got.PromRW()
	if !isRW || got.IsEncoded() || !bytes.Equal(rw, raw) || got.Items() != 2 {
		t.Fatalf("replayed: remote write %v, OTLP %v, same bytes %v, items %d", isRW, got.IsEncoded(), bytes.Equal(rw, raw), got.Items())
	}
}
