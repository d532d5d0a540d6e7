package rulefiles

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs each file through Check and compares the exit code and the report with what
// promtool check rules prints for it (the e2e suite runs Debian's promtool on the same files).
func TestCheck(t *testing.T) {
	f := func(file string, opts CheckOptions, wantCode int, wantOut, wantErr []string) {
		t.Helper()
		var out, errOut bytes.Buffer
		path := filepath.Join("testdata", file)
		code := Check([]string{path}, opts, &out, &errOut, nil)
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", file, code, wantCode, out.String(), errOut.String())
		}
		for _, w := range append([]string{"Checking " + path}, wantOut...) {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: stdout lacks %q:\n%s", file, w, out.String())
			}
		}
		for _, w := range wantErr {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("%s: stderr lacks %q:\n%s", file, w, errOut.String())
			}
		}
		if len(wantErr) == 0 && errOut.Len() > 0 {
			t.Errorf("%s: unexpected stderr:\n%s", file, errOut.String())
		}
	}
	lint := CheckOptions{LintDuplicates: true}
	f("good.yaml", lint, ExitOK, []string{"SUCCESS: 3 rules found"}, nil)
	f("newer-keys.yaml", lint, ExitOK, []string{"SUCCESS: 1 rules found"}, nil)
	f("bad-promql.yaml", lint, ExitFailure, nil, []string{"FAILED:", "bad-promql.yaml", "group \"broken\", rule 1, \"Broken\"", "parse error"})
	f("bad-template.yaml", lint, ExitFailure, nil, []string{"bad-template.yaml", "noSuchFunction"})
	f("unknown-field.yaml", lint, ExitFailure, nil, []string{"unknown-field.yaml", "field fro not found"})
	f("bad-matcher.yaml", lint, ExitFailure, nil, []string{"bad-matcher.yaml", "error parsing regexp"})
	f("no-name.yaml", lint, ExitFailure, nil, []string{"no-name.yaml", "Groupname must not be empty"})
	f("missing.yaml", lint, ExitFailure, nil, []string{"missing.yaml", "no such file"})
	// Duplicates are a lint finding: reported, fatal only with LintFatal, silent with --lint=none.
	f("duplicates.yaml", lint, ExitOK, nil, []string{"lint error 1 duplicate rule(s) found.", "Metric: job:up:sum"})
	f("duplicates.yaml", CheckOptions{LintDuplicates: true, LintFatal: true}, ExitLint, nil, []string{"duplicate rule(s)"})
	f("duplicates.yaml", CheckOptions{}, ExitOK, []string{"SUCCESS: 2 rules found"}, nil)
}

// TestCheckSeveralFiles: one bad file fails the run, and every file is still checked.
func TestCheckSeveralFiles(t *testing.T) {
	var out, errOut bytes.Buffer
	files := []string{"testdata/bad-promql.yaml", "testdata/good.yaml"}
	if code := Check(files, CheckOptions{LintDuplicates: true}, &out, &errOut, nil); code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	if !strings.Contains(out.String(), "Checking testdata/good.yaml") || !strings.Contains(out.String(), "SUCCESS: 3 rules found") {
		t.Errorf("the good file after the bad one was not checked:\n%s", out.String())
	}
}
