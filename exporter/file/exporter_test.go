package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	cfg.Path = filepath.Join(t.TempDir(), "out.jsonl")
	componenttest.CheckExporter(t, NewFactory(), cfg)
	cfg = NewConfig()
	cfg.Path, cfg.Format, cfg.Compression = filepath.Join(t.TempDir(), "out.bin"), FormatProto, Zstd
	componenttest.CheckExporter(t, NewFactory(), cfg)
}

type counters = componenttest.Counters

// start creates and starts an exporter writing to path; mutate adjusts the default config.
func start(t *testing.T, path string, mutate func(*Config)) (*exporter, *counters) {
	t.Helper()
	cfg := NewConfig()
	cfg.Path = path
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	cnt := &counters{}
	set.Counters = cnt
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp.(*exporter), cnt
}

func consume(t *testing.T, e *exporter, b *batch.Batch) {
	t.Helper()
	if err := e.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func shutdown(t *testing.T, e *exporter) {
	t.Helper()
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func encoded(t *testing.T, b *batch.Batch) *batch.Batch {
	t.Helper()
	raw, err := b.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	out, err := batch.FromEncoded(b.Signal(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out
}

// readRecords splits a length-prefixed file into its records.
func readRecords(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			t.Fatalf("%d trailing bytes", len(data))
		}
		n := int(binary.BigEndian.Uint32(data))
		if len(data) < 4+n {
			t.Fatalf("record of %d bytes, %d left", n, len(data)-4)
		}
		out = append(out, data[4:4+n])
		data = data[4+n:]
	}
	return out
}

func seqOf(m pcommon.Map) int64 {
	v, _ := m.Get("seq")
	return v.Int()
}

func traceSeqs(td ptrace.Traces) []int64 {
	var out []int64
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, seqOf(sp.Attributes()))
			}
		}
	}
	return out
}

func upTo(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

// TestJSONLinesRoundTrip writes every signal, encoded and decoded, and reads the lines back with
// pdata's JSON unmarshalers.
func TestJSONLinesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "out.jsonl")
	e, cnt := start(t, path, nil)
	enc := encoded(t, batch.FromTraces(testdata.Traces(2, 3, 0)))
	consume(t, e, enc)
	consume(t, e, batch.FromTraces(testdata.Traces(1, 4, 6)))
	consume(t, e, encoded(t, batch.FromMetrics(testdata.Metrics(2, 2, 0))))
	consume(t, e, batch.FromLogs(testdata.Logs(3, 1, 0)))
	shutdown(t, e)

	lines := readLines(t, path)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	td0, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	td1, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := append(traceSeqs(td0), traceSeqs(td1)...); !slices.Equal(got, upTo(0, 10)) {
		t.Errorf("trace seqs %v", got)
	}
	sp := td0.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0)
	if v, _ := sp.Attributes().Get("http.request.method"); v.Str() != "GET" || sp.Name() != "GET /api/items" {
		t.Errorf("span lost its content: %v", sp.Attributes().AsRaw())
	}
	if v, _ := td0.ResourceSpans().At(1).Resource().Attributes().Get("resource.index"); v.Int() != 1 {
		t.Error("resource attributes lost")
	}
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(lines[2])
	if err != nil || md.DataPointCount() != 4 {
		t.Errorf("metrics line: %d points, %v", md.DataPointCount(), err)
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(lines[3])
	if err != nil || ld.LogRecordCount() != 3 {
		t.Errorf("logs line: %d records, %v", ld.LogRecordCount(), err)
	}
	if lr := ld.ResourceLogs().At(2).ScopeLogs().At(0).LogRecords().At(0); lr.Body().Str() != "request served" || seqOf(lr.Attributes()) != 2 {
		t.Errorf("log record lost its content")
	}
	if got := cnt.Get(component.Sent); got != 17 || cnt.Get(component.Dropped) != 0 {
		t.Errorf("Sent %d Dropped %d, want 17 0", got, cnt.Get(component.Dropped))
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o750|os.ModeDir)
}

// assertMode checks path grants nothing beyond want (the umask may take more away).
func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != want.Type() || st.Mode().Perm()&^want.Perm() != 0 {
		t.Errorf("%s: mode %v, want at most %v", path, st.Mode(), want)
	}
}

