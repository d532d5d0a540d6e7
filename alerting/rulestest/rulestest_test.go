package rulestest

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun: promtool's verdicts on the same files are pass, fail and fail (the e2e suite checks
// that against Debian's promtool); a failure says what was expected and what came.
func TestRun(t *testing.T) {
	f := checkRun(t)
	f("pass.yaml", ExitOK, "Unit Testing:  testdata/pass.yaml", "SUCCESS")
	f("fail.yaml", ExitFailure, "FAILED:", "name: wrong expectations", "alertname: InstanceDown, time: 10m,",
		`expr: "job:up:sum", time: 2m,`, `exp: [{__name__="job:up:sum", job="node"} 2]`, `got: [{__name__="job:up:sum", job="node"} 1]`)
	f("features.yaml", ExitOK, "SUCCESS")
	f("unordered.yaml", ExitFailure, `expr: "job:b", time: 1m,`)
	f("fuzzy.yaml", ExitOK, "SUCCESS")
	f("bad-rules.yaml", ExitFailure, "FAILED:", "bad-promql.yaml", "parse error")
	f("no-alertname.yaml", ExitFailure, "misses required attribute alertname at eval_time 5m")
	f("missing.yaml", ExitFailure, "FAILED:", "no such file")
}

// checkRun returns an f-test: Run on testdata/file exits wantCode and its report holds want.
func checkRun(t *testing.T) func(file string, wantCode int, want ...string) {
	return func(file string, wantCode int, want ...string) {
		t.Helper()
		var out bytes.Buffer
		if code := Run(&out, "testdata/"+file); code != wantCode {
			t.Errorf("%s: exit %d, want %d\n%s", file, code, wantCode, out.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: report lacks %q:\n%s", file, w, out.String())
			}
		}
	}
}

// The files of testdata/newer-promtool use keys newer than the promtool the e2e suite compares
// with, so these tests are their only check.

// TestRunHistograms: native histograms load from input_series, flow through recording rules,
// alerts and their templates, and compare with exp_samples' histogram as promtool compares
// them (by their test expression, counter-reset hint included); a float never equals one.
func TestRunHistograms(t *testing.T) {
	f := checkRun(t)
	f("newer-promtool/histograms.yaml", ExitOK, "SUCCESS")
	f("newer-promtool/histogram-fail.yaml", ExitFailure, "FAILED:",
		`exp: [{__name__="job:latency:sum", job="api"} {{count:8 sum:10 counter_reset_hint:not_reset buckets:[2 3 3]}}]`,
		`got: [{__name__="job:latency:sum", job="api"} {{count:8 sum:10 counter_reset_hint:not_reset buckets:[2 4 2]}}]`,
		`exp: [{__name__="latency", job="api"} {{count:12 sum:15 buckets:[3 6 3]}}]`,
		`got: [{__name__="latency", job="api"} {{count:12 sum:15 counter_reset_hint:not_reset buckets:[3 6 3]}}]`,
		`expr: "histogram_count(latency)", time: 0s,`, `got: [{job="api"} 4]`)
	f("newer-promtool/histogram-float.yaml", ExitFailure, "FAILED:", `expr: "latency", time: 0s,`,
		`exp: [{__name__="latency", job="api"} 4]`,
		`got: [{__name__="latency", job="api"} {{count:4 sum:5 buckets:[1 2 1]}}]`)
	f("newer-promtool/histogram-bad.yaml", ExitFailure,
		`time: 0s, err: labels "latency{job=\"api\"}": expected 1 value, got 3`,
		`time: 1m, err: labels "latency{job=\"api\"}": expected histogram, got 4`,
		`time: 2m, err: labels "latency{job=\"api\"}": 1:21: parse error: bad histogram descriptor found: "colour"`)
}

// TestRunStartTimestamp: with start_timestamp (RFC 3339 or Unix seconds) the input series,
// eval_times and time() count from it, as in promtool.
func TestRunStartTimestamp(t *testing.T) {
	f := checkRun(t)
	f("newer-promtool/start-timestamp.yaml", ExitOK, "SUCCESS")
	f("newer-promtool/bad-start-timestamp.yaml", ExitFailure, `bad-start-timestamp.yaml: cannot parse "yesterday" to a valid timestamp`)
}

// TestRunQueryOffset: a group's query_offset makes its rules read (and record at) the time that
// far back, so an alert fires that much later.
func TestRunQueryOffset(t *testing.T) {
	f := checkRun(t)
	f("newer-promtool/query-offset.yaml", ExitOK, "SUCCESS")
}

// TestSampleString: a histogram sample shows its value only when one was expected, since the
// value of a histogram result is always 0 and promtool still compares it.
func TestSampleString(t *testing.T) {
	f := func(s ExpectedSample, want string) {
		t.Helper()
		got, err := parseExpected(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if got.String() != want {
			t.Errorf("%+v: %q, want %q", s, got.String(), want)
		}
	}
	f(ExpectedSample{Labels: `m{a="b"}`, Value: 1.5}, `{__name__="m", a="b"} 1.5`)
	f(ExpectedSample{Labels: `m`, Histogram: `{{sum:1 count:1 buckets:[1]}}`}, `{__name__="m"} {{count:1 sum:1 buckets:[1]}}`)
	f(ExpectedSample{Labels: `m`, Value: 2, Histogram: `{{count:1}}`}, `{__name__="m"} {{count:1}} value:2`)
}

// FuzzParseExpected: whatever an exp_samples entry holds, reading and printing it does not panic.
func FuzzParseExpected(f *testing.F) {
	f.Add(`m{a="b"}`, `{{schema:0 sum:5 count:4 buckets:[1 2 1]}}`)
	f.Add(`m`, `{{schema:-53 sum:1 count:1 custom_values:[0.1 0.5] buckets:[1]}}`)
	f.Add(`{}`, `{{z_bucket:1 z_bucket_w:0.001 n_buckets:[1 0 0 0 2] n_offset:-3 buckets:[1] offset:7}}`)
	f.Add(`m`, `{{}}+{{count:1}}x3`)
	f.Fuzz(func(t *testing.T, labels, hist string) {
		if s, err := parseExpected(ExpectedSample{Labels: labels, Histogram: hist}); err == nil {
			_ = s.String()
		}
	})
}
