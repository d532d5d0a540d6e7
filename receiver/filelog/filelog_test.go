package filelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink keeps every line body; with hold set it takes a reference on each batch's handles, as
// an exporter in end_to_end mode does, to release later.
type sink struct {
	mu    sync.Mutex
	lines []string
	attrs []map[string]any
	res   []map[string]any
	hold  bool
	held  []ack.Set
	fail  int // the next calls to refuse, for the receiver to retry
}

func (s *sink) Consume(_ context.Context, b *batch.Batch) error {
	ld, err := b.Logs()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("try again")
	}
	if s.hold {
		b.Acks().Hold()
		s.held = append(s.held, b.Acks())
	}
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				s.lines = append(s.lines, lr.Body().Str())
				s.attrs = append(s.attrs, lr.Attributes().AsRaw())
				s.res = append(s.res, rl.Resource().Attributes().AsRaw())
			}
		}
	}
	return nil
}

func (s *sink) release() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, h := range held {
		h.Release(nil)
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *sink) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.count() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // and nothing more comes
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) != n {
		t.Fatalf("%d lines, want %d", len(s.lines), n)
	}
	return append([]string(nil), s.lines...)
}

func start(t *testing.T, dir string, snk *sink, mod func(*Config)) *receiver {
	t.Helper()
	cfg := NewConfig()
	cfg.Include = []string{filepath.Join(dir, "logs", "*.log")}
	cfg.StartAt = "beginning"
	cfg.CheckpointDir = filepath.Join(dir, "checkpoints")
	cfg.PollInterval = 20 * time.Millisecond
	cfg.CheckpointInterval = 20 * time.Millisecond
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newReceiver(component.Settings{ID: component.ID{Type: Type}, Registerer: prometheus.NewRegistry()}, cfg,
		map[batch.Signal]component.Consumer{batch.Logs: snk})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func stop(t *testing.T, r *receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func appendLines(t *testing.T, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "%s line %d\n", prefix, i)
	}
}

func logsDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func uniq(t *testing.T, lines []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("line %q read twice", l)
		}
		seen[l] = true
	}
}

// TestRotationByRename: the file is renamed away (out of the globs) and a new one created at
// its path; lines written to the old one after the rename are still read, and every line is
// read once.
func TestRotationByRename(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "old", 0, 100)
	snk := &sink{}
	r := start(t, dir, snk, nil)
	defer stop(t, r)
	snk.wait(t, 100)
	if err := os.Rename(path, filepath.Join(dir, "logs", "app.log.1")); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(dir, "logs", "app.log.1"), "old", 100, 110) // the writer still had it open
	appendLines(t, path, "new", 0, 50)
	lines := snk.wait(t, 160)
	uniq(t, lines)
	if snk.attrs[0]["log.file.name"] != "app.log" {
		t.Errorf("attributes %v", snk.attrs[0])
	}
}

// TestCopyTruncate: the file is copied away and emptied; what is written next is read from
// its start.
func TestCopyTruncate(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "before", 0, 100)
	snk := &sink{}
	r := start(t, dir, snk, nil)
	defer stop(t, r)
	snk.wait(t, 100)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, "after", 0, 20)
	lines := snk.wait(t, 120)
	uniq(t, lines)
	if v := testutil.ToFloat64(r.truncated.WithLabelValues()); v != 1 {
		t.Errorf("truncations %v, want 1", v)
	}
}

// TestRestartNeitherLosesNorRepeats: after a clean stop, the next start reads only what was
// written since, from the checkpoint; a file renamed meanwhile is still known by its
// fingerprint.
func TestRestartNeitherLosesNorRepeats(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "a", 0, 100)
	snk := &sink{}
	r := start(t, dir, snk, nil)
	snk.wait(t, 100)
	stop(t, r)
	appendLines(t, path, "a", 100, 150)
	if err := os.Rename(path, filepath.Join(dir, "logs", "renamed.log")); err != nil {
		t.Fatal(err)
	}
	snk2 := &sink{}
	r2 := start(t, dir, snk2, func(c *Config) { c.StartAt = "beginning" })
	defer stop(t, r2)
	lines := snk2.wait(t, 50)
	if lines[0] != "a line 100" || lines[49] != "a line 149" {
		t.Errorf("after the restart: %q … %q", lines[0], lines[49])
	}
}

