package otlp

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the exporter's type name in config.
const Type = "otlp"

// NewFactory returns the factory for OTLP/gRPC exporters of all three signals.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   batch.Signals,
		NewConfig: func() component.Config { return NewConfig() },
		Create: func(set component.Settings, cfg component.Config) (component.Exporter, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("exporter %s: config is %T, want *otlp.Config", set.ID, cfg)
			}
			return newExporter(set, c)
		},
	}
}
