package otlp

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/testdata"
)

// BenchmarkGRPCReceive measures spans per second through OTLP/gRPC into a consumer that discards,
// with 1000-span requests from parallel callers on one connection. The client sends pre-encoded
// bytes, so the numbers are the transport's and the receiver's, not the client's encoding
// (compressing is: the client's share of the time is in the figures with gzip and zstd).
func BenchmarkGRPCReceive(b *testing.B) {
	for _, comp := range []string{"none", "gzip", "zstd"} {
		b.Run(comp, func(b *testing.B) { benchGRPCReceive(b, comp) })
	}
}

func benchGRPCReceive(b *testing.B, comp string) {
	const spans = 1000
	cfg := testConfig()
	cfg.Protocols.HTTP = nil
	r := start(b, cfg, map[batch.Signal]component.Consumer{batch.Traces: component.Discard})
	conn := dial(b, r.GRPCAddr())
	body, err := ptraceotlp.NewExportRequestFromTraces(testdata.Traces(10, spans/10, 0)).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := &otlpgrpc.Raw{Bytes: body}, &otlpgrpc.Raw{}
		opts := []grpc.CallOption{grpc.ForceCodecV2(otlpgrpc.Codec{})}
		if comp != "none" {
			opts = append(opts, grpc.UseCompressor(comp))
		}
		for pb.Next() {
			if err := conn.Invoke(context.Background(), otlpgrpc.TracesMethod, req, resp, opts...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*spans/time.Since(start).Seconds(), "spans/s")
}
