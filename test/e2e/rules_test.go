//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRulesCheckMatchesPromtool runs `vigil rules check` and Debian's `promtool check rules` on
// the same files, valid and invalid, and expects the same verdict: exit status and rule count.
// newer-keys.yaml is left out: it uses keys newer than Debian's promtool (2.42).
func TestRulesCheckMatchesPromtool(t *testing.T) {
	vigil, promtool := binary(t, "VIGIL_BIN"), binary(t, "PROMTOOL_BIN")
	files, err := filepath.Glob("../../alerting/rulefiles/testdata/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("rule files: %v %v", files, err)
	}
	count := regexp.MustCompile(`SUCCESS: (\d+) rules found`)
	run := func(bin string, args ...string) (int, string) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return code, string(out)
	}
	compared := 0
	for _, f := range files {
		if strings.HasSuffix(f, "newer-keys.yaml") {
			continue
		}
		abs, _ := filepath.Abs(f)
		for _, flags := range [][]string{nil, {"--lint-fatal"}, {"--lint=none"}} {
			args := append(append([]string{"check", "rules"}, flags...), abs)
			pc, pout := run(promtool, args...)
			vc, vout := run(vigil, append([]string{"rules", "check"}, append(flags, abs)...)...)
			if pc != vc {
				t.Errorf("%s %v: vigil exit %d, promtool exit %d\nvigil:\n%s\npromtool:\n%s", filepath.Base(f), flags, vc, pc, vout, pout)
			}
			if p, v := count.FindString(pout), count.FindString(vout); p != v {
				t.Errorf("%s %v: vigil says %q, promtool %q", filepath.Base(f), flags, v, p)
			}
			compared++
		}
	}
	t.Logf("%d file × flag combinations compared with %s", compared, promtool)
}
