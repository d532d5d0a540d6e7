package generate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/slo/spec"
)

// slothModule is the Sloth release whose own golden files the generator is held to.
const slothModule = "github.com/slok/sloth@v0.16.0"

// slothTestdata is Sloth's integration-test directory, from the module cache (downloaded
// through the module proxy on first use; Sloth is read, not built or linked).
func slothTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", slothModule).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v (%s)", slothModule, err, out)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", slothModule, out, err)
	}
	return filepath.Join(m.Dir, "test", "integration", "prometheus", "testdata")
}

// TestMatchesSloth: for Sloth's own inputs, the rules are Sloth's expected output: the same
// groups in the same order, the same rule names, labels and annotations, and expressions that
// parse to the same PromQL (parentheses and spacing aside, numbers to 12 digits).
func TestMatchesSloth(t *testing.T) {
	dir := slothTestdata(t)
	for _, tc := range []struct {
		in, out string
		opts    Options
	}{
		{"in-base.yaml", "out-base.yaml.tpl", Options{}},
		{"in-base.yaml", "out-base-28d.yaml.tpl", Options{Window: 28 * 24 * time.Hour}},
		{"in-base.yaml", "out-base-no-alerts.yaml.tpl", Options{DisableAlerts: true}},
		{"in-base.yaml", "out-base-no-recordings.yaml.tpl", Options{DisableRecordings: true}},
		{"in-base.yaml", "out-base-extra-labels.yaml.tpl", Options{ExtraLabels: map[string]string{"exk1": "exv1", "exk2": "exv2"}}},
		{"in-multifile.yaml", "out-multifile.yaml.tpl", Options{}},
		{"in-openslo.yaml", "out-openslo.yaml.tpl", Options{}},
	} {
		t.Run(tc.out, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			slos, err := spec.ParseFile(tc.in, data)
			if err != nil {
				t.Fatal(err)
			}
			tc.opts.Version = "test"
			got, err := Generate(slos, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := loadExpected(t, filepath.Join(dir, tc.out))
			compare(t, got, want)
			// And what is written out reads back the same.
			b, err := got.YAML("test")
			if err != nil {
				t.Fatal(err)
			}
			var back Groups
			if err := yaml.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			compare(t, &back, want)
		})
	}
}

// loadExpected renders one of Sloth's expected-output templates.
func loadExpected(t *testing.T, path string) *Groups {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.New("exp").Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, map[string]string{"version": "test"}); err != nil {
		t.Fatal(err)
	}
	// Sloth writes one document per input document; Vigil writes one rule file.
	var all Groups
	dec := yaml.NewDecoder(&b)
	for {
		var g Groups
		err := dec.Decode(&g)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all.Groups = append(all.Groups, g.Groups...)
	}
	return &all
}

func compare(t *testing.T, got, want *Groups) {
	t.Helper()
	if len(got.Groups) != len(want.Groups) {
		t.Fatalf("%d groups, want %d: %v", len(got.Groups), len(want.Groups), names(got))
	}
	for i, wg := range want.Groups {
		gg := got.Groups[i]
		if gg.Name != wg.Name {
			t.Errorf("group %d: %q, want %q", i, gg.Name, wg.Name)
			continue
		}
		if len(gg.Rules) != len(wg.Rules) {
			t.Errorf("group %s: %d rules, want %d", wg.Name, len(gg.Rules), len(wg.Rules))
			continue
		}
		for j, wr := range wg.Rules {
			gr := gg.Rules[j]
			at := fmt.Sprintf("group %s rule %d (%s%s)", wg.Name, j, wr.Record, wr.Alert)
			if gr.Record != wr.Record || gr.Alert != wr.Alert || gr.For != wr.For {
				t.Errorf("%s: got record %q alert %q for %q", at, gr.Record, gr.Alert, gr.For)
			}
			if g, w := canonical(t, gr.Expr), canonical(t, wr.Expr); g != w {
				t.Errorf("%s: expression\n got %s\nwant %s", at, g, w)
			}
			delete(gr.Labels, "sloth_version")
			delete(wr.Labels, "sloth_version")
			if fmt.Sprint(gr.Labels) != fmt.Sprint(wr.Labels) {
				t.Errorf("%s: labels\n got %v\nwant %v", at, gr.Labels, wr.Labels)
			}
			if fmt.Sprint(gr.Annotations) != fmt.Sprint(wr.Annotations) {
				t.Errorf("%s: annotations\n got %v\nwant %v", at, gr.Annotations, wr.Annotations)
			}
		}
	}
}

func names(g *Groups) []string {
	var out []string
	for _, x := range g.Groups {
		out = append(out, x.Name)
	}
	return out
}

// canonical parses PromQL and prints it with every binary operand that is itself a binary
// expression in parentheses and no other parentheses, numbers rounded to 12 significant
// digits: two expressions print the same exactly when they are the same up to formatting.
func canonical(t *testing.T, q string) string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return normalize(e).String()
}

func normalize(e parser.Expr) parser.Expr {
	switch n := e.(type) {
	case *parser.ParenExpr:
		return normalize(n.Expr)
	case *parser.BinaryExpr:
		n.LHS, n.RHS = wrap(normalize(n.LHS)), wrap(normalize(n.RHS))
	case *parser.AggregateExpr:
		n.Expr = normalize(n.Expr)
		if n.Param != nil {
			n.Param = normalize(n.Param)
		}
	case *parser.Call:
		for i := range n.Args {
			n.Args[i] = normalize(n.Args[i])
		}
	case *parser.UnaryExpr:
		n.Expr = normalize(n.Expr)
	case *parser.SubqueryExpr:
		n.Expr = normalize(n.Expr)
	case *parser.NumberLiteral:
		if n.Val != 0 && !math.IsInf(n.Val, 0) && !math.IsNaN(n.Val) {
			n.Val, _ = strconv.ParseFloat(strconv.FormatFloat(n.Val, 'g', 12, 64), 64)
		}
	}
	return e
}

func wrap(e parser.Expr) parser.Expr {
	if _, ok := e.(*parser.BinaryExpr); ok {
		return &parser.ParenExpr{Expr: e}
	}
	return e
}
