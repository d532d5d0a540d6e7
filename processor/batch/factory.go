package batchprocessor

import (
	"fmt"

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
		Create: func(set component.Settings, cfg component.Config, sig batch.Signal, next component.Consumer) (component.Processor, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("%s: config is %T, want *batchprocessor.Config", set.ID, cfg)
			}
			return newProcessor(set, c, sig, next), nil
		},
	}
}
