package file

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this exporter.
const Type = "file"

// NewFactory returns the file exporter's factory.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   batch.Signals,
		NewConfig: func() component.Config { return NewConfig() },
		Create:    component.CreateExporter(newExporter),
	}
}
