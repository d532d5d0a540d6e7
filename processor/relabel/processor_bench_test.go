package relabel

import (
	"context"
	"fmt"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
)

// podSeries builds n series shaped like a Kubernetes scrape (7 labels, one sample each).
func podSeries(b *testing.B, n int) []byte {
	b.Helper()
	var enc promrw.SeriesEncoder
	var body []byte
	for i := range n {
		enc.Label("__name__", fmt.Sprintf("container_metric_%d", i%50))
		enc.Label("container", "app")
		enc.Label("instance", fmt.Sprintf("10.0.%d.%d:9100", i/250%250, i%250))
		enc.Label("job", "kubernetes-pods")
		enc.Label("namespace", fmt.Sprintf("ns-%d", i%20))
		enc.Label("pod", fmt.Sprintf("app-%d-7d9f8b6c5-x2k4p", i/50))
		enc.Label("tmp_hash", fmt.Sprintf("%x", i*7919))
		enc.Sample(float64(i), 1_700_000_000_000)
		body = enc.AppendTo(body)
	}
	return body
}

// BenchmarkRemoteWrite relabels a 10k-series body. Cases: rules that match nothing (the batch
// goes on as is), drop 2% of series by name, and a labeldrop that rewrites every series.
func BenchmarkRemoteWrite(b *testing.B) {
	const n = 10_000
	body := podSeries(b, n)
	cases := []struct{ name, rules string }{
		{"unchanged", "- {source_labels: [__name__], regex: 'go_.*', action: drop}"},
		{"drop2pct", "- {source_labels: [__name__], regex: 'container_metric_(1|2)', action: drop}"},
		{"rewrite_all", "- {regex: 'tmp_.*', action: labeldrop}"},
		{"typical", "- {source_labels: [__name__], regex: 'container_metric_(1|2)', action: drop}\n" +
			"- {source_labels: [namespace], regex: 'ns-1', target_label: team, replacement: payments}\n" +
			"- {regex: 'tmp_.*', action: labeldrop}"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, _, _ := newTest(b, "metric_relabel_configs:\n"+indent(c.rules))
			// Measure the processor alone: replace the sink by a consumer that drops the batch.
			proc := p.(*processor)
			proc.next = component.Discard
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := proc.Consume(context.Background(), batch.FromPromRWTrusted(body, n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
	}
}
