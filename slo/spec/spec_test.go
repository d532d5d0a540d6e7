package spec

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseVigilAndOpenSLO: a Sloth document with Vigil's span and log SLIs, the older
// camelCase keys and custom windows, and an OpenSLO v1 document, in one file.
func TestParseVigilAndOpenSLO(t *testing.T) {
	data, err := os.ReadFile("testdata/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slos, err := ParseFile("vigil.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(slos) != 4 {
		t.Fatalf("%d SLOs, want 4", len(slos))
	}
	avail := slos[0]
	if avail.ID != "checkout-requests-availability" || avail.Window != 28*24*time.Hour || avail.Labels["team"] != "payments" ||
		avail.SLI.Spans == nil || avail.SLI.Spans.Latency != 200*time.Millisecond || avail.SLI.Spans.Attributes["http.route"] != "/pay" {
		t.Errorf("spans SLO: %+v %+v", avail, avail.SLI.Spans)
	}
	if l := slos[1].SLI.Logs; l == nil || l.Bad.Severity != "error" || l.Match.Body != "payment (ok|failed)" {
		t.Errorf("logs SLO: %+v", slos[1].SLI)
	}
	if e := slos[2].SLI.Events; e == nil || !strings.Contains(e.ErrorQuery, `code=~"5.."`) || len(slos[2].Alerting.Windows) != 1 {
		t.Errorf("events SLO with camelCase keys: %+v", slos[2])
	}
	o := slos[3]
	if o.ID != "search-search-latency-0" || o.Objective != 99.5 || o.Window != 7*24*time.Hour || o.Spec != OpenSLOV1 ||
		o.SLI.Raw == nil || !strings.Contains(o.SLI.Raw.ErrorRatioQuery, "1 - (") {
		t.Errorf("OpenSLO SLO: %+v", o)
	}
}

// TestBadSpecs: each mistake is reported with the file, line, SLO and field.
func TestBadSpecs(t *testing.T) {
	head := "version: prometheus/v1\nservice: svc\nslos:\n  - name: s1\n"
	events := "    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}\n"
	off := "    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"objective 100", head + "    objective: 100\n" + events + off, []string{"x.yaml:4", `slo "s1"`, "objective: must be > 0 and < 100"}},
		{"objective 0", head + "    objective: 0\n" + events + off, []string{`slo "s1"`, "objective"}},
		{"negative objective", head + "    objective: -5\n" + events + off, []string{"objective", "-5"}},
		{"unknown window unit", head + "    objective: 99\n    window: 30x\n" + events + off, []string{`slo "s1"`, `window: "30x"`}},
		{"query that does not parse", head + "    objective: 99\n    sli: {events: {error_query: 'sum(rate(e[{{.window}}])', total_query: 't'}}\n" + off,
			[]string{`slo "s1"`, "sli.events.error_query", "parse error"}},
		{"template that does not render", head + "    objective: 99\n    sli: {raw: {error_ratio_query: 'e[{{.win}}]'}}\n" + off,
			[]string{"sli.raw.error_ratio_query", "win"}},
		{"matcher on an unknown field", head + "    objective: 99\n    sli: {spans: {service: a, status: error}}\n" + off,
			[]string{"x.yaml:6", `slo "s1"`, "slos[0].sli.spans.status", "unknown field", "latency"}},
		{"bad span kind", head + "    objective: 99\n    sli: {spans: {kind: servr}}\n" + off, []string{`slo "s1"`, `sli.spans.kind: "servr"`}},
		{"logs without bad", head + "    objective: 99\n    sli: {logs: {match: {service: a}}}\n" + off, []string{"sli.logs.bad"}},
		{"bad severity", head + "    objective: 99\n    sli: {logs: {match: {service: a}, bad: {severity: eror}}}\n" + off, []string{`sli.logs.bad.severity: "eror"`}},
		{"two SLIs", head + "    objective: 99\n    sli: {raw: {error_ratio_query: 'x'}, spans: {service: a}}\n" + off, []string{"not 2"}},
		{"no SLI", head + "    objective: 99\n" + off, []string{"sli: one of"}},
		{"alerts without a name", head + "    objective: 99\n" + events, []string{"alerting.name"}},
		{"bad burn window", head + "    objective: 99\n" + events + "    alerting: {name: A, windows: [{severity: page, long: 5m, short: 1h, factor: 14}]}\n",
			[]string{"alerting.windows[0]", "short < long"}},
		{"unknown version", "version: prometheus/v2\nservice: svc\n", []string{"x.yaml:1", `version "prometheus/v2"`}},
		{"OpenSLO timeslices", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: o}\nspec: {service: s, budgetingMethod: Timeslices, objectives: [{target: 0.9}]}\n",
			[]string{`slo "o"`, "Occurrences"}},
		{"OpenSLO target 1", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: o}\nspec: {service: s, budgetingMethod: Occurrences, timeWindow: [{duration: 30d}]," +
			" indicator: {spec: {ratioMetric: {good: {metricSource: {type: Prometheus, spec: {query: g}}}, total: {metricSource: {type: Prometheus, spec: {query: t}}}}}}, objectives: [{target: 1}]}\n",
			[]string{`slo "o-0"`, "objective: must be > 0 and < 100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("x.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	if data, err := os.ReadFile("testdata/vigil.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("version: prometheus/v1\nservice: s\nslos: [{name: a, objective: 99, sli: {raw: {error_ratio_query: x}}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		slos, err := ParseFile("fuzz.yaml", data)
		if err == nil && len(slos) == 0 {
			t.Fatal("no error and no SLOs")
		}
		for _, s := range slos {
			if !(s.Objective > 0 && s.Objective < 100) || s.SLI.Kind() == "" {
				t.Fatalf("accepted an invalid SLO: %+v", s)
			}
		}
	})
}
