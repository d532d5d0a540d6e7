package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// BenchmarkScrape100k scrapes a target exposing 100k series in the text format (a pre-rendered
// body, so the target costs little) through the receiver into a consumer that discards. The
// scrape interval is far below the time a scrape takes, so the loop scrapes back to back and one
// op is one scrape: parse, relabel, the scrape cache, remote-write encoding, commit.
func BenchmarkScrape100k(b *testing.B) {
	const series = 100_000
	var sb strings.Builder
	sb.WriteString("# HELP bench_requests_total Requests served.\n# TYPE bench_requests_total counter\n")
	for i := range series {
		fmt.Fprintf(&sb, "bench_requests_total{namespace=\"ns-%d\",pod=\"pod-%d\",container=\"app\",code=\"200\"} %d\n", i%50, i, i)
	}
	body := []byte(sb.String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	var scrapes atomic.Int64
	next := component.ConsumerFunc(func(_ context.Context, bt *batch.Batch) error {
		if bt.Items() >= series {
			scrapes.Add(1)
		}
		return nil
	})
	cfg := NewConfig()
	if err := decodeInto(fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: bench
      scrape_interval: 50ms
      static_configs: [{targets: ["%s"]}]
`, strings.TrimPrefix(srv.URL, "http://")), cfg); err != nil {
		b.Fatal(err)
	}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	r, err := newReceiver(set, cfg, map[batch.Signal]component.Consumer{batch.Metrics: next})
	if err != nil {
		b.Fatal(err)
	}
	r.opts = options{discoveryReload: 10 * time.Millisecond, discoveryUpdate: 10 * time.Millisecond}
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := r.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	// The first scrape fills the scrape cache (every series is new); the steady state is what
	// a long-running agent sees.
	waitScrapes(b, &scrapes, 2)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	start, from := time.Now(), scrapes.Load()
	waitScrapes(b, &scrapes, from+int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(series*b.N)/time.Since(start).Seconds(), "series/s")
}

func waitScrapes(b *testing.B, n *atomic.Int64, want int64) {
	deadline := time.Now().Add(time.Duration(want+10) * 10 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%d scrapes after the deadline, want %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
