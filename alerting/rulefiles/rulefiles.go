// Package rulefiles reads Prometheus rule files with Prometheus's own parser (model/rulefmt and
// promql/parser), and checks them as `promtool check rules` does: the same errors, the same
// duplicate-rule lint, the same output and exit codes. The rule engine loads what it checks.
package rulefiles

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
)

// Exit codes, as promtool's.
const (
	ExitOK      = 0
	ExitFailure = 1 // a file could not be read or parsed, or a rule is invalid
	ExitLint    = 3 // only lint findings, with --lint-fatal
)

// Parser is the PromQL parser rule files are read with: Prometheus's defaults, as promtool's.
var Parser = parser.NewParser(parser.Options{})

// Parse reads one rule file. Unknown fields are errors, and names follow Prometheus's default
// (UTF-8) validation. Every error names the file.
func Parse(file string, logger *slog.Logger) (*rulefmt.RuleGroups, []error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return rulefmt.ParseFile(file, false, model.UTF8Validation, Parser, logger)
}

// CheckOptions are promtool check rules' flags that Vigil takes.
type CheckOptions struct {
	// LintDuplicates reports rules with the same name and labels (promtool's default lint,
	// --lint=duplicate-rules); off is --lint=none.
	LintDuplicates bool
	// LintFatal makes lint findings fail the check with ExitLint (--lint-fatal).
	LintFatal bool
}

// Check checks each file as `promtool check rules` does, writing its report to stdout and its
// failures to stderr, and returns promtool's exit code.
func Check(files []string, opts CheckOptions, stdout, stderr io.Writer, logger *slog.Logger) int {
	failed, hasErrors := false, false
	for _, f := range files {
		fmt.Fprintln(stdout, "Checking", f)
		rgs, errs := Parse(f, logger)
		if len(errs) > 0 {
			failed, hasErrors = true, true
			fmt.Fprintln(stderr, "  FAILED:")
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
			fmt.Fprintln(stdout)
			continue
		}
		if dups := duplicates(rgs); opts.LintDuplicates && len(dups) > 0 {
			failed = true
			fmt.Fprintln(stderr, "  FAILED:")
			fmt.Fprintln(stderr, "lint error", dups)
		} else {
			fmt.Fprintf(stdout, "  SUCCESS: %d rules found\n", countRules(rgs))
		}
		fmt.Fprintln(stdout)
	}
	switch {
	case failed && hasErrors:
		return ExitFailure
	case failed && opts.LintFatal:
		return ExitLint
	}
	return ExitOK
}

func countRules(rgs *rulefmt.RuleGroups) int {
	n := 0
	for _, g := range rgs.Groups {
		n += len(g.Rules)
	}
	return n
}

// duplicates describes the rules that share a name (alert or record) and labels (the group's
// and the rule's together), each once, or returns "" when there are none.
func duplicates(rgs *rulefmt.RuleGroups) string {
	type key struct {
		name   string
		labels labels.Labels
	}
	var all []key
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			name := r.Record
			if r.Alert != "" {
				name = r.Alert
			}
			all = append(all, key{name, rules.FromMaps(g.Labels, r.Labels)})
		}
	}
	cmp := func(a, b key) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return labels.Compare(a.labels, b.labels)
	}
	slices.SortFunc(all, cmp)
	var dups []key
	for i := 1; i < len(all); i++ {
		if cmp(all[i-1], all[i]) == 0 && (len(dups) == 0 || cmp(dups[len(dups)-1], all[i]) != 0) {
			dups = append(dups, all[i])
		}
	}
	if len(dups) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d duplicate rule(s) found.\n", len(dups))
	for _, d := range dups {
		fmt.Fprintf(&b, "Metric: %s\nLabel(s):\n", d.name)
		d.labels.Range(func(l labels.Label) { fmt.Fprintf(&b, "\t%s: %s\n", l.Name, l.Value) })
	}
	b.WriteString("Might cause inconsistency while recording expressions")
	return b.String()
}