// TestProtoKeepsBytes checks the proto format writes encoded batches as they came, undecoded.
func TestProtoKeepsBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.bin")
	e, _ := start(t, path, func(c *Config) { c.Format = FormatProto })
	b := encoded(t, batch.FromTraces(testdata.Traces(2, 3, 0)))
	raw, _ := b.Encoded()
	want := bytes.Clone(raw)
	consume(t, e, b)
	if b.IsDecoded() {
		t.Error("the proto format decoded an encoded batch")
	}
	consume(t, e, batch.FromLogs(testdata.Logs(1, 2, 0)))
	shutdown(t, e)
	recs := readRecords(t, path)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if !bytes.Equal(recs[0], want) {
		t.Error("the first record differs from the request bytes")
	}
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(recs[1])
	if err != nil || ld.LogRecordCount() != 2 {
		t.Errorf("logs record: %d records, %v", ld.LogRecordCount(), err)
	}
}

func TestZstd(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, format := range []string{FormatJSON, FormatProto} {
		path := filepath.Join(t.TempDir(), "out."+format+".zst")
		e, _ := start(t, path, func(c *Config) { c.Format, c.Compression = format, Zstd })
		consume(t, e, batch.FromTraces(testdata.Traces(1, 5, 0)))
		consume(t, e, encoded(t, batch.FromTraces(testdata.Traces(1, 5, 5))))
		shutdown(t, e)
		recs := readRecords(t, path)
		if len(recs) != 2 {
			t.Fatalf("%s: %d records, want 2", format, len(recs))
		}
		var got []int64
		for _, r := range recs {
			plain, err := dec.DecodeAll(r, nil)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			var td ptrace.Traces
			if format == FormatJSON {
				td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(plain)
			} else {
				td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(plain)
			}
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			got = append(got, traceSeqs(td)...)
		}
		if !slices.Equal(got, upTo(0, 10)) {
			t.Errorf("%s: seqs %v", format, got)
		}
	}
}

// TestRotation writes records of known size into a small file limit and checks which files
// remain and what each holds.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	e, _ := start(t, path, func(c *Config) { c.Rotation.MaxBackups = 2 })
	line := func(i int) *batch.Batch { return batch.FromLogs(testdata.Logs(1, 1, i)) }
	parts, err := e.record(line(0))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(parts[0]) + len(parts[1]))
	e.maxBytes = 3 * size // three records per file (the seq numbers below keep sizes equal)
	for i := range 10 {
		consume(t, e, line(i))
	}
	shutdown(t, e)

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if want := []string{"out.jsonl", "out.jsonl.1", "out.jsonl.2"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	// 10 records, 3 per file: 0-2 (removed: beyond max_backups), 3-5, 6-8, 9.
	f := func(name string, want []int64) {
		t.Helper()
		var got []int64
		for _, l := range readLines(t, filepath.Join(dir, name)) {
			ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(l)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, seqOf(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", name, got, want)
		}
		assertMode(t, filepath.Join(dir, name), 0o600)
	}
	f("out.jsonl.2", []int64{3, 4, 5})
	f("out.jsonl.1", []int64{6, 7, 8})
	f("out.jsonl", []int64{9})
}

// TestRotationAppendsToExisting checks a restart continues the existing file and counts its size.
func TestRotationAppendsToExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _ := start(t, path, func(c *Config) { c.Rotation.MaxMegabytes = 1 })
	consume(t, e, batch.FromLogs(testdata.Logs(1, 1, 0)))
	shutdown(t, e)
	if st, err := os.Stat(path + ".1"); err != nil || st.Size() != 1<<20 {
		t.Fatalf("the full file was not rotated: %v", err)
	}
	if n := len(readLines(t, path)); n != 1 {
		t.Errorf("new file holds %d lines, want 1", n)
	}
}

func TestShiftBackups(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := func(r Rotation, existing map[string]time.Duration, want []string) {
		t.Helper()
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		for name, age := range existing {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
				t.Fatal(err)
			}
		}
		if err := shiftBackups(path, r, now); err != nil {
			t.Fatal(err)
		}
		var got []string
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			data, _ := os.ReadFile(filepath.Join(dir, en.Name()))
			got = append(got, en.Name()+"="+string(data))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: files %v, want %v", r, got, want)
		}
	}
	day := 24 * time.Hour
	f(Rotation{MaxBackups: 3}, map[string]time.Duration{"f": 0, "f.1": day, "f.2": 2 * day},
		[]string{"f.1=f", "f.2=f.1", "f.3=f.2"})
	f(Rotation{MaxBackups: 2}, map[string]time.Duration{"f": 0, "f.1": day, "f.2": 2 * day},
		[]string{"f.1=f", "f.2=f.1"})
	f(Rotation{MaxBackups: 0}, map[string]time.Duration{"f": 0, "f.1": day, "f.9": 2 * day},
		[]string{"f.1=f", "f.10=f.9", "f.2=f.1"}) // 0 keeps all, gaps and all
	f(Rotation{MaxDays: 2}, map[string]time.Duration{"f": 0, "f.1": day, "f.2": 3 * day, "f.3": 4 * day},
		[]string{"f.1=f", "f.2=f.1"})
	// Files that only look like backups are left alone.
	f(Rotation{MaxBackups: 1}, map[string]time.Duration{"f": 0, "f.01": day, "f.tmp": day, "f.1": day},
		[]string{"f.01=f.01", "f.1=f", "f.tmp=f.tmp"})
}

