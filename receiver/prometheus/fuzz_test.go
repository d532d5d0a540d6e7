package prometheus

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/promconv"
	"github.com/vigilhq/vigil/internal/promrw"

	"github.com/vigilhq/vigil/internal/componenttest"
)

// FuzzConfig feeds arbitrary YAML to the config decoder, which hands the config block to the
// upstream loader: whatever the input, it must return an error or a config, never panic.
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		"config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]}",
		"config:\n  global: {scrape_interval: 1s}\n  scrape_configs:\n    - job_name: a\n      relabel_configs: [{regex: '(', action: replace}]\n",
		"config:\n  scrape_configs:\n    - &a {job_name: a}\n    - *a\n",
		"config: {alerting: {}, remote_write: [{url: 'http://x'}]}",
		"config: {scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod}]}]}",
		"config: [1, 2]",
		"config: !!binary aGVsbG8=",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := NewConfig()
		if err := componenttest.DecodeConfig(data, cfg); err == nil && cfg.PrometheusConfig.Config == nil {
			t.Fatalf("valid config without a Prometheus config: %q", data)
		}
	})
}

// FuzzExposition feeds arbitrary scrape bodies, as text, OpenMetrics and protobuf, to the
// upstream parser the scrape loop uses and hands every entry it yields to promconv's appender,
// as a scrape does: neither may panic, and whatever the appender builds must be a remote-write
// body whose framing holds and whose counts match what was appended.
func FuzzExposition(f *testing.F) {
	for _, seed := range []string{
		"# TYPE a counter\na_total{x=\"1\"} 3\n",
		"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
		"g NaN\ng2 +Inf 1700000000000\n",
		"# TYPE a counter\na_total 1 # {trace_id=\"abc\"} 1 1.5\n# EOF\n",
		"bad{",
	} {
		for _, ct := range []uint8{0, 1, 2} {
			f.Add([]byte(seed), ct)
		}
	}
	contentTypes := []string{"text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0",
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"}
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		p, err := textparse.New(body, contentTypes[int(ct)%len(contentTypes)], labels.NewSymbolTable(), textparse.ParserOptions{})
		if err != nil || p == nil {
			return
		}
		app := promconv.NewAppender(context.Background(), nil)
		appended := 0
		for i := 0; i < 10000; i++ {
			entry, err := p.Next()
			if err != nil {
				break
			}
			var ls labels.Labels
			switch entry {
			case textparse.EntrySeries:
				_, ts, v := p.Series()
				p.Labels(&ls)
				if _, err := app.Append(0, ls, 0, tsOr(ts), v, nil, nil, storage.AOptions{}); err == nil {
					appended++
				}
			case textparse.EntryHistogram:
				_, ts, h, fh := p.Histogram()
				p.Labels(&ls)
				if _, err := app.Append(0, ls, 0, tsOr(ts), 0, h, fh, storage.AOptions{}); err == nil {
					appended++
				}
			}
		}
		b := app.Take()
		sc := promrw.Scanner{Trusted: true}
		series := 0
		if err := sc.ScanV1(b.Bytes, func(promrw.SeriesV1) error { series++; return nil }); err != nil {
			t.Fatalf("the appender built a malformed body: %v", err)
		}
		if series != appended || b.Counts.Series != appended {
			t.Fatalf("%d appends, body holds %d series, counts say %d", appended, series, b.Counts.Series)
		}
	})
}

func tsOr(ts *int64) int64 {
	if ts != nil {
		return *ts
	}
	return 1_700_000_000_000
}
