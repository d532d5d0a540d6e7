package debug

import (
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
		Create: component.CreateExporter(func(set component.Settings, c *Config) (component.Exporter, error) {
			return newExporter(set, strings.ToLower(c.Verbosity), c.SamplingInitial, c.SamplingThereafter), nil
		}),
	}
}