// TestCheckpointFollowsAcknowledgements: while the exporter holds the lines (end_to_end), the
// checkpoint does not move past them; once released, it does. A restart before the release
// reads them again (at least once); after it, not.
func TestCheckpointFollowsAcknowledgements(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "x", 0, 10)
	snk := &sink{hold: true}
	r := start(t, dir, snk, nil)
	snk.wait(t, 10)
	offset := func() int64 {
		b, err := os.ReadFile(r.checkpointPath())
		if err != nil {
			return -1
		}
		var cf checkpointFile
		_ = json.Unmarshal(b, &cf)
		if len(cf.Files) == 0 {
			return -1
		}
		return cf.Files[0].Offset
	}
	time.Sleep(100 * time.Millisecond)
	if o := offset(); o != 0 {
		t.Errorf("checkpoint at %d while the lines are held, want 0", o)
	}
	snk.release()
	deadline := time.Now().Add(5 * time.Second)
	for offset() != 90 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if o := offset(); o != 90 {
		t.Errorf("checkpoint at %d after the release, want 90 (10 lines of 9 bytes)", o)
	}
	stop(t, r)
}

// TestDeletedWhileInFlight: a file deleted while its lines are held stays open until they are
// acknowledged, then is let go of.
func TestDeletedWhileInFlight(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "x", 0, 10)
	snk := &sink{hold: true}
	r := start(t, dir, snk, nil)
	defer stop(t, r)
	snk.wait(t, 10)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	r.pollMu().Lock()
	n := len(r.files)
	r.pollMu().Unlock()
	if n != 1 {
		t.Errorf("%d files followed after the delete with lines in flight, want 1", n)
	}
	snk.release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.pollMu().Lock()
		n = len(r.files)
		r.pollMu().Unlock()
		if n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n != 0 {
		t.Errorf("the deleted file is still followed after its lines were acknowledged")
	}
}

// TestHostileLines: a 10 MB line is cut at max_line_bytes and counted, binary garbage and
// invalid UTF-8 go through as text, and the lines after them are read.
func TestHostileLines(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	if err := os.WriteFile(path, []byte("first\n"+strings.Repeat("y", 10<<20)+"\n\x00\x01\xff\xfe binary\nlast\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) { c.MaxLineBytes = 1024; c.Format = FormatNone })
	defer stop(t, r)
	lines := snk.wait(t, 4)
	if lines[0] != "first" || len(lines[1]) != 1024 || !strings.HasSuffix(lines[2], " binary") || lines[3] != "last" {
		t.Errorf("lines %q…", lines[0])
	}
	if v := testutil.ToFloat64(r.dropped.WithLabelValues("too_long")); v != 1 {
		t.Errorf("too_long %v, want 1", v)
	}
}

// TestContainerLogs: CRI lines with a partial line joined, Kubernetes metadata from the path.
func TestContainerLogs(t *testing.T) {
	dir := t.TempDir()
	podDir := filepath.Join(dir, "pods", "payments_checkout-1_uid-1", "app")
	if err := os.MkdirAll(podDir, 0o700); err != nil {
		t.Fatal(err)
	}
	content := "2026-12-03T10:00:00.000000001Z stdout F hello\n" +
		"2026-12-03T10:00:01Z stdout P part one, \n" +
		"2026-12-03T10:00:01Z stderr F an error\n" +
		"2026-12-03T10:00:02Z stdout F part two\n" +
		"not a CRI line\n"
	if err := os.WriteFile(filepath.Join(podDir, "0.log"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) { c.Include = []string{filepath.Join(dir, "pods", "*", "*", "*.log")} })
	defer stop(t, r)
	lines := snk.wait(t, 3)
	if strings.Join(lines, "|") != "hello|an error|part one, part two" {
		t.Errorf("lines %q", lines)
	}
	if snk.res[0]["k8s.namespace.name"] != "payments" || snk.res[0]["k8s.pod.name"] != "checkout-1" || snk.res[0]["k8s.container.name"] != "app" ||
		snk.attrs[1]["log.iostream"] != "stderr" {
		t.Errorf("resource %v, attributes %v", snk.res[0], snk.attrs[1])
	}
	if v := testutil.ToFloat64(r.dropped.WithLabelValues("malformed")); v != 1 {
		t.Errorf("malformed %v, want 1", v)
	}
}

func TestStartAtEnd(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "old", 0, 10)
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) { c.StartAt = "end" })
	defer stop(t, r)
	time.Sleep(100 * time.Millisecond)
	appendLines(t, path, "new", 0, 5)
	appendLines(t, filepath.Join(dir, "logs", "later.log"), "later", 0, 3) // a file that appears later: from its start
	lines := snk.wait(t, 8)
	for _, l := range lines {
		if strings.HasPrefix(l, "old") {
			t.Errorf("start_at end read an old line: %q", l)
		}
	}
}

