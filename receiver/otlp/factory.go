package otlp

import (
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
		Create:    component.CreateReceiver(newOTLP),
	}
}
