package batchprocessor

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

// rwMetrics is a remote-write batch of n one-sample series named prefix0…, with metadata.
func rwMetrics(t *testing.T, prefix string, n int) *batch.Batch {
	t.Helper()
	req := prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: prefix + "0"}}}
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: fmt.Sprintf("%s%d", prefix, i)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromPromRW(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pdataMetrics(n int) *batch.Batch {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for i := range n {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprint("p", i))
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(i))
	}
	return batch.FromMetrics(md)
}

// Remote-write batches are joined with each other only, by bytes, and split the same way: none
// is converted, every series arrives once and in order, and the item counts add up.
func TestRemoteWriteBatchesStayRemoteWrite(t *testing.T) {
	sink := &componenttest.Sink{}
	p, err := NewFactory().Create(settings(), &Config{SendBatchSize: 1000, SendBatchMaxSize: 4}, batch.Metrics, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	in := []*batch.Batch{rwMetrics(t, "a", 3), pdataMetrics(2), rwMetrics(t, "b", 3)}
	total := 0
	for _, b := range in {
		total += b.Items()
		if err := p.Consume(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var names []string
	got := 0
	for _, b := range sink.Batches() {
		got += b.Items()
		if b.Items() > 4 {
			t.Errorf("a batch of %d items, over send_batch_max_size 4", b.Items())
		}
		rw, ok := b.PromRW()
		if !ok {
			if b.IsDecoded() && b.Form() == batch.FormPData {
				continue
			}
			t.Fatalf("a batch of form %d left the processor", b.Form())
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(rw); err != nil {
			t.Fatal(err)
		}
		if len(req.Metadata) == 0 {
			t.Errorf("a remote-write part without its metadata")
		}
		for _, ts := range req.Timeseries {
			names = append(names, ts.Labels[0].Value)
		}
	}
	if want := []string{"a0", "a1", "a2", "b0", "b1", "b2"}; !slices.Equal(names, want) || got != total {
		t.Errorf("series %v, items %d; want %v, %d", names, got, want, total)
	}
}
