package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/vigilhq/vigil/alerting/rulefiles"
	"github.com/vigilhq/vigil/alerting/rulestest"
)

const rulesUsage = `Usage: vigil rules check [--lint=duplicate-rules|none] [--lint-fatal] FILE...
       vigil rules test FILE...

Checks Prometheus rule files as "promtool check rules" does, with Prometheus's own parser:
YAML structure and unknown keys, PromQL expressions, label and annotation templates, and (the
lint) rules with the same name and labels. The report and the exit status are promtool's.

  --lint        duplicate-rules (default) or none
  --lint-fatal  make lint findings fail the check (exit 3)

Exit status: 0 valid (lint findings are reported but do not fail), 1 a file is invalid or
unreadable, 2 usage error, 3 lint findings with --lint-fatal.

"rules test" runs rule unit tests in promtool's "test rules" format (rule_files,
evaluation_interval, group_eval_order, fuzzy_compare; tests with input_series in the expanding
notation, alert_rule_test, promql_expr_test, external_labels, external_url). Exit status: 0
every test passed, 1 a test failed or a file is invalid, 2 usage error.
`

func cmdRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return cmdRulesCheck(args[1:], stdout, stderr)
	case "test":
		if len(args) < 2 {
			fmt.Fprint(stderr, "vigil rules test: no test files given\n\n"+rulesUsage)
			return 2
		}
		return rulestest.Run(stdout, args[1:]...)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return 0
	}
	fmt.Fprintf(stderr, "vigil rules: unknown subcommand %q\n\n%s", args[0], rulesUsage)
	return 2
}

func cmdRulesCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesUsage) }
	lint := fs.String("lint", "duplicate-rules", "duplicate-rules or none")
	fatal := fs.Bool("lint-fatal", false, "make lint findings fail the check")
	// Flags may come on either side of the files, as with promtool.
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(files) == 0 {
		fmt.Fprint(stderr, "vigil rules check: no rule files given\n\n"+rulesUsage)
		return 2
	}
	opts := rulefiles.CheckOptions{LintFatal: *fatal}
	switch *lint {
	case "duplicate-rules", "all":
		opts.LintDuplicates = true
	case "none":
	default:
		fmt.Fprintf(stderr, "vigil rules check: --lint must be duplicate-rules or none, got %q\n", *lint)
		return 2
	}
	return rulefiles.Check(files, opts, stdout, stderr, nil)
}
