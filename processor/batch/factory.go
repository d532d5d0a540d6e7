package batchprocessor

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this processor.
const Type = "batch"

// NewFactory returns the batch processor's factory. Each pipeline gets its own instance.
func NewFactory() component.ProcessorFactory {
	return component.ProcessorFactory{
		Type:    Type,
		Signals: batch.Signals,
		// Joining moves items between batches, but only through the Mutable accessors, which copy
		// shared data first: branches that share a batch with this one never see a change.
		MutatesData: false,
		Buffers:     true,
		NewConfig:   func() component.Config { return NewConfig() },
		Create: component.CreateProcessor(func(set component.Settings, c *Config, sig batch.Signal, next component.Consumer) (component.Processor, error) {
			return newProcessor(set, c, sig, next), nil
		}),
	}
}
