package logparse

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCRI(t *testing.T) {
	l, err := ParseCRI([]byte("2026-12-03T10:00:00.123456789Z stdout F GET /pay 200\n"))
	if err != nil || l.Stream != "stdout" || l.Partial || l.Message != "GET /pay 200" ||
		!l.Time.Equal(time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)) {
		t.Errorf("%+v %v", l, err)
	}
	if l, err := ParseCRI([]byte("2026-12-03T10:00:00Z stderr P first half ")); err != nil || !l.Partial || l.Message != "first half " {
		t.Errorf("partial: %+v %v", l, err)
	}
	if l, err := ParseCRI([]byte("2026-12-03T10:00:00+01:00 stdout F")); err != nil || l.Message != "" {
		t.Errorf("empty line: %+v %v", l, err)
	}
	for _, bad := range []string{"", "garbage", "yesterday stdout F x", "2026-12-03T10:00:00Z stdin F x", "2026-12-03T10:00:00Z stdout X x"} {
		if _, err := ParseCRI([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDocker(t *testing.T) {
	l, err := ParseDocker([]byte(`{"log":"hello \"world\"\n","stream":"stderr","time":"2026-12-03T10:00:00.5Z"}`))
	if err != nil || l.Message != `hello "world"` || l.Partial || l.Stream != "stderr" {
		t.Errorf("%+v %v", l, err)
	}
	if l, _ := ParseDocker([]byte(`{"log":"no newline","stream":"stdout","time":"2026-12-03T10:00:00Z"}`)); !l.Partial {
		t.Error("a log without a newline is partial")
	}
	for _, bad := range []string{`{}`, `not json`, `{"log":"x","time":"then"}`} {
		if _, err := ParseDocker([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestJoiner(t *testing.T) {
	j := NewJoiner(10)
	t0 := time.Unix(100, 0)
	if _, _, _, done := j.Add(ContainerLine{Time: t0, Stream: "stdout", Partial: true, Message: "abc"}, 40); done {
		t.Fatal("a partial line completed")
	}
	if off, ok := j.Since(); !ok || off != 40 {
		t.Errorf("since %d %v, want 40", off, ok)
	}
	saved := j.Save()
	// Another stream's line in between is its own.
	if msg, _, _, done := j.Add(ContainerLine{Stream: "stderr", Message: "err"}, 60); !done || msg != "err" {
		t.Errorf("stderr: %q %v", msg, done)
	}
	msg, at, trunc, done := j.Add(ContainerLine{Time: t0.Add(time.Second), Stream: "stdout", Message: "def"}, 80)
	if !done || msg != "abcdef" || !at.Equal(t0) || trunc {
		t.Errorf("joined %q at %v trunc %v done %v", msg, at, trunc, done)
	}
	if _, ok := j.Since(); ok {
		t.Error("a line waits after the join")
	}
	// Going back to the saved state and adding the same lines again joins them the same way.
	j.Restore(saved)
	if msg, _, _, _ := j.Add(ContainerLine{Stream: "stdout", Message: "def"}, 80); msg != "abcdef" {
		t.Errorf("after restore: %q", msg)
	}
	j.Add(ContainerLine{Stream: "stdout", Partial: true, Message: "0123456"}, 100)
	msg, _, trunc, _ = j.Add(ContainerLine{Stream: "stdout", Message: "789abcdef"}, 120)
	if msg != "0123456789" || !trunc || j.Pending() != 0 {
		t.Errorf("over max: %q %v pending %d", msg, trunc, j.Pending())
	}
	j.Add(ContainerLine{Time: t0.Add(2 * time.Second), Stream: "stderr", Partial: true, Message: "late"}, 140)
	j.Add(ContainerLine{Time: t0, Stream: "stdout", Partial: true, Message: "early"}, 130)
	if off, _ := j.Since(); off != 130 {
		t.Errorf("since %d, want the earliest, 130", off)
	}
	if got := j.Flush(); len(got) != 2 || got[0].Message != "early" || got[1].Message != "late" || got[1].Stream != "stderr" || j.Pending() != 0 {
		t.Errorf("flush %+v, pending %d", got, j.Pending())
	}
}

func TestPodFromPath(t *testing.T) {
	p, ok := PodFromPath("/var/log/pods/payments_checkout-7d9f_3f1c-uid/app/2.log")
	if !ok || p.Namespace != "payments" || p.Name != "checkout-7d9f" || p.UID != "3f1c-uid" || p.Container != "app" || p.Restart != "2" {
		t.Errorf("%+v %v", p, ok)
	}
	if p, ok := PodFromPath("/var/log/pods/ns_pod_uid/c/0.log.20261203-100000"); !ok || p.Restart != "0" {
		t.Errorf("rotated: %+v %v", p, ok)
	}
	for _, bad := range []string{"/var/log/syslog", "/var/log/pods/nounderscore/c/0.log", "/var/log/containers/x.log", "/var/log/pods/a_b_c/c/notes.txt"} {
		if _, ok := PodFromPath(bad); ok {
			t.Errorf("%s read as a pod path", bad)
		}
	}
}

func TestParsers(t *testing.T) {
	f, err := JSON(`{"level":"warn","msg":"slow","took_ms":250,"req":{"id":"r1"}}`)
	if err != nil || f["level"] != "warn" || f["took_ms"] != json.Number("250") || f["req"].(map[string]any)["id"] != "r1" {
		t.Errorf("json: %v %v", f, err)
	}
	for _, bad := range []string{`[1,2]`, `{"a":1} trailing`, `{`, `null`} {
		if _, err := JSON(bad); err == nil {
			t.Errorf("json %q accepted", bad)
		}
	}
	f, err = Logfmt(`level=info msg="payment \"ok\"" user=42 cached`)
	if err != nil || f["level"] != "info" || f["msg"] != `payment "ok"` || f["user"] != "42" || f["cached"] != true {
		t.Errorf("logfmt: %v %v", f, err)
	}
	for _, bad := range []string{``, `=x`, `msg="unterminated`} {
		if _, err := Logfmt(bad); err == nil {
			t.Errorf("logfmt %q accepted", bad)
		}
	}
	re, err := NewRegex(`^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+)`)
	if err != nil {
		t.Fatal(err)
	}
	f, err = re.Parse(`10.0.0.1 - - [03/Dec/2026:10:00:00 +0000] "GET /pay HTTP/1.1" 200`)
	if err != nil || f["ip"] != "10.0.0.1" || f["method"] != "GET" || f["path"] != "/pay" {
		t.Errorf("regex: %v %v", f, err)
	}
	if _, err := re.Parse("nope"); err == nil {
		t.Error("a line that does not match was parsed")
	}
	if _, err := NewRegex(`no groups`); err == nil || !strings.Contains(err.Error(), "named group") {
		t.Errorf("regex without groups: %v", err)
	}
}

func TestTimeAndSeverity(t *testing.T) {
	want := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v      any
		layout string
	}{
		{"2026-12-03T10:00:00Z", "rfc3339"}, {json.Number("1796292000"), "unix"}, {"1796292000000", "unix_ms"},
		{"1796292000000000000", "unix_ns"}, {"03/Dec/2026:10:00:00 +0000", "02/Jan/2006:15:04:05 -0700"},
	} {
		got, err := ParseTime(tc.v, tc.layout)
		if err != nil || !got.Equal(want) {
			t.Errorf("%v as %s: %v %v", tc.v, tc.layout, got, err)
		}
	}
	for text, want := range map[string]int{"INFO": 9, "warning": 13, "ERROR": 17, "err": 17, "fatal": 21, "debug": 5, "trace": 1, "": 0, "bogus": 0, "17": 17} {
		if got := Severity(text); got != want {
			t.Errorf("Severity(%q) = %d, want %d", text, got, want)
		}
	}
	if s, fixed := ValidUTF8("ok \xff\xfe bytes"); !fixed || s != "ok \uFFFD bytes" {
		t.Errorf("ValidUTF8: %q %v", s, fixed)
	}
}

func FuzzParseCRI(f *testing.F) {
	f.Add([]byte("2026-12-03T10:00:00.123456789Z stdout F GET /pay 200\n"))
	f.Add([]byte("2026-12-03T10:00:00Z stderr P:x part"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseCRI(b)
		if err == nil && l.Stream != "stdout" && l.Stream != "stderr" {
			t.Fatalf("stream %q accepted", l.Stream)
		}
	})
}

func FuzzParseDocker(f *testing.F) {
	f.Add([]byte(`{"log":"hello\n","stream":"stdout","time":"2026-12-03T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseDocker(b) })
}

func FuzzLogfmt(f *testing.F) {
	f.Add(`level=info msg="a \"b\"" n=1 flag`)
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := Logfmt(s)
		if err == nil && len(fields) == 0 {
			t.Fatal("no error and no fields")
		}
	})
}

func FuzzJSON(f *testing.F) {
	f.Add(`{"level":"info","msg":"ok","n":1.5,"nested":{"a":[1,2]}}`)
	f.Add(`[1,2]`)
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := JSON(s)
		if err == nil && fields == nil {
			t.Fatal("no error and no fields")
		}
	})
}

func FuzzRegex(f *testing.F) {
	re, err := NewRegex(`^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>[^"]*)" (?P<status>\d{3})`)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`10.0.0.1 - - [03/Dec/2026:10:00:00 +0000] "GET /pay" 200`)
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := re.Parse(s)
		if (err == nil) != re.re.MatchString(s) {
			t.Fatalf("Parse error %v, yet the pattern matches: %v", err, re.re.MatchString(s))
		}
		for k, v := range fields {
			if v, ok := v.(string); !ok || v == "" || !strings.Contains(s, v) {
				t.Fatalf("field %s=%q is not a non-empty part of the line", k, v)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-12-03T10:00:00.123Z", "1764756000", "1764756000123", "1e300", "NaN", "-Inf", "9223372036854775807"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1)) // unix
	}
	layouts := []string{"rfc3339", "unix", "unix_ms", "unix_us", "unix_ns", "2006-01-02 15:04:05", "02/Jan/2006:15:04:05 -0700"}
	scales := map[string]float64{"unix": 1e9, "unix_ms": 1e6, "unix_us": 1e3}
	f.Fuzz(func(t *testing.T, s string, layout uint8) {
		l := layouts[int(layout)%len(layouts)]
		ts, err := ParseTime(s, l)
		scale, isUnix := scales[l]
		if err != nil || !isUnix {
			return
		}
		// What it returns is the number it read, as far as float64 and nanoseconds go.
		want, _ := strconv.ParseFloat(s, 64)
		want *= scale
		if got := float64(ts.UnixNano()); math.Abs(got-want) > 1e-9*math.Abs(want)+1e3 {
			t.Fatalf("ParseTime(%q, %s) = %v (%g ns), want %g ns", s, l, ts, got, want)
		}
	})
}

func FuzzPodFromPath(f *testing.F) {
	f.Add("/var/log/pods/prod_checkout-7d4f_0f6c2b1e-1111-2222-3333-444455556666/app/0.log")
	f.Add("/var/log/pods/a_b_c/d/1.log.20261203-100000")
	f.Add("/var/log/containers/x.log")
	f.Fuzz(func(t *testing.T, path string) {
		p, ok := PodFromPath(path)
		if !ok {
			return
		}
		for name, v := range map[string]string{"namespace": p.Namespace, "pod": p.Name, "uid": p.UID, "container": p.Container} {
			if v == "" || strings.ContainsAny(v, "/") || !strings.Contains(filepath.ToSlash(path), v) {
				t.Fatalf("%s %q from %q: empty, with a slash, or not in the path", name, v, path)
			}
		}
		if strings.Contains(p.Namespace+p.Name+p.UID, "_") {
			t.Fatalf("pod directory of %q split wrong: %+v", path, p)
		}
	})
}
