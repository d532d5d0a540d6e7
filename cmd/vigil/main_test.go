package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
)

func TestComponentsAndDefaultConfig(t *testing.T) {
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadDefault(f)
	if err != nil {
		t.Fatalf("embedded default config: %v", err)
	}
	if got := cfg.Service.Telemetry.Metrics.ListenAddress(); got != "127.0.0.1:8888" {
		t.Errorf("default self-telemetry address %q", got)
	}
	if len(cfg.Service.Pipelines) != 4 {
		t.Errorf("default config should run traces, metrics and logs pipelines and its self-health scrape, has %d", len(cfg.Service.Pipelines))
	}
	if cfg.Alerting == nil || !cfg.Alerting.SelfHealth {
		t.Error("default config should evaluate the self-health rules")
	}
}

func TestExamplesValidate(t *testing.T) {
	t.Setenv("TENANT", "acme")
	files, _ := filepath.Glob("../../config/examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, file := range files {
		if strings.Contains(file, "gateway-tls") {
			continue // reads secret files that exist only on a deployed host; see TestValidateReportsEveryProblem
		}
		var out, errOut bytes.Buffer
		if code := run([]string{"validate", "--config", file}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d: %s", file, code, errOut.String())
		}
	}
}

// TestValidateExplainsAcknowledgements: a valid config is followed by what each pipeline's
// acknowledgement means.
func TestValidateExplainsAcknowledgements(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "--config", "../../config/examples/acknowledgements.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"pipeline logs: a client is answered once every exporter has its data:",
		"exporter otlphttp/audit: end_to_end: the backend accepted the data",
		"pipeline metrics: acknowledgements none",
		"exporter otlp/tempo: durable: the data is written to the persistent queue in /var/lib/vigil/queue and fsynced",
		"processor batch holds data before sending it on; clients wait for its send (up to 5s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"validate", "--config", "testdata/unknown-key.yaml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	for _, want := range []string{
		"testdata/unknown-key.yaml:6: receivers.otlp.protocols.grpc.max_recv_msg_size: unknown field",
		`service.pipelines.traces.processors: processor "batch" is not defined`,
		`service.pipelines.traces.exporters: exporter "otlp/missing" is not defined`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, errOut.String())
		}
	}
	errOut.Reset()
	if code := run([]string{"validate", "--config", "../../config/examples/gateway-tls.yaml"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "read ${file:/etc/vigil/secrets/ingest-token}") {
		t.Errorf("missing secret file: exit %d, %s", code, errOut.String())
	}
}

// TestConnectionReaderBeforeBatch: k8s_attributes finding pods by connection after batch (which
// joins many clients' requests) is refused with the fix.
func TestConnectionReaderBeforeBatch(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "--config", "testdata/k8s-after-batch.yaml"}, &out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	want := `service.pipelines.traces.processors: processor "k8s_attributes" finds data's origin by the client connection, which processor "batch" hides (it joins many clients' requests): list "k8s_attributes" before "batch"`
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, errOut.String())
	}
}

func TestCommands(t *testing.T) {
	f := func(args []string, wantCode int, wantOut string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != wantCode || !strings.Contains(out.String()+errOut.String(), wantOut) {
			t.Errorf("vigil %v: exit %d, output %q; want exit %d containing %q", args, code, out.String()+errOut.String(), wantCode, wantOut)
		}
	}
	f([]string{"version"}, 0, "vigil ")
	f(nil, 2, "Usage: vigil")
	f([]string{"frobnicate"}, 2, `unknown command "frobnicate"`)
	f([]string{"validate"}, 2, "--config is required")
	f([]string{"default-config"}, 0, "receivers:")
	f([]string{"run", "--config", "testdata/unknown-key.yaml"}, 1, "unknown field")
	f([]string{"run", "--config", "testdata/nope.yaml"}, 1, "no such file")
}

func TestRulesCheckCommand(t *testing.T) {
	good, dups := "../../alerting/rulefiles/testdata/good.yaml", "../../alerting/rulefiles/testdata/duplicates.yaml"
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"rules"}, 2, "Usage: vigil rules check"},
		{[]string{"rules", "check"}, 2, "no rule files given"},
		{[]string{"rules", "check", "--lint=everything", good}, 2, "--lint must be duplicate-rules or none"},
		{[]string{"rules", "check", good}, 0, "SUCCESS: 3 rules found"},
		{[]string{"rules", "check", dups, "--lint-fatal"}, 3, "duplicate rule(s) found"},
		{[]string{"rules", "check", "--lint=none", dups}, 0, "SUCCESS: 2 rules found"},
		{[]string{"rules", "check", good, "../../alerting/rulefiles/testdata/bad-promql.yaml"}, 1, "parse error"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
			t.Errorf("vigil %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, code, tc.code, tc.out, out.String(), errOut.String())
		}
	}
}
