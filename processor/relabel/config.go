package relabel

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
)

// Config is the relabel processor's configuration. Each rule is decoded by the upstream
// relabel.Config's own YAML unmarshalling, so defaults (action replace, separator ";", regex
// "(.*)" anchored, replacement "$1") and validation are exactly Prometheus's.
type Config struct {
	// MetricRelabelConfigs are the rules, applied in order, as in a scrape config's
	// metric_relabel_configs.
	MetricRelabelConfigs []*promrelabel.Config `yaml:"metric_relabel_configs"`
	// MetricNameValidationScheme is how target label names are checked: "utf8" (Prometheus 3's
	// default) or "legacy" ([a-zA-Z_][a-zA-Z0-9_]*). Same key as Prometheus's scrape config.
	MetricNameValidationScheme model.ValidationScheme `yaml:"metric_name_validation_scheme"`
}

// NewConfig returns a configuration with no rules, which passes everything through.
func NewConfig() *Config { return &Config{} }

// scheme is the effective validation scheme: Prometheus 3's default when unset.
func (c *Config) scheme() model.ValidationScheme {
	if c.MetricNameValidationScheme == model.UnsetValidation {
		return model.UTF8Validation
	}
	return c.MetricNameValidationScheme
}

// Validate checks every rule with upstream's Validate and reports each problem with the rule's
// index. It also settles each rule's name validation scheme, which upstream leaves to its caller.
func (c *Config) Validate() error {
	var errs []error
	for i, rc := range c.MetricRelabelConfigs {
		if rc == nil {
			errs = append(errs, fmt.Errorf("metric_relabel_configs[%d]: empty rule (a bare '-' in the list?)", i))
			continue
		}
		if err := rc.Validate(c.scheme()); err != nil {
			errs = append(errs, fmt.Errorf("metric_relabel_configs[%d] (action %s): %w", i, rc.Action, err))
		}
	}
	return errors.Join(errs...)
}
