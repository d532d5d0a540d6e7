package relabel

import (
	"testing"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"

	"github.com/vigilhq/vigil/internal/componenttest"
)

// load decodes a testdata file the way the config loader does: strictly, over the defaults.
func load(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := NewConfig()
	return cfg, componenttest.LoadConfig(t, name, cfg)
}

func TestConfigErrors(t *testing.T) {
	f := func(name string, wantErrs ...string) {
		t.Helper()
		_, err := load(t, name)
		componenttest.CheckErrors(t, name, err, wantErrs...)
	}
	f("rules.yaml")
	f("legacy.yaml")
	f("empty.yaml")
	f("unknown-action.bad.yaml", `unknown relabel action "explode"`)
	f("missing-target.bad.yaml",
		"metric_relabel_configs[1] (action replace): relabel configuration for replace action requires 'target_label' value",
		"metric_relabel_configs[2] (action hashmod): relabel configuration for hashmod requires non-zero modulus")
	f("bad-regex.bad.yaml", "missing closing )")
	f("unknown-field.bad.yaml", "field regexp not found")
	f("utf8-target-legacy.bad.yaml",
		`metric_relabel_configs[0] (action replace): "service.name" is invalid 'target_label'`,
		"metric_relabel_configs[1]: empty rule")
	f("bad-scheme.bad.yaml", `unrecognized ValidationScheme: "ascii"`)
	f("equal-extra-field.bad.yaml", "metric_relabel_configs[0] (action keepequal): keepequal action requires only 'source_labels' and `target_label`")
}

// TestConfigDefaults checks that each rule got upstream's defaults, which only upstream's own
// YAML unmarshalling sets, and its validation scheme.
func TestConfigDefaults(t *testing.T) {
	cfg, err := load(t, "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.MetricRelabelConfigs) != 3 {
		t.Fatalf("%d rules, want 3", len(cfg.MetricRelabelConfigs))
	}
	f := func(i int, action promrelabel.Action, sep, regex, repl, target string) {
		t.Helper()
		rc := cfg.MetricRelabelConfigs[i]
		if rc.Action != action || rc.Separator != sep || rc.Regex.String() != regex || rc.Replacement != repl || rc.TargetLabel != target {
			t.Errorf("rule %d = {action %q sep %q regex %q replacement %q target %q}, want {%q %q %q %q %q}", i,
				rc.Action, rc.Separator, rc.Regex.String(), rc.Replacement, rc.TargetLabel, action, sep, regex, repl, target)
		}
		if rc.NameValidationScheme != model.UTF8Validation {
			t.Errorf("rule %d: validation scheme %v, want utf8 (Prometheus 3's default)", i, rc.NameValidationScheme)
		}
	}
	f(0, promrelabel.Drop, ";", "go_gc_.*", "$1", "")
	f(1, promrelabel.Replace, "/", "(.*)", "$1", "workload")
	f(2, promrelabel.LabelDrop, ";", "tmp_.*", "$1", "")
	// Anchored like Prometheus: the regex must match the whole value.
	if re := cfg.MetricRelabelConfigs[0].Regex; !re.MatchString("go_gc_cycles") || re.MatchString("x_go_gc_cycles") {
		t.Error("regex is not anchored")
	}

	legacy, err := load(t, "legacy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := legacy.MetricRelabelConfigs[0].NameValidationScheme; s != model.LegacyValidation {
		t.Errorf("legacy.yaml: rule scheme %v, want legacy", s)
	}
}