// TestParsers: JSON lines become attributes, with time, severity and body taken from fields;
// logfmt and regex likewise; a line the parser cannot read is kept as it is, and counted.
func TestParsers(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		parser        ParserConfig
		check         func(t *testing.T, s *sink)
	}{
		{"json", `{"time":"2026-12-03T10:00:00Z","level":"warn","msg":"slow payment","took_ms":250,"req":{"id":"r1"}}` + "\nnot json\n",
			func() ParserConfig {
				var p ParserConfig
				p.Type, p.Timestamp.Field, p.Severity.Field, p.Body.Field = "json", "time", "level", "msg"
				return p
			}(),
			func(t *testing.T, s *sink) {
				if s.lines[0] != "slow payment" || s.attrs[0]["took_ms"] != int64(250) || s.attrs[0]["req"].(map[string]any)["id"] != "r1" || s.attrs[0]["msg"] != nil {
					t.Errorf("json: %q %v", s.lines[0], s.attrs[0])
				}
				if s.lines[1] != "not json" {
					t.Errorf("an unparsable line: %q", s.lines[1])
				}
			}},
		{"logfmt", "level=error msg=\"card declined\" user=42\n", func() ParserConfig {
			var p ParserConfig
			p.Type, p.Severity.Field = "logfmt", "level"
			return p
		}(), func(t *testing.T, s *sink) {
			if s.attrs[0]["user"] != "42" || s.attrs[0]["msg"] != "card declined" {
				t.Errorf("logfmt: %v", s.attrs[0])
			}
		}},
		{"regex", "10.0.0.1 GET /pay 200\n", ParserConfig{Type: "regex", Regex: `^(?P<ip>\S+) (?P<method>\S+) (?P<path>\S+) (?P<status>\d+)$`},
			func(t *testing.T, s *sink) {
				if s.attrs[0]["method"] != "GET" || s.attrs[0]["status"] != "200" {
					t.Errorf("regex: %v", s.attrs[0])
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := logsDir(t)
			if err := os.WriteFile(filepath.Join(dir, "logs", "app.log"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			snk := &sink{}
			p := tc.parser
			r := start(t, dir, snk, func(c *Config) { c.Format = FormatNone; c.Parser = &p })
			defer stop(t, r)
			snk.wait(t, strings.Count(tc.content, "\n"))
			tc.check(t, snk)
		})
	}
}

// TestMultiline: stack traces stay one entry; the last entry goes once nothing followed it for
// flush_after; an entry written in two parts is still one; nothing is sent twice.
func TestMultiline(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	content := "2026-12-03 10:00:00 ERROR boom\njava.lang.RuntimeException: x\n    at a.b(C.java:1)\n2026-12-03 10:00:01 INFO ok\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) {
		c.Format = FormatNone
		c.Multiline = &MultilineConfig{LineStartPattern: `^\d{4}-\d\d-\d\d `, FlushAfter: 100 * time.Millisecond}
	})
	defer stop(t, r)
	lines := snk.wait(t, 2)
	if lines[0] != "2026-12-03 10:00:00 ERROR boom\njava.lang.RuntimeException: x\n    at a.b(C.java:1)" || lines[1] != "2026-12-03 10:00:01 INFO ok" {
		t.Errorf("entries %q", lines)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "2026-12-03 10:00:02 ERROR again\ncaused by: y\n")
	time.Sleep(30 * time.Millisecond) // a poll sees the first part
	fmt.Fprint(f, "    at c.d(E.java:2)\n2026-12-03 10:00:03 INFO done\n")
	f.Close()
	lines = snk.wait(t, 4)
	if lines[2] != "2026-12-03 10:00:02 ERROR again\ncaused by: y\n    at c.d(E.java:2)" || lines[3] != "2026-12-03 10:00:03 INFO done" {
		t.Errorf("entries written in parts: %q", lines[2:])
	}
}

