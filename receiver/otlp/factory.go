package otlp

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the receiver's type name in config.
const Type = "otlp"

// NewFactory returns the factory for otlp receivers.
func NewFactory() component.ReceiverFactory {
	return component.ReceiverFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Traces, batch.Metrics, batch.Logs},
		NewConfig: func() component.Config { return NewConfig() },
		Create: func(set component.Settings, cfg component.Config, next map[batch.Signal]component.Consumer) (component.Component, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("receiver %s: config is %T, want *otlp.Config", set.ID, cfg)
			}
			return newOTLP(set, c, next)
		},
	}
}
