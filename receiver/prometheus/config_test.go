package prometheus

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/dns"
	"github.com/prometheus/prometheus/discovery/file"
	"github.com/prometheus/prometheus/discovery/http"
	"github.com/prometheus/prometheus/discovery/kubernetes"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/exporter/debug"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func factories(t *testing.T) component.Factories {
	t.Helper()
	f, err := component.MakeFactories([]component.ReceiverFactory{NewFactory()}, nil,
		[]component.ExporterFactory{debug.NewFactory()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBadConfigs loads every testdata/*.bad.yaml through Vigil's config loader and compares the
// errors (file:line: path: message) with the golden .err file beside it (rewrite with -update).
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs found")
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.Load(filepath.Base(name), data, factories(t))
			if err == nil {
				t.Fatal("expected errors, got none")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(name, ".yaml") + ".err"
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

// TestFullConfig checks that upstream decoded the embedded config: its defaults, global
// overrides and the discovery configs of every supported mechanism.
func TestFullConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("full.yaml", data, factories(t))
	if err != nil {
		t.Fatal(err)
	}
	main := cfg.Receivers[component.ID{Type: Type}].(*Config).PrometheusConfig.Config
	self := cfg.Receivers[component.ID{Type: Type, Name: "self"}].(*Config).PrometheusConfig.Config
	jobs := map[string]*promconfig.ScrapeConfig{}
	for _, sc := range main.ScrapeConfigs {
		jobs[sc.JobName] = sc
	}
	if len(jobs) != 5 {
		t.Fatalf("jobs: %v", jobs)
	}
	st := jobs["static"]
	f := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	f("static interval (global)", st.ScrapeInterval, model.Duration(30*time.Second))
	f("static timeout (global)", st.ScrapeTimeout, model.Duration(5*time.Second))
	f("files interval", jobs["files"].ScrapeInterval, model.Duration(10*time.Second))
	f("honor_labels", st.HonorLabels, true)
	f("honor_timestamps", st.HonorTimestamps, false)
	f("honor_timestamps default", jobs["files"].HonorTimestamps, true)
	f("sample_limit", st.SampleLimit, uint(10000))
	f("target_limit", st.TargetLimit, uint(50))
	f("label_limit", st.LabelLimit, uint(30))
	f("metrics_path default", st.MetricsPath, "/metrics")
	f("scrape_protocols[0]", st.ScrapeProtocols[0], promconfig.PrometheusProto)
	f("native histograms", *st.ScrapeNativeHistograms, true)
	f("relabel replacement", st.RelabelConfigs[0].Replacement, "secondary")
	f("relabel_configs", len(st.RelabelConfigs), 1)
	f("metric_relabel_configs", len(st.MetricRelabelConfigs), 1)
	f("alias into another block", len(self.ScrapeConfigs[0].MetricRelabelConfigs), 1)
	f("alias regex", self.ScrapeConfigs[0].MetricRelabelConfigs[0].Regex.String(), "go_gc_.*")
	for job, want := range map[string]string{"files": "*file.SDConfig", "http": "*http.SDConfig", "dns": "*dns.SDConfig", "kubernetes-pods": "*kubernetes.SDConfig"} {
		sd := jobs[job].ServiceDiscoveryConfigs
		if len(sd) != 1 {
			t.Errorf("%s: %d discovery configs", job, len(sd))
			continue
		}
		var got string
		switch sd[0].(type) {
		case *file.SDConfig:
			got = "*file.SDConfig"
		case *http.SDConfig:
			got = "*http.SDConfig"
		case *dns.SDConfig:
			got = "*dns.SDConfig"
		case *kubernetes.SDConfig:
			got = "*kubernetes.SDConfig"
		}
		f(job+" discovery", got, want)
	}
}

func TestDecodeConfigAlone(t *testing.T) {
	f := func(src string, wantErrs ...string) {
		t.Helper()
		componenttest.CheckErrors(t, src, componenttest.DecodeConfig([]byte(src), NewConfig()), wantErrs...)
	}
	f("config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]}")
	f("config: {scrape_config_files: ['testdata/*.scrape.yml']}")
	f("", "config.scrape_configs: at least one scrape config is required")
	f("config:", "config.scrape_configs: at least one scrape config is required")
	f("scrape_configs: []", "field scrape_configs not found")
	f("config: {scrape_configs: [{job_name: a, scrape_intervall: 1s}]}", "line 1: config.scrape_configs[0].scrape_intervall: field scrape_intervall not found in type config.ScrapeConfig")
	f("config: {scrape_config_files: ['testdata/no-such-file.yml']}") // a glob matching nothing, as in Prometheus
	f("config: {scrape_config_files: ['testdata/*.scrape.bad.yml']}", "field scrape_intervall not found")
}
