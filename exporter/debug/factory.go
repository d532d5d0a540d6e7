package debug

import (
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this exporter.
const Type = "debug"

// NewFactory returns the debug exporter's factory.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   batch.Signals,
		NewConfig: func() component.Config { return NewConfig() },
		Create: func(set component.Settings, cfg component.Config) (component.Exporter, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("%s: config is %T, want *debug.Config", set.ID, cfg)
			}
			return newExporter(set, strings.ToLower(c.Verbosity), c.SamplingInitial, c.SamplingThereafter), nil
		},
	}
}