// TestFlushInterval checks records reach the file on the interval, and on Shutdown before it.
func TestFlushInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		e, _ := start(t, path, func(c *Config) { c.FlushInterval = 5 * time.Second })
		consume(t, e, batch.FromLogs(testdata.Logs(1, 1, 0)))
		if n := len(readLines(t, path)); n != 0 {
			t.Fatalf("%d lines before any flush, want 0 (buffered)", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := len(readLines(t, path)); n != 1 {
			t.Fatalf("%d lines after the flush interval, want 1", n)
		}
		consume(t, e, batch.FromLogs(testdata.Logs(1, 1, 1)))
		shutdown(t, e)
		if n := len(readLines(t, path)); n != 2 {
			t.Fatalf("%d lines after Shutdown, want 2", n)
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	e, cnt := start(t, path, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := e.Consume(context.Background(), batch.FromTraces(testdata.Traces(1, 3, (w*50+i)*3))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	shutdown(t, e)
	var got []int64
	for _, l := range readLines(t, path) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(l)
		if err != nil {
			t.Fatalf("interleaved or broken line: %v", err)
		}
		got = append(got, traceSeqs(td)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, upTo(0, 8*50*3)) {
		t.Errorf("lines hold %d spans, want %d, each once", len(got), 8*50*3)
	}
	if cnt.Get(component.Sent) != 8*50*3 {
		t.Errorf("Sent %d", cnt.Get(component.Sent))
	}
}

func TestRefusesWhenNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	cfg := NewConfig()
	cfg.Path = path
	set := component.NopSettings(component.KindExporter, component.ID{Type: Type})
	cnt := &counters{}
	set.Counters = cnt
	e, err := newExporter(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Consume(context.Background(), batch.FromLogs(testdata.Logs(1, 2, 0))); !consumererror.IsPermanent(err) {
		t.Errorf("before Start: err = %v, want permanent", err)
	}
	if err := e.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	shutdown(t, e)
	if err := e.Consume(context.Background(), batch.FromLogs(testdata.Logs(1, 3, 0))); !consumererror.IsPermanent(err) {
		t.Errorf("after Shutdown: err = %v, want permanent", err)
	}
	if cnt.Get(component.Dropped) != 5 || cnt.Get(component.Sent) != 0 {
		t.Errorf("Dropped %d Sent %d, want 5 0", cnt.Get(component.Dropped), cnt.Get(component.Sent))
	}
}

func TestStartFailsOnUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.Path = filepath.Join(blocker, "out.jsonl") // a directory that is a file
	e, err := NewFactory().Create(component.NopSettings(component.KindExporter, component.ID{Type: Type}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), component.NopHost{}); err == nil {
		t.Error("Start succeeded on an unwritable path")
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Error(err)
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
	f("otelcol.yaml", &Config{Path: "/var/lib/vigil/out.jsonl", Format: FormatJSON,
		Rotation:      Rotation{MaxMegabytes: 10, MaxDays: 3, MaxBackups: 3},
		FlushInterval: 5 * time.Second, Compression: Zstd})
	f("minimal.yaml", &Config{Path: "./out.jsonl", Format: FormatJSON,
		Rotation: Rotation{MaxMegabytes: 100, MaxBackups: 5}, FlushInterval: time.Second})
	f("bad-values.bad.yaml", nil, "path: required", `format: must be json or proto, got "csv"`,
		`compression: must be zstd or empty, got "gzip"`, "flush_interval: must be > 0, got 0s",
		"rotation.max_megabytes: must be > 0, got 0", "rotation.max_days: must be ≥ 0",
		"rotation.max_backups: must be ≥ 0")
	f("localtime.bad.yaml", nil, "localtime")
}
