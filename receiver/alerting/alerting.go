// Package alerting is the receiver of what the in-process alerting engine writes: recording
// rules' results and the ALERTS and ALERTS_FOR_STATE series, one remote-write batch per rule
// group evaluation, so that a metrics pipeline exports them (`receivers: [alerting]`), as
// Prometheus remote-writes what its rules record.
package alerting

import (
	"context"
	"fmt"
	"sync"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Type is the name configs use for this receiver.
const Type = "alerting"

// Config has no settings: what the rules write is set in the alerting section.
type Config struct {
	engine *engine.Engine
}

// NewConfig returns the (empty) config.
func NewConfig() *Config { return &Config{} }

// Attach gives the receiver the agent's engine; the agent calls it before creating the receiver.
func (c *Config) Attach(e *engine.Engine) { c.engine = e }

// NewFactory returns the factory.
func NewFactory() component.ReceiverFactory {
	return component.ReceiverFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Metrics},
		NewConfig: func() component.Config { return NewConfig() },
		Create: component.CreateReceiver(func(set component.Settings, c *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
			if c.engine == nil {
				return nil, fmt.Errorf("receiver %s: needs the top-level alerting section", set.ID)
			}
			return &receiver{set: set, engine: c.engine, next: next[batch.Metrics]}, nil
		}),
	}
}

type receiver struct {
	set    component.Settings
	engine *engine.Engine
	next   component.Consumer

	mu     sync.Mutex
	remove func()
}

// Start subscribes to the engine's results.
func (r *receiver) Start(context.Context, component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remove == nil && r.next != nil {
		r.remove = r.engine.AddOutput(r.next.Consume)
	}
	return nil
}

// Shutdown unsubscribes; evaluations from then on are kept in the store only.
func (r *receiver) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remove != nil {
		r.remove()
		r.remove = nil
	}
	return nil
}
