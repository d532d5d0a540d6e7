package debug

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckExporter(t, NewFactory(), nil)
	componenttest.CheckExporter(t, NewFactory(), &Config{Verbosity: "Detailed", SamplingInitial: 1})
}

type counters = componenttest.Counters

// harness builds an exporter logging JSON into a buffer.
type harness struct {
	exp component.Exporter
	buf *bytes.Buffer
	cnt *counters
}

func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	h := &harness{buf: &bytes.Buffer{}, cnt: &counters{}}
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	set.Logger = slog.New(slog.NewJSONHandler(h.buf, nil))
	set.Counters = h.cnt
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.exp = exp
	return h
}

func (h *harness) consume(t *testing.T, b *batch.Batch) {
	t.Helper()
	if err := h.exp.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// lines parses every log line.
func (h *harness) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(h.buf.Bytes()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func encodedTraces(t *testing.T, r, n int) (*batch.Batch, int) {
	t.Helper()
	raw, err := batch.FromTraces(testdata.Traces(r, n, 0)).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b, len(raw)
}

// TestBasicDoesNotDecode checks basic logs one line per batch from what is known without decoding.
func TestBasicDoesNotDecode(t *testing.T) {
	h := newHarness(t, NewConfig())
	b, size := encodedTraces(t, 3, 4)
	h.consume(t, b)
	if b.IsDecoded() {
		t.Error("basic verbosity decoded the batch")
	}
	lines := h.lines(t)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	l := lines[0]
	if l["msg"] != "traces" || l["spans"] != 12.0 || l["resources"] != 3.0 || l["encoded"] != true || l["bytes"] != float64(size) {
		t.Errorf("line %v", l)
	}
	if h.cnt.Get(component.Sent) != 12 {
		t.Errorf("Sent %d, want 12", h.cnt.Get(component.Sent))
	}

	// A batch in pieces (the batch processor's output) is counted piece by piece, unjoined.
	b1, size1 := encodedTraces(t, 3, 4)
	b2, size2 := encodedTraces(t, 2, 5)
	cat, err := batch.Concat([]*batch.Batch{b1, b2})
	if err != nil {
		t.Fatal(err)
	}
	h.consume(t, cat)
	lines = h.lines(t)
	if l := lines[len(lines)-1]; l["spans"] != 22.0 || l["resources"] != 5.0 || l["bytes"] != float64(size1+size2) {
		t.Errorf("line for a batch in pieces %v", l)
	}
	if p, _ := cat.EncodedParts(); len(p) != 2 {
		t.Errorf("the exporter joined the pieces (%d left)", len(p))
	}
}

func TestBasicDecoded(t *testing.T) {
	h := newHarness(t, NewConfig())
	md := testdata.Metrics(2, 5, 0)
	size := (&pmetric.ProtoMarshaler{}).MetricsSize(md)
	h.consume(t, batch.FromMetrics(md))
	h.consume(t, batch.FromLogs(testdata.Logs(1, 2, 0)))
	lines := h.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	if l := lines[0]; l["msg"] != "metrics" || l["data_points"] != 10.0 || l["resources"] != 2.0 || l["encoded"] != false || l["bytes"] != float64(size) {
		t.Errorf("metrics line %v", l)
	}
	if l := lines[1]; l["msg"] != "logs" || l["log_records"] != 2.0 {
		t.Errorf("logs line %v", l)
	}
}

func TestNormalOneLinePerItem(t *testing.T) {
	h := newHarness(t, &Config{Verbosity: Normal, SamplingInitial: 10, SamplingThereafter: 1})
	b, _ := encodedTraces(t, 2, 3)
	h.consume(t, b)
	h.consume(t, batch.FromMetrics(testdata.Metrics(1, 2, 100)))
	h.consume(t, batch.FromLogs(testdata.Logs(1, 2, 200)))
	lines := h.lines(t)
	var spans, points, records []map[string]any
	for _, l := range lines {
		switch l["msg"] {
		case "span":
			spans = append(spans, l)
		case "data point":
			points = append(points, l)
		case "log record":
			records = append(records, l)
		}
	}
	if len(lines) != 3+6+2+2 || len(spans) != 6 || len(points) != 2 || len(records) != 2 {
		t.Fatalf("%d lines: %d spans, %d points, %d records", len(lines), len(spans), len(points), len(records))
	}
	for i, s := range spans {
		attrs, _ := s["attributes"].(map[string]any)
		if s["name"] != "GET /api/items" || s["service"] != "vigil-test" || attrs["seq"] != float64(i) ||
			len(s["trace_id"].(string)) != 32 || len(s["span_id"].(string)) != 16 || s["span_kind"] != "Server" {
			t.Errorf("span line %v", s)
		}
	}
	if p := points[1]; p["metric"] != "test.gauge" || p["type"] != "Gauge" || p["value"] != 101.0 {
		t.Errorf("point line %v", p)
	}
	if r := records[0]; r["body"] != "request served" || r["severity"] != "INFO" {
		t.Errorf("record line %v", r)
	}
}

func TestDetailedIsOTLPJSON(t *testing.T) {
	h := newHarness(t, &Config{Verbosity: Detailed, SamplingInitial: 10})
	b, _ := encodedTraces(t, 2, 3)
	h.consume(t, b)
	h.consume(t, batch.FromMetrics(testdata.Metrics(1, 4, 0)))
	h.consume(t, batch.FromLogs(testdata.Logs(2, 2, 0)))
	var details []json.RawMessage
	for _, l := range h.lines(t) {
		if strings.HasSuffix(l["msg"].(string), " detail") {
			raw, err := json.Marshal(l["otlp"])
			if err != nil {
				t.Fatal(err)
			}
			details = append(details, raw)
		}
	}
	if len(details) != 3 {
		t.Fatalf("%d detail lines, want 3", len(details))
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(details[0])
	if err != nil || td.SpanCount() != 6 {
		t.Errorf("traces detail: %d spans, %v", td.SpanCount(), err)
	}
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(details[1])
	if err != nil || md.DataPointCount() != 4 {
		t.Errorf("metrics detail: %d points, %v", md.DataPointCount(), err)
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(details[2])
	if err != nil || ld.LogRecordCount() != 4 {
		t.Errorf("logs detail: %d records, %v", ld.LogRecordCount(), err)
	}
}

func TestSampling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Config{Verbosity: Basic, SamplingInitial: 2, SamplingThereafter: 3})
		for range 10 {
			h.consume(t, batch.FromTraces(testdata.Traces(1, 1, 0)))
		}
		// Batches 1, 2, then 5 and 8 in the same second.
		if n := len(h.lines(t)); n != 4 {
			t.Fatalf("%d lines in one second, want 4", n)
		}
		h.consume(t, batch.FromLogs(testdata.Logs(1, 1, 0))) // signals are sampled apart
		if n := len(h.lines(t)); n != 5 {
			t.Fatalf("logs were sampled with traces: %d lines, want 5", n)
		}
		time.Sleep(time.Second)
		h.consume(t, batch.FromTraces(testdata.Traces(1, 1, 0)))
		if n := len(h.lines(t)); n != 6 {
			t.Fatalf("a new second did not reset sampling: %d lines, want 6", n)
		}
		if h.cnt.Get(component.Sent) != 12 {
			t.Errorf("Sent %d, want 12: sampled-out batches count as sent", h.cnt.Get(component.Sent))
		}
	})
}

func TestSamplingThereafterZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Config{Verbosity: Basic, SamplingInitial: 1, SamplingThereafter: 0})
		for range 5 {
			h.consume(t, batch.FromTraces(testdata.Traces(1, 1, 0)))
		}
		if n := len(h.lines(t)); n != 1 {
			t.Errorf("%d lines, want 1", n)
		}
	})
}

// TestQuietLogger checks that nothing is decoded when the log level hides the output.
func TestQuietLogger(t *testing.T) {
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	var buf bytes.Buffer
	set.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cnt := &counters{}
	set.Counters = cnt
	exp, err := NewFactory().Create(set, &Config{Verbosity: Detailed, SamplingInitial: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := encodedTraces(t, 1, 2)
	if err := exp.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.IsDecoded() || buf.Len() != 0 || cnt.Get(component.Sent) != 2 {
		t.Errorf("decoded=%v logged=%q sent=%d", b.IsDecoded(), buf.String(), cnt.Get(component.Sent))
	}
}

func TestConfig(t *testing.T) {
	f := func(name string, want *Config, wantErrs ...string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg := NewConfig()
		err = componenttest.DecodeConfig(data, cfg)
		for _, w := range wantErrs {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", name, err, w)
			}
		}
		if len(wantErrs) == 0 && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if want != nil && *cfg != *want {
			t.Errorf("%s: got %+v, want %+v", name, *cfg, *want)
		}
	}
	f("otelcol.yaml", &Config{Verbosity: Detailed, SamplingInitial: 5, SamplingThereafter: 200})
	f("empty.yaml", NewConfig())
	f("bad-values.bad.yaml", nil, `verbosity: must be basic, normal or detailed, got "loud"`,
		"sampling_initial: must be ≥ 0, got -1", "sampling_thereafter: must be ≥ 0, got -2")
	f("stdout.bad.yaml", nil, "use_internal_logger")
}
