package relabel

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vigilhq/vigil/internal/batch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden relabels a small remote-write body (series with samples, an exemplar, a native
// histogram, metadata) and compares the output, decoded by upstream's prompb rather than by the
// code under test, with testdata/relabelled.golden. The input is testdata/input.bin.
func TestGolden(t *testing.T) {
	in := rwBody(t,
		testSeries{labels: []string{"__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:9090", "job", "api", "tmp_id", "7"}, samples: 2, exemplar: true},
		testSeries{labels: []string{"__name__", "go_gc_duration_seconds", "instance", "10.0.0.1:9090", "job", "api"}, samples: 1},
		testSeries{labels: []string{"__name__", "request_duration_seconds", "instance", "10.0.0.2:9090", "job", "web"}, histogram: true},
		testSeries{labels: []string{"__name__", "up", "instance", "10.0.0.2:9090", "job", "web"}, samples: 1},
	)
	p, sink, _ := newTest(t, `metric_relabel_configs:
  - {source_labels: [__name__], regex: 'go_.*', action: drop}
  - {source_labels: [instance], regex: '(.*):\d+', target_label: host}
  - {regex: 'tmp_.*|instance', action: labeldrop}
  - {source_labels: [job], regex: web, target_label: job, replacement: frontend}
`)
	if err := p.Consume(context.Background(), batch.FromPromRWTrusted(in, 5)); err != nil {
		t.Fatal(err)
	}
	out, _ := received(t, sink).PromRW()
	got := dumpRW(t, out)

	inPath, goldenPath := filepath.Join("testdata", "input.bin"), filepath.Join("testdata", "relabelled.golden")
	if *update {
		if err := os.WriteFile(inPath, in, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(stored) != string(in) {
		t.Errorf("%s: the test's input encoding changed (run with -update if intended)", inPath)
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update if intended):\n got:\n%s\nwant:\n%s", goldenPath, got, want)
	}
}

// dumpRW prints a remote-write 1.0 body decoded by prompb, one line per series or metadata.
func dumpRW(t *testing.T, body []byte) string {
	t.Helper()
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		t.Fatalf("prompb cannot decode the output: %v", err)
	}
	var sb strings.Builder
	for _, ts := range req.Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		fmt.Fprintf(&sb, "series {%s}\n", strings.Join(ls, ", "))
		for _, s := range ts.Samples {
			fmt.Fprintf(&sb, "  sample %g @%d\n", s.Value, s.Timestamp)
		}
		for _, e := range ts.Exemplars {
			var el []string
			for _, l := range e.Labels {
				el = append(el, fmt.Sprintf("%s=%q", l.Name, l.Value))
			}
			fmt.Fprintf(&sb, "  exemplar {%s} %g @%d\n", strings.Join(el, ", "), e.Value, e.Timestamp)
		}
		for _, h := range ts.Histograms {
			fmt.Fprintf(&sb, "  histogram %s @%d\n", h.ToIntHistogram().String(), h.Timestamp)
		}
	}
	for _, m := range req.Metadata {
		fmt.Fprintf(&sb, "metadata %s %s help=%q unit=%q\n", m.Type, m.MetricFamilyName, m.Help, m.Unit)
	}
	return sb.String()
}