// TestEncodings: latin1 and UTF-16 (with a byte order mark, CRLF) files arrive as UTF-8.
func TestEncodings(t *testing.T) {
	utf16 := func(s string, be bool) []byte {
		var out []byte
		if be {
			out = []byte{0xfe, 0xff}
		} else {
			out = []byte{0xff, 0xfe}
		}
		for _, r := range s {
			if be {
				out = append(out, byte(r>>8), byte(r))
			} else {
				out = append(out, byte(r), byte(r>>8))
			}
		}
		return out
	}
	for _, tc := range []struct {
		encoding string
		content  []byte
	}{
		{"latin1", []byte("caf\xe9 cr\xe8me\nna\xefve\n")},
		{"utf-16le", utf16("café crème\r\nnaïve\n", false)},
		{"utf-16be", utf16("café crème\r\nnaïve\n", true)},
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			dir := logsDir(t)
			if err := os.WriteFile(filepath.Join(dir, "logs", "app.log"), tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			snk := &sink{}
			r := start(t, dir, snk, func(c *Config) { c.Format = FormatNone; c.Encoding = tc.encoding })
			defer stop(t, r)
			lines := snk.wait(t, 2)
			if lines[0] != "café crème" || lines[1] != "naïve" {
				t.Errorf("lines %q", lines)
			}
		})
	}
}

// checkpointOffsets is the offset of every file in r's checkpoint, by path.
func checkpointOffsets(r *receiver) map[string]int64 {
	b, err := os.ReadFile(r.checkpointPath())
	if err != nil {
		return nil
	}
	var cf checkpointFile
	_ = json.Unmarshal(b, &cf)
	out := map[string]int64{}
	for _, e := range cf.Files {
		out[e.Path] = e.Offset
	}
	return out
}

// TestRotatedWhileStopped: lines written after a clean stop to a file that is then rotated
// to a name out of the globs are read from the rotated file at the next start, and the new
// file at the old name from its beginning; nothing is read twice.
func TestRotatedWhileStopped(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "a", 0, 100)
	snk := &sink{}
	r := start(t, dir, snk, nil)
	snk.wait(t, 100)
	stop(t, r)
	appendLines(t, path, "a", 100, 150)
	if err := os.Rename(path, path+".1"); err != nil { // app.log.1: not in *.log
		t.Fatal(err)
	}
	appendLines(t, path, "b", 0, 20)
	snk2 := &sink{}
	r2 := start(t, dir, snk2, nil)
	lines := snk2.wait(t, 70)
	uniq(t, lines)
	if !slices.Contains(lines, "a line 100") || !slices.Contains(lines, "a line 149") || !slices.Contains(lines, "b line 0") || slices.Contains(lines, "a line 99") {
		t.Errorf("after the restart: %q", lines)
	}
	// Read to its end, the rotated file is let go of and leaves the checkpoint.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, kept := checkpointOffsets(r2)[path+".1"]
		if !kept || time.Now().After(deadline) {
			if kept {
				t.Error("the rotated file is still in the checkpoint")
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop(t, r2)
}

// TestRotatedAfterCrash: the lines in flight when the agent stopped without their
// acknowledgement are in a file rotated out of the globs before the next start; they are read
// again from it (at least once), not lost.
func TestRotatedAfterCrash(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "a", 0, 100)
	snk := &sink{hold: true}
	r := start(t, dir, snk, nil)
	snk.wait(t, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := r.Shutdown(ctx); err == nil {
		t.Error("shutdown with lines in flight: no error")
	}
	cancel()
	snk.release() // too late: the checkpoint is written
	if err := os.Rename(path, path+"-20261203"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, "b", 0, 10)
	snk2 := &sink{}
	r2 := start(t, dir, snk2, nil)
	defer stop(t, r2)
	lines := snk2.wait(t, 110)
	uniq(t, lines)
	if !slices.Contains(lines, "a line 0") || !slices.Contains(lines, "a line 99") || !slices.Contains(lines, "b line 9") {
		t.Errorf("after the restart: %q…", lines[:3])
	}
}

// criPod writes CRI content to a pod log file and returns its path and an include glob.
func criPod(t *testing.T, dir, content string) (string, string) {
	t.Helper()
	podDir := filepath.Join(dir, "pods", "ns_pod_uid", "app")
	if err := os.MkdirAll(podDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(podDir, "0.log")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, filepath.Join(dir, "pods", "*", "*", "*.log")
}

func appendText(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestPartialLineAcrossRestart: a CRI partial line at the end of what was read is not
// checkpointed past; after a restart it is read again and joined with the rest written since,
// so that the line is neither lost nor cut in two.
func TestPartialLineAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	first := "2026-12-03T10:00:00Z stdout F hello\n"
	path, glob := criPod(t, dir, first+"2026-12-03T10:00:01Z stdout P part one, \n")
	mod := func(c *Config) { c.Include = []string{glob} }
	snk := &sink{}
	r := start(t, dir, snk, mod)
	snk.wait(t, 1)
	time.Sleep(100 * time.Millisecond) // a few checkpoints
	stop(t, r)
	if off := checkpointOffsets(r)[path]; off != int64(len(first)) {
		t.Errorf("checkpoint at %d, want %d: the start of the partial line", off, len(first))
	}
	appendText(t, path, "2026-12-03T10:00:02Z stdout F part two\n")
	snk2 := &sink{}
	r2 := start(t, dir, snk2, mod)
	defer stop(t, r2)
	if lines := snk2.wait(t, 1); lines[0] != "part one, part two" {
		t.Errorf("after the restart: %q", lines)
	}
}

// TestPartialLineRetried: the pipeline refuses the batch that completes a partial line read in
// an earlier one; the retry hands on the whole line again, not its last part.
func TestPartialLineRetried(t *testing.T) {
	dir := t.TempDir()
	path, glob := criPod(t, dir, "2026-12-03T10:00:01Z stdout P part one, \n")
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) { c.Include = []string{glob} })
	defer stop(t, r)
	time.Sleep(100 * time.Millisecond) // the partial line is read
	snk.mu.Lock()
	snk.fail = 1
	snk.mu.Unlock()
	appendText(t, path, "2026-12-03T10:00:02Z stdout F part two\n2026-12-03T10:00:03Z stderr F next\n")
	if lines := snk.wait(t, 2); lines[0] != "part one, part two" || lines[1] != "next" {
		t.Errorf("after the retry: %q", lines)
	}
}

