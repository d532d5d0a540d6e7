package otlp

import (
	"context"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/testdata"
)

// BenchmarkExportGRPC measures the relay path: 1000-span encoded batches sent over loopback to an
// in-process sink that, like the exporter, uses the raw codec, so neither side decodes. The
// exporter runs without a queue, from GOMAXPROCS goroutines, as its queue consumers would.
// Time and allocations include the sink's side (it copies each request out of gRPC's buffers).
func BenchmarkExportGRPC(b *testing.B) {
	const spans = 1000
	wire, err := batch.FromTraces(testdata.Traces(10, spans/10, 0)).Encoded()
	if err != nil {
		b.Fatal(err)
	}
	for _, comp := range []client.Compression{client.None, client.Gzip, client.Zstd} {
		b.Run(string(comp), func(b *testing.B) {
			sink := &rawSink{}
			addr := startRawSink(b, sink)
			cfg := testConfig(addr)
			cfg.Client.Compression = comp
			exp := startExporter(b, component.NopSettings(component.KindExporter, component.ID{Type: Type}), cfg)
			// The exporter only reads an encoded batch, so one batch can be shared by every
			// iteration; building one per iteration would measure the receiver's scan instead.
			in, err := batch.FromEncoded(batch.Traces, wire)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := exp.Consume(ctx, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*spans/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// BenchmarkConcatAndExport is the tail of a relay: eight 1000-span requests joined by the batch
// processor's Concat and sent with zstd. "pieces" sends them as Concat leaves them (unjoined);
// "joined" first makes them one slice, as Vigil did before pieces, to show what that copy cost.
func BenchmarkConcatAndExport(b *testing.B) {
	const spans, requests = 1000, 8
	var parts []*batch.Batch
	for i := range requests {
		wire, err := batch.FromTraces(testdata.Traces(10, spans/10, i*spans)).Encoded()
		if err != nil {
			b.Fatal(err)
		}
		p, err := batch.FromEncoded(batch.Traces, wire)
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, p)
	}
	for _, mode := range []string{"pieces", "joined"} {
		b.Run(mode, func(b *testing.B) {
			sink := &rawSink{}
			cfg := testConfig(startRawSink(b, sink))
			cfg.Client.Compression = client.Zstd
			exp := startExporter(b, component.NopSettings(component.KindExporter, component.ID{Type: Type}), cfg)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				in := make([]*batch.Batch, len(parts))
				for i, p := range parts {
					in[i] = p.Share()
				}
				out, err := batch.Concat(in)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "joined" {
					if _, err := out.Encoded(); err != nil {
						b.Fatal(err)
					}
				}
				if err := exp.Consume(ctx, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*spans*requests/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
