package otlphttp

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the exporter's type name in config.
const Type = "otlphttp"

// NewFactory returns the factory for OTLP/HTTP exporters of all three signals.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   batch.Signals,
		NewConfig: func() component.Config { return NewConfig() },
		Create:    component.CreateExporter(newExporter),
	}
}
