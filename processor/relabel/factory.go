package relabel

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this processor.
const Type = "relabel"

// NewFactory returns the relabel processor's factory.
func NewFactory() component.ProcessorFactory {
	return component.ProcessorFactory{
		Type:    Type,
		Signals: []batch.Signal{batch.Metrics},
		// Rules rewrite data point attributes in place on OTLP data, so fan-out must give this
		// pipeline its own copy. Remote-write bodies are never written to (changed series go
		// into a new body), so for them the copy costs nothing: clones share the bytes.
		MutatesData: true,
		NewConfig:   func() component.Config { return NewConfig() },
		Create: component.CreateProcessor(func(set component.Settings, c *Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
			// Validate again: a config built in code (tests, embedders) has not been through the
			// loader, and upstream's rules need their validation scheme set before use.
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", set.ID, err)
			}
			return newProcessor(set, c, next), nil
		}),
	}
}
