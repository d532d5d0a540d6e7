//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
// fuzzy.yaml uses a key newer than Debian's promtool (2.42), as do the files in newer-promtool
// (compared by TestRulesTestMatchesModulePromtool), and unordered.yaml leaves the order of its
// groups open, which promtool 2.42 settles by map iteration (a different verdict from run to
// run; Vigil runs them in file order, as Prometheus does).
func TestRulesTestMatchesPromtool(t *testing.T) {
	files, err := filepath.Glob("../../alerting/rulestest/testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The self-health pack's own unit tests, too.
	files = append(files, "../../alerting/engine/testdata/selfhealth/selfhealth.test.yaml")
	verdicts := compareRuleTests(t, binary(t, "PROMTOOL_BIN"), files, "fuzzy.yaml", "unordered.yaml")
	if verdicts[0] < 2 || verdicts[1] < 3 {
		t.Errorf("verdicts %v: want at least 2 passing and 3 failing files compared", verdicts)
	}
}

// TestRulesTestMatchesModulePromtool compares `vigil rules test` with the promtool of the
// Prometheus release Vigil's rule engine comes from (built from the Go module by run.sh), on
// every unit-test file: those Debian's promtool can read and those with newer keys (native
// histograms in input and expected samples, start_timestamp, query_offset), passing and failing.
func TestRulesTestMatchesModulePromtool(t *testing.T) {
	files, err := filepath.Glob("../../alerting/rulestest/testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	newer, err := filepath.Glob("../../alerting/rulestest/testdata/newer-promtool/*.yaml")
	if err != nil || len(newer) < 5 {
		t.Fatalf("newer-promtool files: %v %v", newer, err)
	}
	files = append(append(files, newer...), "../../alerting/engine/testdata/selfhealth/selfhealth.test.yaml")
	verdicts := compareRuleTests(t, binary(t, "PROMTOOL_MODULE_BIN"), files, "unordered.yaml")
	if verdicts[0] < 5 || verdicts[1] < 5 {
		t.Errorf("verdicts %v: want at least 5 passing and 5 failing files compared", verdicts)
	}
}

// ruleFiles are the rule files the unit tests load, not tests themselves.
var ruleFiles = []string{"rules.yaml", "order-rules.yaml", "histogram-rules.yaml", "query-offset-rules.yaml"}

// compareRuleTests runs both tools on each unit-test file (rule files and the named ones
// left out) and fails on a different exit code or SUCCESS line; it returns the verdicts by
// exit code.
func compareRuleTests(t *testing.T, promtool string, files []string, skip ...string) map[int]int {
	t.Helper()
	vigil := binary(t, "VIGIL_BIN")
	verdicts := map[int]int{}
	for _, f := range files {
		base := filepath.Base(f)
		if slices.Contains(skip, base) || slices.Contains(ruleFiles, base) {
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
	t.Logf("verdicts by exit code against %s: %v", promtool, verdicts)
	return verdicts
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
