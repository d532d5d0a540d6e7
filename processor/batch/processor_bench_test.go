package batchprocessor

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/testdata"
)

const (
	benchRequests = 8
	benchSpans    = 1000
)

// benchRun sends benchRequests requests of benchSpans spans per iteration through a processor
// that sends at 8000 items, into a consumer that asks for the encoded form as an OTLP exporter
// would. wrap turns received request bytes into a batch, as a receiver does.
func benchRun(b *testing.B, wrap func(raw []byte) *batch.Batch) {
	reqs := make([][]byte, benchRequests)
	size := 0
	for i := range reqs {
		raw, err := batch.FromTraces(testdata.Traces(10, benchSpans/10, i*benchSpans)).Encoded()
		if err != nil {
			b.Fatal(err)
		}
		reqs[i], size = raw, size+len(raw)
	}
	sent := 0
	exporter := component.ConsumerFunc(func(_ context.Context, out *batch.Batch) error {
		sent += out.Items()
		_, err := out.Encoded()
		return err
	})
	cfg := &Config{SendBatchSize: benchRequests * benchSpans, Timeout: time.Hour}
	p := newProcessor(component.NopSettings(component.KindProcessor, component.ID{Type: Type}), cfg, batch.Traces, exporter)
	ctx := context.Background()
	if err := p.Start(ctx, component.NopHost{}); err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(ctx)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, raw := range reqs {
			if err := p.Consume(ctx, wrap(raw)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if sent != b.N*benchRequests*benchSpans {
		b.Fatalf("sent %d spans, want %d", sent, b.N*benchRequests*benchSpans)
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkBatchEncoded is the relay path: requests stay bytes from receiver to exporter.
func BenchmarkBatchEncoded(b *testing.B) {
	benchRun(b, func(raw []byte) *batch.Batch {
		out, err := batch.FromEncoded(batch.Traces, raw)
		if err != nil {
			b.Fatal(err)
		}
		return out
	})
}

// BenchmarkBatchDecoded is the same flow the way decode-everything agents run it: decode on
// receipt, merge pdata, encode to send.
func BenchmarkBatchDecoded(b *testing.B) {
	benchRun(b, func(raw []byte) *batch.Batch {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
		if err != nil {
			b.Fatal(err)
		}
		return batch.FromTraces(td)
	})
}
