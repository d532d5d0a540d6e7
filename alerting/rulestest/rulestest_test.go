package rulestest

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun: promtool's verdicts on the same files are pass, fail and fail (the e2e suite checks
// that against Debian's promtool); a failure says what was expected and what came.
func TestRun(t *testing.T) {
	f := func(file string, wantCode int, want ...string) {
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
