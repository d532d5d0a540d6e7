package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

type fakeRecvConfig struct {
	Endpoint string        `yaml:"endpoint"`
	Token    secret.String `yaml:"token"`
	Limits   struct {
		Size    int           `yaml:"size"`
		Timeout time.Duration `yaml:"timeout"`
	} `yaml:"limits"`
	Tags []struct {
		Name string `yaml:"name"`
	} `yaml:"tags"`
}

func (c *fakeRecvConfig) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set"))
	}
	if c.Limits.Size < 0 {
		errs = append(errs, errors.New("limits.size: must be >= 0"))
	}
	return errors.Join(errs...)
}

type fakeProcConfig struct {
	Level int `yaml:"level"`
}

func testFactories(t *testing.T) component.Factories {
	t.Helper()
	f, err := component.MakeFactories(
		[]component.ReceiverFactory{{
			Type: "fake", Signals: []batch.Signal{batch.Traces, batch.Metrics},
			NewConfig: func() component.Config { return &fakeRecvConfig{Endpoint: "127.0.0.1:1"} },
			Create: func(component.Settings, component.Config, map[batch.Signal]component.Consumer) (component.Component, error) {
				return nil, nil
			},
		}},
		[]component.ProcessorFactory{{
			Type: "tracesonly", Signals: []batch.Signal{batch.Traces},
			NewConfig: func() component.Config { return &fakeProcConfig{Level: 1} },
			Create: func(component.Settings, component.Config, batch.Signal, component.Consumer) (component.Processor, error) {
				return nil, nil
			},
		}},
		[]component.ExporterFactory{{
			Type: "sink", Signals: batch.Signals,
			NewConfig: func() component.Config { return &struct{}{} },
			Create:    func(component.Settings, component.Config) (component.Exporter, error) { return nil, nil },
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testExpander() *expander {
	env := map[string]string{"TOKEN": "s3cr3t-token", "PORT": "4317", "EMPTY": ""}
	return &expander{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		readFile: func(p string) ([]byte, error) {
			if p == "/run/secrets/key" {
				return []byte("file-secret-value\n"), nil
			}
			return nil, os.ErrNotExist
		},
	}
}

// TestBadConfigs loads every testdata/*.bad.yaml and compares the reported errors with the
// golden .err file beside it (rewrite with -update).
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs found")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = load(filepath.Base(file), data, testFactories(t), testExpander())
			if err == nil {
				t.Fatal("expected errors, got none")
			}
			got := err.Error() + "\n"
			if strings.Contains(got, "s3cr3t-token") || strings.Contains(got, "file-secret-value") {
				t.Fatalf("secret leaked into errors:\n%s", got)
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("missing golden file (run with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestGoodConfig(t *testing.T) {
	data := []byte(`
receivers:
  fake:
    endpoint: 127.0.0.1:${env:PORT}
    token: ${env:TOKEN}
    limits: {size: "${env:PORT}", timeout: 2s}
  fake/second:
    limits: {timeout: 0}
    token: ${file:/run/secrets/key}
    tags: [{name: a}, {name: "$${literal}"}]
processors:
  tracesonly:
exporters:
  sink:
  sink/2: {}
service:
  pipelines:
    traces:
      receivers: [fake, fake/second]
      processors: [tracesonly]
      exporters: [sink, sink/2]
    metrics/extra:
      receivers: [fake]
      exporters: [sink]
  telemetry:
    metrics:
      readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: 0}}}}]
`)
	cfg, err := load("good.yaml", data, testFactories(t), testExpander())
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Receivers[component.ID{Type: "fake"}].(*fakeRecvConfig)
	if r.Endpoint != "127.0.0.1:4317" || r.Token.Value() != "s3cr3t-token" || r.Limits.Size != 4317 || r.Limits.Timeout != 2*time.Second {
		t.Errorf("fake = %+v", r)
	}
	r2 := cfg.Receivers[component.ID{Type: "fake", Name: "second"}].(*fakeRecvConfig)
	if r2.Endpoint != "127.0.0.1:1" || r2.Token.Value() != "file-secret-value" || r2.Tags[1].Name != "${literal}" {
		t.Errorf("fake/second = %+v (defaults must survive)", r2)
	}
	if p := cfg.Processors[component.ID{Type: "tracesonly"}].(*fakeProcConfig); p.Level != 1 {
		t.Errorf("null block must keep defaults, got %+v", p)
	}
	tp := cfg.Service.Pipelines[PipelineID{Signal: batch.Traces}]
	if len(tp.Receivers) != 2 || len(tp.Exporters) != 2 || tp.Processors[0].Type != "tracesonly" {
		t.Errorf("traces pipeline = %+v", tp)
	}
	if _, ok := cfg.Service.Pipelines[PipelineID{Signal: batch.Metrics, Name: "extra"}]; !ok {
		t.Error("metrics/extra pipeline missing")
	}
	if got := cfg.Service.Telemetry.Metrics.ListenAddress(); got != "127.0.0.1:0" {
		t.Errorf("telemetry address = %q", got)
	}
}

func TestExpandValue(t *testing.T) {
	e := testExpander()
	f := func(in, want string, wantErr bool) {
		t.Helper()
		got, _, err := e.expandValue(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q, err=%v", in, got, err, want, wantErr)
		}
	}
	f("plain", "plain", false)
	f("${env:PORT}", "4317", false)
	f("${PORT}", "4317", false)
	f("Bearer ${env:TOKEN}", "Bearer s3cr3t-token", false)
	f("${env:MISSING:-fallback}", "fallback", false)
	f("${env:EMPTY:-fallback}", "", false)
	f("${env:MISSING}", "", true)
	f("$${env:PORT}", "${env:PORT}", false)
	f("${file:/run/secrets/key}", "file-secret-value", false)
	f("${file:/nope}", "", true)
}

// TestAcknowledgements: the exporter's key wins over the pipeline's, which wins over the
// durable default; the key is taken out before the exporter's own strict decode.
func TestAcknowledgements(t *testing.T) {
	cfg, err := load("acks.yaml", []byte(`
receivers: {fake: {}}
exporters:
  sink: {acknowledgements: none}
  sink/e2e: {acknowledgements: end_to_end}
  sink/plain:
service:
  pipelines:
    traces: {receivers: [fake], exporters: [sink, sink/e2e, sink/plain], acknowledgements: end_to_end}
    metrics: {receivers: [fake], exporters: [sink/plain]}
    metrics/lossy: {receivers: [fake], exporters: [sink]}
`), testFactories(t), testExpander())
	if err != nil {
		t.Fatal(err)
	}
	traces := PipelineID{Signal: batch.Traces}
	metrics := PipelineID{Signal: batch.Metrics}
	lossy := PipelineID{Signal: batch.Metrics, Name: "lossy"}
	for _, c := range []struct {
		pid  PipelineID
		exp  string
		want component.AckMode
	}{
		{traces, "sink", component.AckNone},
		{traces, "sink/e2e", component.AckEndToEnd},
		{traces, "sink/plain", component.AckEndToEnd},
		{metrics, "sink/plain", component.AckDurable},
		{lossy, "sink", component.AckNone},
	} {
		id, _ := component.ParseID(c.exp)
		if got := cfg.AckMode(c.pid, id); got != c.want {
			t.Errorf("%s → %s: %s, want %s", c.pid, c.exp, got, c.want)
		}
	}
	if cfg.AcksNone(traces) || cfg.AcksNone(metrics) || !cfg.AcksNone(lossy) {
		t.Errorf("AcksNone: traces %v metrics %v lossy %v, want false false true", cfg.AcksNone(traces), cfg.AcksNone(metrics), cfg.AcksNone(lossy))
	}
}

func TestTelemetryListenerValidation(t *testing.T) {
	for _, c := range []struct {
		tel  Telemetry
		want string
	}{
		{Telemetry{Metrics: MetricsTelemetry{TLS: &tlsconfig.Server{}}}, "metrics.tls.cert_file: required"},
		{Telemetry{Metrics: MetricsTelemetry{Auth: &server.Auth{}}}, "metrics.auth.bearer_token, tokens, basic or client_certs"},
		{Telemetry{Metrics: MetricsTelemetry{Auth: &server.Auth{ClientCerts: []server.CertAuth{{CommonName: "prometheus"}}}}}, "metrics.auth.client_certs: needs metrics.tls.client_ca_file"},
	} {
		if err := c.tel.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.tel.Metrics, err, c.want)
		}
	}
	ok := Telemetry{Metrics: MetricsTelemetry{Auth: &server.Auth{BearerToken: "t"}}}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
