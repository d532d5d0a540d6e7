package serieslimit

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this processor.
const Type = "series_limit"

// NewFactory returns the series limit's factory. Each pipeline gets its own instance, so the
// limit is per pipeline.
func NewFactory() component.ProcessorFactory {
	return component.ProcessorFactory{
		Type:    Type,
		Signals: []batch.Signal{batch.Metrics},
		// Dropping series goes into a new remote-write body, or through MutableMetrics, which
		// copies data shared with other branches first; most batches pass untouched, so a copy
		// made up front by fan-out would be wasted.
		MutatesData: false,
		NewConfig:   func() component.Config { return NewConfig() },
		Create: component.CreateProcessor(func(set component.Settings, c *Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", set.ID, err)
			}
			return newLimiter(set, c, next), nil
		}),
	}
}
