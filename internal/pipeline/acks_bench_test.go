package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/testdata"
)

// BenchmarkAcknowledgements is a request's cost through receiver edge → ring → batch processor
// → exporter, with the client's answer waiting for its acknowledgement (durable, end_to_end
// with the exporter releasing at once) or not (none), and without a batch processor (nothing
// holds: the acknowledgement is free but for the handle). 16 clients send 100-span requests;
// the batch processor sends every 4 requests (idle_timeout 0s, so that every mode batches alike
// and the difference is the handles).
//
//	go test -run '^$' -bench Acknowledgements -benchmem ./internal/pipeline
func BenchmarkAcknowledgements(b *testing.B) {
	raw, err := batch.FromTraces(testdata.Traces(1, 100, 0)).Encoded()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, processors, acks string }{
		{"batch/durable", "[batch]", "durable"},
		{"batch/end_to_end", "[batch]", "end_to_end"},
		{"batch/none", "[batch]", "none"},
		{"no_processor/durable", "[]", "durable"},
		{"no_processor/none", "[]", "none"},
	} {
		b.Run(c.name, func(b *testing.B) {
			w, stop := startAcksB(b, fmt.Sprintf(`
receivers: {src: {}}
processors: {batch: {send_batch_size: 400, timeout: 10ms, idle_timeout: 0s}}
exporters: {queue: {}}
service: {pipelines: {traces: {receivers: [src], processors: %s, exporters: [queue], acknowledgements: %s}}}
`, c.processors, c.acks))
			defer stop()
			q := w.exporters["queue"]
			q.autoDeliver = true
			next := w.receivers["src"][batch.Traces]
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					in, err := batch.FromEncoded(batch.Traces, raw)
					if err != nil {
						b.Fatal(err)
					}
					if err := next.Consume(context.Background(), in); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
