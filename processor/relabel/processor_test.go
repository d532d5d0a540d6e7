package relabel

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promrw"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckProcessor(t, NewFactory(), nil)
	cfg, err := load(t, "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	componenttest.CheckProcessor(t, NewFactory(), cfg)
}

// The series every remote-write case starts from, with their label sets as labels.String
// prints them.
var (
	seriesIn = []testSeries{
		{labels: []string{"__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:9090", "job", "api"}, samples: 2},
		{labels: []string{"__name__", "go_gc_duration_seconds", "instance", "10.0.0.1:9090", "job", "api"}, samples: 1},
		{labels: []string{"__name__", "up", "instance", "10.0.0.2:9187", "job", "db"}, samples: 1},
		{labels: []string{"__name__", "pair", "a", "1", "b", "1"}, samples: 1},
		{labels: []string{"__name__", "pair", "a", "1", "b", "2"}, samples: 1, histogram: true},
	}
	seriesItems = 7 // samples + histogram samples

	sA = `{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api"}`
	sB = `{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api"}`
	sC = `{__name__="up", instance="10.0.0.2:9187", job="db"}`
	sD = `{__name__="pair", a="1", b="1"}`
	sE = `{__name__="pair", a="1", b="2"}`
)

// hashmod computes Prometheus's hashmod (the last 8 bytes of the MD5, big-endian, modulo m)
// independently of the code under test.
func hashmod(s string, m uint64) string {
	sum := md5.Sum([]byte(s))
	return strconv.FormatUint(binary.BigEndian.Uint64(sum[8:])%m, 10)
}

