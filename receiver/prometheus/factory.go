package prometheus

import (
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the receiver's type name in config.
const Type = "prometheus"

// NewFactory returns the factory for prometheus receivers.
func NewFactory() component.ReceiverFactory {
	return component.ReceiverFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Metrics},
		NewConfig: func() component.Config { return NewConfig() },
		Create:    component.CreateReceiver(newReceiver),
	}
}
