package k8sattributes

import (
	"fmt"
	"log/slog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this processor.
const Type = "k8s_attributes"

// NewFactory returns the k8s_attributes processor's factory.
func NewFactory() component.ProcessorFactory { return factory(newWatcher) }

func factory(newW func(*Config, *slog.Logger) (watcher, error)) component.ProcessorFactory {
	return component.ProcessorFactory{
		Type:    Type,
		Signals: []batch.Signal{batch.Traces, batch.Metrics, batch.Logs},
		// Resource attributes are added in place: a fanned-out batch must be this pipeline's own.
		MutatesData: true,
		NewConfig:   func() component.Config { return NewConfig() },
		Create: component.CreateProcessor(func(set component.Settings, c *Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", set.ID, err)
			}
			return newProcessor(set, c, next, newW)
		}),
	}
}