// TestPartialLineOfRotatedFile: a file rotated away with a partial line at its end hands the
// line on as it is once read to its end, rather than hold it for a rest that goes to the new
// file.
func TestPartialLineOfRotatedFile(t *testing.T) {
	dir := t.TempDir()
	path, glob := criPod(t, dir, "2026-12-03T10:00:01Z stdout P cut off\n")
	snk := &sink{}
	r := start(t, dir, snk, func(c *Config) { c.Include = []string{glob} })
	defer stop(t, r)
	time.Sleep(100 * time.Millisecond)
	if err := os.Rename(path, path+".20261203-100000"); err != nil {
		t.Fatal(err)
	}
	if lines := snk.wait(t, 1); lines[0] != "cut off" || snk.res[0]["k8s.pod.name"] != "pod" {
		t.Errorf("lines %q, resource %v", lines, snk.res[0])
	}
}

// TestCheckpointBadEntries: checkpoint entries this receiver would never write (a fingerprint
// that is not hex, a negative offset) are ignored: the file they name is read as a new one,
// instead of failing to read at a negative offset on every poll.
func TestCheckpointBadEntries(t *testing.T) {
	dir := logsDir(t)
	path := filepath.Join(dir, "logs", "app.log")
	appendLines(t, path, "a", 0, 10)
	snk := &sink{}
	r := start(t, dir, snk, nil)
	snk.wait(t, 10)
	stop(t, r)
	b, err := os.ReadFile(r.checkpointPath())
	if err != nil {
		t.Fatal(err)
	}
	var cf checkpointFile
	if err := json.Unmarshal(b, &cf); err != nil || len(cf.Files) != 1 {
		t.Fatalf("checkpoint %s: %v", b, err)
	}
	cf.Files[0].Offset = -7
	cf.Files = append(cf.Files, checkpointEntry{Fingerprint: "not hex", Offset: 3, Path: path})
	if b, err = json.Marshal(cf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.checkpointPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	snk2 := &sink{}
	r2 := start(t, dir, snk2, nil)
	defer stop(t, r2)
	if len(r2.checkpoint) != 0 {
		t.Errorf("kept checkpoint entries %v, want none", r2.checkpoint)
	}
	if lines := snk2.wait(t, 10); lines[0] != "a line 0" {
		t.Errorf("first line %q, want the file read from its start", lines[0])
	}
}
