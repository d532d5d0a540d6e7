package prometheusremotewrite

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the exporter's type name in config.
const Type = "prometheusremotewrite"

// NewFactory returns the factory for prometheusremotewrite exporters.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Metrics},
		NewConfig: func() component.Config { return NewConfig() },
		Create:    component.CreateExporter(newExporter),
	}
}
