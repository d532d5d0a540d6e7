package store

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/promrw"
)

// BenchmarkAppendRW: a remote-write body of 2000 series (9 labels, one sample each) into the
// store, a fifth of them selected (10 of 50 metric names), as bench/cmd/rwbench -alerting sends.
func BenchmarkAppendRW(b *testing.B) {
	sel := &Selection{}
	for i := range 10 {
		if err := sel.AddSelector(fmt.Sprintf("bench_metric_%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	cfg := NewConfig()
	cfg.Path = b.TempDir()
	st, err := Open(cfg, sel, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	body := func(ts int64) []byte {
		var out []byte
		var enc promrw.SeriesEncoder
		for i := range 2000 {
			enc.Reset()
			enc.Label("__name__", fmt.Sprintf("bench_metric_%d", i%50))
			enc.Label("instance", fmt.Sprintf("host-%d:9100", i%100))
			enc.Label("job", "bench")
			for l := range 6 {
				enc.Label(fmt.Sprintf("label_%d", l), fmt.Sprintf("value-%d-%d", i, l))
			}
			enc.Sample(float64(i), ts)
			out = enc.AppendTo(out)
		}
		return out
	}
	ts := time.Now().UnixMilli()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(ts + int64(i)*1000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		app, err := st.AppendRW(context.Background(), bodies[i])
		if err != nil || app.Appended != 400 {
			b.Fatalf("%v: appended %d, want 400", err, app.Appended)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/400, "ns/stored-sample")
}