// TestRemoteWrite runs each action on a remote-write body and checks the exact label sets out,
// the item count and the drop counter.
func TestRemoteWrite(t *testing.T) {
	in := []string{sA, sB, sC, sD, sE}
	f := func(rules string, want ...string) {
		t.Helper()
		p, sink, counters := newTest(t, "metric_relabel_configs:\n"+indent(rules))
		body := rwBody(t, seriesIn...)
		b, err := batch.FromPromRW(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Consume(context.Background(), b); err != nil {
			t.Fatalf("%s: %v", rules, err)
		}
		got := received(t, sink)
		if len(want) == 0 {
			if got != nil {
				t.Errorf("%s: a batch with every series dropped was passed on", rules)
			}
			if d := counters.Get(component.Dropped); d != seriesItems {
				t.Errorf("%s: dropped %d, want %d", rules, d, seriesItems)
			}
			return
		}
		if got == nil {
			t.Fatalf("%s: nothing passed on", rules)
		}
		out, ok := got.PromRW()
		if !ok {
			t.Fatalf("%s: the output is not remote write any more", rules)
		}
		if labels := rwLabels(t, out); !slices.Equal(labels, want) {
			t.Errorf("%s:\n got %s\nwant %s", rules, strings.Join(labels, "\n     "), strings.Join(want, "\n     "))
		}
		samples, hists, _, err := promrw.CountV1(out)
		if err != nil || got.Items() != samples+hists {
			t.Errorf("%s: batch says %d items, body has %d+%d (%v)", rules, got.Items(), samples, hists, err)
		}
		if d := counters.Get(component.Dropped); d != seriesItems-got.Items() {
			t.Errorf("%s: dropped counter %d, want %d", rules, d, seriesItems-got.Items())
		}
		if slices.Equal(want, in) != (got == b) {
			t.Errorf("%s: unchanged=%v but same batch passed on=%v: the fast path is broken", rules, slices.Equal(want, in), got == b)
		}
		if got == b {
			return
		}
		// Metadata passes through: both entries are still there.
		if n := countMetadata(t, out); n != 2 {
			t.Errorf("%s: %d metadata entries out, want 2", rules, n)
		}
	}

	// Nothing matches a drop, everything matches a keep: the same batch goes on.
	f("- {source_labels: [__name__], regex: nope, action: drop}", in...)
	f("- {source_labels: [__name__], regex: .+, action: keep}", in...)
	// Regexes are anchored: "go" does not match go_gc_duration_seconds.
	f("- {source_labels: [__name__], regex: go, action: drop}", in...)
	f("- {source_labels: [__name__], regex: go_.*, action: drop}", sA, sC, sD, sE)
	f("- {source_labels: [job], regex: api, action: keep}", sA, sB)
	// Several source labels joined with the separator.
	f("- {source_labels: [job, code], separator: '@', regex: 'api@200', action: drop}", sB, sC, sD, sE)
	// keepequal/dropequal compare values; a missing label is "", so series without a and b are
	// equal, as in Prometheus.
	f("- {source_labels: [a], target_label: b, action: keepequal}", sA, sB, sC, sD)
	f("- {source_labels: [a], target_label: b, action: dropequal}", sE)
	// Replace with the defaults (regex (.*), replacement $1) copies a label.
	f("- {source_labels: [job], target_label: service}",
		`{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api", service="api"}`,
		`{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api", service="api"}`,
		`{__name__="up", instance="10.0.0.2:9187", job="db", service="db"}`, sD, sE)
	// Replace with a capture; no match, no change.
	f(`- {source_labels: [instance], regex: '(.*):9090', target_label: host}`,
		`{__name__="http_requests_total", code="200", host="10.0.0.1", instance="10.0.0.1:9090", job="api"}`,
		`{__name__="go_gc_duration_seconds", host="10.0.0.1", instance="10.0.0.1:9090", job="api"}`, sC, sD, sE)
	// An empty replacement deletes the target label.
	f(`- {source_labels: [code], regex: '200', target_label: code, replacement: ''}`,
		`{__name__="http_requests_total", instance="10.0.0.1:9090", job="api"}`, sB, sC, sD, sE)
	// Renaming a series.
	f(`- {source_labels: [__name__], regex: 'up', target_label: __name__, replacement: target_up}`,
		sA, sB, `{__name__="target_up", instance="10.0.0.2:9187", job="db"}`, sD, sE)
	f("- {source_labels: [instance], target_label: shard, modulus: 4, action: hashmod}",
		`{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api", shard="`+hashmod("10.0.0.1:9090", 4)+`"}`,
		`{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api", shard="`+hashmod("10.0.0.1:9090", 4)+`"}`,
		`{__name__="up", instance="10.0.0.2:9187", job="db", shard="`+hashmod("10.0.0.2:9187", 4)+`"}`,
		`{__name__="pair", a="1", b="1", shard="`+hashmod("", 4)+`"}`,
		`{__name__="pair", a="1", b="2", shard="`+hashmod("", 4)+`"}`)
	f("- {regex: '(job|code)', replacement: 'orig_$1', action: labelmap}",
		`{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api", orig_code="200", orig_job="api"}`,
		`{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api", orig_job="api"}`,
		`{__name__="up", instance="10.0.0.2:9187", job="db", orig_job="db"}`, sD, sE)
	f("- {regex: 'instance|code', action: labeldrop}",
		`{__name__="http_requests_total", job="api"}`, `{__name__="go_gc_duration_seconds", job="api"}`,
		`{__name__="up", job="db"}`, sD, sE)
	f("- {regex: '__name__|job', action: labelkeep}",
		`{__name__="http_requests_total", job="api"}`, `{__name__="go_gc_duration_seconds", job="api"}`,
		`{__name__="up", job="db"}`, `{__name__="pair"}`, `{__name__="pair"}`)
	f("- {source_labels: [job], target_label: team, action: uppercase}",
		`{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api", team="API"}`,
		`{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api", team="API"}`,
		`{__name__="up", instance="10.0.0.2:9187", job="db", team="DB"}`,
		sD, sE) // uppercase of a missing label is "", which deletes the target
	f("- {source_labels: [__name__], target_label: __name__, action: uppercase}\n- {source_labels: [__name__], target_label: lower, action: lowercase}",
		`{__name__="HTTP_REQUESTS_TOTAL", code="200", instance="10.0.0.1:9090", job="api", lower="http_requests_total"}`,
		`{__name__="GO_GC_DURATION_SECONDS", instance="10.0.0.1:9090", job="api", lower="go_gc_duration_seconds"}`,
		`{__name__="UP", instance="10.0.0.2:9187", job="db", lower="up"}`,
		`{__name__="PAIR", a="1", b="1", lower="pair"}`, `{__name__="PAIR", a="1", b="2", lower="pair"}`)
	// Rules run in order: the second sees what the first wrote.
	f("- {source_labels: [job], target_label: tier, replacement: backend}\n- {source_labels: [tier, job], regex: 'backend;db', action: drop}",
		`{__name__="http_requests_total", code="200", instance="10.0.0.1:9090", job="api", tier="backend"}`,
		`{__name__="go_gc_duration_seconds", instance="10.0.0.1:9090", job="api", tier="backend"}`,
		`{__name__="pair", a="1", b="1", tier="backend"}`, `{__name__="pair", a="1", b="2", tier="backend"}`)
	// A series that loses its name, or every label, is dropped, as Prometheus does.
	f("- {regex: __name__, action: labeldrop}")
	f("- {regex: 'job', action: labelkeep}")
	f("- {source_labels: [job], regex: '.*', action: drop}")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func countMetadata(t *testing.T, body []byte) int {
	t.Helper()
	n := 0
	for b := body; len(b) > 0; {
		num, _, l := protowire.ConsumeField(b)
		if l < 0 {
			t.Fatal("bad framing")
		}
		if num == 3 {
			n++
		}
		b = b[l:]
	}
	return n
}

// TestRemoteWriteBytes checks that a changed series keeps its samples, exemplars and histograms
// byte for byte and that unchanged series are the input's bytes.
func TestRemoteWriteBytes(t *testing.T) {
	series := []testSeries{
		{labels: []string{"__name__", "a", "job", "x"}, samples: 3, exemplar: true},
		{labels: []string{"__name__", "b", "job", "y"}, samples: 1, histogram: true, exemplar: true},
		{labels: []string{"__name__", "c", "job", "x"}, histogram: true},
	}
	body := rwBody(t, series...)
	p, sink, _ := newTest(t, "metric_relabel_configs: [{source_labels: [job], regex: x, target_label: job, replacement: z}]")
	in := batch.FromPromRWTrusted(body, 6)
	h := ack.New()
	in.SetAcks(h.Set())
	if err := p.Consume(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := received(t, sink)
	if acks := got.Acks(); len(acks) != 1 || acks[0] != h {
		t.Errorf("the rewritten batch carries %v, want the input's handle", acks)
	}
	out, _ := got.PromRW()
	var before, after []promrw.SeriesV1
	collect := func(b []byte, dst *[]promrw.SeriesV1) {
		if err := promrw.ScanV1(b, func(s promrw.SeriesV1) error { *dst = append(*dst, s); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	collect(body, &before)
	collect(out, &after)
	if len(after) != 3 {
		t.Fatalf("%d series out, want 3", len(after))
	}
	for i := range before {
		if nonLabelFields(before[i].Raw) != nonLabelFields(after[i].Raw) {
			t.Errorf("series %d: samples/exemplars/histograms changed", i)
		}
		if after[i].Samples != before[i].Samples || after[i].Histograms != before[i].Histograms || after[i].Exemplars != before[i].Exemplars {
			t.Errorf("series %d: counts changed", i)
		}
	}
	if string(before[1].Raw) != string(after[1].Raw) {
		t.Error("the unchanged series is not its input bytes")
	}
	if got := rwLabels(t, out); got[0] != `{__name__="a", job="z"}` || got[2] != `{__name__="c", job="z"}` {
		t.Errorf("labels %v", got)
	}
}

func nonLabelFields(raw []byte) string {
	var s []byte
	for b := raw; len(b) > 0; {
		num, _, n := protowire.ConsumeField(b)
		if num != 1 {
			s = append(s, b[:n]...)
		}
		b = b[n:]
	}
	return string(s)
}

// TestMalformedBody checks that a body whose framing is broken is refused as permanent, not
// passed on and not a panic.
func TestMalformedBody(t *testing.T) {
	p, sink, _ := newTest(t, "metric_relabel_configs: [{regex: x, action: labeldrop}]")
	body := rwBody(t, seriesIn...)
	err := p.Consume(context.Background(), batch.FromPromRWTrusted(body[:len(body)-3], 7))
	if err == nil || !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "relabel") {
		t.Errorf("truncated body: err = %v, want a permanent error naming the processor", err)
	}
	if sink.Items() != 0 {
		t.Error("a malformed body was passed on")
	}
}

// TestMalformedLabels checks that a trusted body with a broken label inside one series drops
// that series and keeps the others.
func TestMalformedLabels(t *testing.T) {
	var enc promrw.SeriesEncoder
	enc.Label("__name__", "good")
	enc.Sample(1, 1)
	body := enc.AppendTo(nil)
	// A series whose label field holds a truncated Label message: framing of the series is
	// fine (the scanner walks it), the label inside is not.
	bad := []byte{0x0a, 0x03, 0x0a, 0x05, 'x'}
	bad = append(bad, 0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01)
	body = promrw.AppendSeriesV1(body, bad)
	p, sink, counters := newTest(t, "metric_relabel_configs: [{source_labels: [__name__], target_label: x}]")
	if err := p.Consume(context.Background(), batch.FromPromRWTrusted(body, 2)); err != nil {
		t.Fatal(err)
	}
	b := received(t, sink)
	out, _ := b.PromRW()
	if got := rwLabels(t, out); len(got) != 1 || got[0] != `{__name__="good", x="good"}` {
		t.Errorf("out %v", got)
	}
	if counters.Get(component.Dropped) != 1 || b.Items() != 1 {
		t.Errorf("dropped %d, items %d; want 1 and 1", counters.Get(component.Dropped), b.Items())
	}
}

// TestOTLP runs the actions on OTLP data points: labels are the point's attributes plus
// __name__; resource attributes are invisible.
func TestOTLP(t *testing.T) {
	in := []testPoint{
		{metric: "http.server.requests", attrs: map[string]any{"http.route": "/cart", "status": int64(200), "instance": "10.0.0.1:9090"}, typ: pmetric.MetricTypeSum},
		{metric: "http.server.requests", attrs: map[string]any{"http.route": "/pay", "status": int64(500), "instance": "10.0.0.1:9090"}, typ: pmetric.MetricTypeSum},
		{metric: "queue.depth", attrs: map[string]any{"queue": "orders", "empty": ""}},
		{metric: "latency", attrs: map[string]any{"http.route": "/cart"}, typ: pmetric.MetricTypeHistogram},
	}
	pA := `http.server.requests{http.route="/cart", instance="10.0.0.1:9090", status=200}`
	pB := `http.server.requests{http.route="/pay", instance="10.0.0.1:9090", status=500}`
	pC := `queue.depth{empty="", queue="orders"}`
	pD := `latency{http.route="/cart"}`
	all := []string{pA, pB, pC, pD}
	f := func(rules string, encoded bool, want ...string) {
		t.Helper()
		p, sink, counters := newTest(t, "metric_relabel_configs:\n"+indent(rules))
		md := otlpMetrics(in...)
		var b *batch.Batch
		if encoded {
			raw, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
			if err != nil {
				t.Fatal(err)
			}
			if b, err = batch.FromEncoded(batch.Metrics, raw); err != nil {
				t.Fatal(err)
			}
		} else {
			b = batch.FromMetrics(md)
		}
		if err := p.Consume(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		got := received(t, sink)
		if len(want) == 0 {
			if got != nil {
				t.Errorf("%s: a batch with every point dropped was passed on", rules)
			}
			return
		}
		if got == nil {
			t.Fatalf("%s: nothing passed on", rules)
		}
		out, err := got.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if pts := otlpPoints(out); !slices.Equal(pts, want) {
			t.Errorf("%s:\n got %s\nwant %s", rules, strings.Join(pts, "\n     "), strings.Join(want, "\n     "))
		}
		if got.Items() != out.DataPointCount() {
			t.Errorf("%s: batch says %d items, holds %d", rules, got.Items(), out.DataPointCount())
		}
		if d := counters.Get(component.Dropped); d != len(in)-got.Items() {
			t.Errorf("%s: dropped counter %d, want %d", rules, d, len(in)-got.Items())
		}
		if encoded && slices.Equal(want, all) && !got.IsEncoded() {
			t.Errorf("%s: nothing changed but the encoded form was dropped", rules)
		}
	}
	for _, encoded := range []bool{false, true} {
		f("- {source_labels: [__name__], regex: nope, action: drop}", encoded, all...)
		// Resource attributes are not labels.
		f("- {source_labels: [service.name], regex: checkout, action: drop}", encoded, all...)
		// Non-string attributes are seen as strings.
		f("- {source_labels: [status], regex: '5..', action: drop}", encoded, pA, pC, pD)
		f("- {source_labels: [__name__], regex: 'http\\..*', action: keep}", encoded, pA, pB)
		// Empty attributes are absent to the rules (keep needs a non-empty match) and untouched.
		f("- {source_labels: [empty], regex: '.+', action: keep}", encoded)
		f("- {source_labels: [instance], regex: '(.*):\\d+', target_label: host}", encoded,
			`http.server.requests{host="10.0.0.1", http.route="/cart", instance="10.0.0.1:9090", status=200}`,
			`http.server.requests{host="10.0.0.1", http.route="/pay", instance="10.0.0.1:9090", status=500}`, pC, pD)
		// A rewritten attribute becomes a string; untouched ones keep their type.
		f("- {source_labels: [status], regex: '(5)..', target_label: status, replacement: '${1}xx'}", encoded,
			pA, `http.server.requests{http.route="/pay", instance="10.0.0.1:9090", status="5xx"}`, pC, pD)
		f("- {regex: 'instance|status', action: labeldrop}", encoded,
			`http.server.requests{http.route="/cart"}`, `http.server.requests{http.route="/pay"}`, pC, pD)
		f("- {regex: '__name__|queue', action: labelkeep}", encoded,
			`http.server.requests{}`, `http.server.requests{}`, pC, `latency{}`)
		f("- {regex: 'http\\.(.*)', replacement: 'h_$1', action: labelmap}", encoded,
			`http.server.requests{h_route="/cart", http.route="/cart", instance="10.0.0.1:9090", status=200}`,
			`http.server.requests{h_route="/pay", http.route="/pay", instance="10.0.0.1:9090", status=500}`, pC,
			`latency{h_route="/cart", http.route="/cart"}`)
		f("- {source_labels: [queue], target_label: queue, action: uppercase}", encoded,
			pA, pB, `queue.depth{empty="", queue="ORDERS"}`, pD)
		// Losing __name__ drops the point.
		f("- {regex: __name__, action: labeldrop}", encoded)
		// A rename moves the point: to a new metric of the same type (after the others) ...
		f("- {source_labels: [__name__, status], regex: 'http.server.requests;5..', target_label: __name__, replacement: http.server.errors}", encoded,
			pA, pC, pD, `http.server.errors{http.route="/pay", instance="10.0.0.1:9090", status=500}`)
		// ... and a point renamed onto a metric of another type is dropped ...
		f("- {source_labels: [http.route], regex: '/pay', target_label: __name__, replacement: latency}", encoded,
			pA, pC, pD)
		// ... also when that metric is itself created by a rename: the first one staged wins
		// (here the sum, whose metric comes first in the scope).
		f("- {source_labels: [__name__], regex: 'latency', target_label: __name__, replacement: latency2}\n"+
			"- {source_labels: [http.route], regex: '/pay', target_label: __name__, replacement: latency2}", encoded,
			pA, pC, `latency2{http.route="/pay", instance="10.0.0.1:9090", status=500}`)
	}
}

// TestOTLPRenameKeepsMetricShape checks that a metric created by a rename has its source's type,
// temporality, monotonicity, unit and description.
func TestOTLPRenameKeepsMetricShape(t *testing.T) {
	p, sink, _ := newTest(t, "metric_relabel_configs: [{source_labels: [__name__], target_label: __name__, replacement: renamed}]")
	md := otlpMetrics(testPoint{metric: "requests", attrs: map[string]any{"a": "b"}, typ: pmetric.MetricTypeSum})
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetDescription("Requests.")
	if err := p.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
		t.Fatal(err)
	}
	out, _ := received(t, sink).Metrics()
	ms := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	if ms.Len() != 1 {
		t.Fatalf("%d metrics, want 1 (the emptied source removed)", ms.Len())
	}
	m := ms.At(0)
	if m.Name() != "renamed" || m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() ||
		m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative || m.Unit() != "1" || m.Description() != "Requests." {
		t.Errorf("renamed metric: name %q type %s unit %q description %q", m.Name(), m.Type(), m.Unit(), m.Description())
	}
	if v, _ := m.Sum().DataPoints().At(0).Attributes().Get("a"); v.Str() != "b" {
		t.Error("the moved point lost its attributes")
	}
}

// TestOTLPRenameOntoExisting checks that points renamed to an existing metric of the same type
// join it, and are not relabelled a second time there.
func TestOTLPRenameOntoExisting(t *testing.T) {
	p, sink, _ := newTest(t, `metric_relabel_configs:
  - {source_labels: [a], regex: '1', target_label: __name__, replacement: errors}
  - {source_labels: [__name__], target_label: seen, replacement: 'x$1'}`)
	md := otlpMetrics(
		testPoint{metric: "requests", attrs: map[string]any{"a": "1"}, typ: pmetric.MetricTypeSum},
		testPoint{metric: "requests", attrs: map[string]any{"a": "0"}, typ: pmetric.MetricTypeSum},
		testPoint{metric: "errors", attrs: map[string]any{"a": "2"}, typ: pmetric.MetricTypeSum})
	if err := p.Consume(context.Background(), batch.FromMetrics(md)); err != nil {
		t.Fatal(err)
	}
	out, _ := received(t, sink).Metrics()
	want := []string{`requests{a="0", seen="xrequests"}`, `errors{a="2", seen="xerrors"}`, `errors{a="1", seen="xerrors"}`}
	if got := otlpPoints(out); !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if n := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().Len(); n != 2 {
		t.Errorf("%d metrics, want 2", n)
	}
}

// TestOTLPDoesNotTouchSharedData checks that a batch whose pdata is shared read-only with another
// branch is copied before changing, never changed in place.
func TestOTLPDoesNotTouchSharedData(t *testing.T) {
	p, sink, _ := newTest(t, "metric_relabel_configs: [{regex: status, action: labeldrop}]")
	b := batch.FromMetrics(otlpMetrics(testPoint{metric: "m", attrs: map[string]any{"status": "ok"}}))
	other := b.Share()
	if err := p.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	md, _ := other.Metrics()
	if got := otlpPoints(md); len(got) != 1 || got[0] != `m{status="ok"}` {
		t.Errorf("the shared batch changed: %v", got)
	}
	out, _ := received(t, sink).Metrics()
	if got := otlpPoints(out); len(got) != 1 || got[0] != `m{}` {
		t.Errorf("out %v", got)
	}
}

// TestNoRules checks that without rules a batch passes untouched, whatever its form.
func TestNoRules(t *testing.T) {
	p, sink, _ := newTest(t, "")
	b := batch.FromPromRWTrusted(rwBody(t, seriesIn...), seriesItems)
	if err := p.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if received(t, sink) != b {
		t.Error("without rules the batch was replaced")
	}
}
