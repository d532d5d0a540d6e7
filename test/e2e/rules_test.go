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

// TestRulesTestMatchesPromtool runs `vigil rules test` and Debian's `promtool test rules` on the
// same unit-test files, passing and failing ones, and expects the same verdict. Left out:
// fuzzy.yaml uses a key newer than Debian's promtool (2.42), and unordered.yaml leaves the order
// of its groups open, which promtool 2.42 settles by map iteration (a different verdict from
// run to run; Vigil runs them in file order, as Prometheus does).
func TestRulesTestMatchesPromtool(t *testing.T) {
	vigil, promtool := binary(t, "VIGIL_BIN"), binary(t, "PROMTOOL_BIN")
	files, err := filepath.Glob("../../alerting/rulestest/testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The self-health pack's own unit tests, too.
	files = append(files, "../../alerting/engine/testdata/selfhealth/selfhealth.test.yaml")
	verdicts := map[int]int{}
	for _, f := range files {
		base := filepath.Base(f)
		switch base {
		case "fuzzy.yaml", "unordered.yaml", "rules.yaml", "order-rules.yaml": // rule files are not tests
			continue
		}
		abs, _ := filepath.Abs(f)
		pout, perr := exec.Command(promtool, "test", "rules", abs).CombinedOutput()
		vout, verr := exec.Command(vigil, "rules", "test", abs).CombinedOutput()
		pc, vc := exitCode(t, perr), exitCode(t, verr)
		if pc != vc || strings.Contains(string(pout), "SUCCESS") != strings.Contains(string(vout), "SUCCESS") {
			t.Errorf("%s: vigil exit %d, promtool exit %d\nvigil:\n%s\npromtool:\n%s", base, vc, pc, vout, pout)
		}
		verdicts[pc]++
	}
	if verdicts[0] < 2 || verdicts[1] < 3 {
		t.Errorf("verdicts %v: want at least 2 passing and 3 failing files compared", verdicts)
	}
	t.Logf("verdicts by exit code: %v", verdicts)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}
