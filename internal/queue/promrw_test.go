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

// A remote-write body Vigil built itself comes back from disk as it went in, with its item
// count, even where it does not follow the classic rules a client's body is checked against:
// the relabel processor (UTF-8 label names, Prometheus 3's default) and the scrape receiver
// produce such series, and nothing wrong with the bytes justifies losing them.
func TestWALKeepsTrustedRemoteWriteBodies(t *testing.T) {
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "http.server.duration"}, {Name: "service.name", Value: "x"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
	}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w := open(t, walOpts(t))
	if err := w.Put(context.Background(), batch.FromPromRWTrusted(raw, 1)); err != nil {
		t.Fatal(err)
	}
	w = reopen(t, w, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, done, ok := w.Get(ctx)
	if !ok {
		t.Fatalf("nothing replayed (corruptions: %d)", w.Stats().Corruptions)
	}
	defer done(true)
	rw, isRW := got.PromRW()
	if !isRW || !bytes.Equal(rw, raw) || got.Items() != 1 {
		t.Fatalf("replayed: remote write %v, same bytes %v, items %d", isRW, bytes.Equal(rw, raw), got.Items())
	}
}

// A remote-write batch that also has its OTLP form (someone called Encoded) is still kept as
// remote write: its items are counted in samples, and read back as OTLP it would change count
// (a classic histogram's bucket series are one data point) and form.
func TestWALPrefersRemoteWriteForm(t *testing.T) {
	raw, err := (&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_bucket"}, {Name: "le", Value: "1"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_bucket"}, {Name: "le", Value: "+Inf"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_count"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h_sum"}}, Samples: []prompb.Sample{{Value: 3, Timestamp: 1}}},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "h"}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Encoded(); err != nil {
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
	if rw, isRW := got.PromRW(); !isRW || !bytes.Equal(rw, raw) || got.Items() != 4 {
		t.Fatalf("replayed: remote write %v, same bytes %v, items %d, want 4", isRW, bytes.Equal(rw, raw), got.Items())
	}
}
