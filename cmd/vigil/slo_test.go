package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSLOCommands: check and generate on the example specs, a bad spec, and usage errors, with
// their exit codes.
func TestSLOCommands(t *testing.T) {
	example := "../../config/examples/slos/checkout.slo.yaml"
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 100\n    sli: {raw: {error_ratio_query: x}}\n    alerting: {name: A}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"slo", "check", example}, 0, "SUCCESS: 3 SLOs found", ""},
		{[]string{"slo", "check", bad}, 1, "", `bad.yaml:4: slo "a": objective: must be > 0 and < 100`},
		{[]string{"slo", "generate", example}, 0, "name: sloth-slo-alerts-checkout-http-errors", `skipped: ` + example + `:6: slo "pay-availability"`},
		{[]string{"slo", "generate", "--window-policy", "pyrra", example}, 0, "for: 16m", ""},
		{[]string{"slo", "generate", "-l", "env=prod", example}, 0, "env: prod", ""},
		{[]string{"slo", "generate", "--window", "30x", example}, 2, "", "--window"},
		{[]string{"slo", "generate"}, 2, "", "no spec files"},
		{[]string{"slo"}, 2, "", "Usage"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errs) {
			t.Errorf("vigil %s: exit %d (want %d)\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, tail(out.String()), errOut.String())
		}
	}
}

func tail(s string) string {
	if len(s) > 400 {
		return "…" + s[len(s)-400:]
	}
	return s
}
