package prometheus

import (
	"testing"

	"github.com/vigilhq/vigil/internal/componenttest"
)

// FuzzConfig feeds arbitrary YAML to the config decoder, which hands the config block to the
// upstream loader: whatever the input, it must return an error or a config, never panic.
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		"config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]}",
		"config:\n  global: {scrape_interval: 1s}\n  scrape_configs:\n    - job_name: a\n      relabel_configs: [{regex: '(', action: replace}]\n",
		"config:\n  scrape_configs:\n    - &a {job_name: a}\n    - *a\n",
		"config: {alerting: {}, remote_write: [{url: 'http://x'}]}",
		"config: {scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod}]}]}",
		"config: [1, 2]",
		"config: !!binary aGVsbG8=",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := NewConfig()
		if err := componenttest.DecodeConfig(data, cfg); err == nil && cfg.PrometheusConfig.Config == nil {
			t.Fatalf("valid config without a Prometheus config: %q", data)
		}
	})
}
