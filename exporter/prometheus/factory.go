package prometheus

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this exporter.
const Type = "prometheus"

// NewFactory returns the prometheus exporter's factory. It serves metrics only.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Metrics},
		NewConfig: func() component.Config { return NewConfig() },
		Create: component.CreateExporter(func(set component.Settings, c *Config) (*exporter, error) {
			return newExporter(set, c), nil
		}),
	}
}
