// Package slo is the exporter that counts spans and logs for the SLOs of the top-level `slos`
// section (slo/engine): it sits in trace and log pipelines beside the exporters that ship the
// data (`exporters: [otlp, slo]`) and hands each batch's matching records to the SLOs' counts.
package slo

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	sloengine "github.com/vigilhq/vigil/slo/engine"
)

// Type is the name configs use for this exporter.
const Type = "slo"

// Config has no settings: what counts is in each SLO's SLI.
type Config struct {
	engine *sloengine.Engine
}

// Attach gives the exporter the agent's SLO engine; the agent calls it before creating it.
func (c *Config) Attach(e *sloengine.Engine) { c.engine = e }

// NewFactory returns the factory.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Traces, batch.Logs},
		NewConfig: func() component.Config { return &Config{} },
		Create: component.CreateExporter(func(set component.Settings, c *Config) (*exporter, error) {
			if c.engine == nil {
				return nil, fmt.Errorf("exporter %s: needs the top-level slos section", set.ID)
			}
			return &exporter{set: set, engine: c.engine}, nil
		}),
	}
}

type exporter struct {
	set    component.Settings
	engine *sloengine.Engine
}

func (e *exporter) Start(context.Context, component.Host) error { return nil }
func (e *exporter) Shutdown(context.Context) error              { return nil }

// Consume counts the batch; once it returns, the events are in the SLOs' counts.
func (e *exporter) Consume(_ context.Context, b *batch.Batch) error {
	switch b.Signal() {
	case batch.Traces:
		td, err := b.Traces()
		if err != nil {
			e.set.Counters.Add(component.Dropped, b.Signal(), b.Items())
			return consumererror.NewPermanent(fmt.Errorf("exporter %s: %w", e.set.ID, err))
		}
		e.engine.ConsumeTraces(td)
	case batch.Logs:
		ld, err := b.Logs()
		if err != nil {
			e.set.Counters.Add(component.Dropped, b.Signal(), b.Items())
			return consumererror.NewPermanent(fmt.Errorf("exporter %s: %w", e.set.ID, err))
		}
		e.engine.ConsumeLogs(ld)
	default:
		e.set.Counters.Add(component.Dropped, b.Signal(), b.Items())
		return consumererror.NewPermanent(fmt.Errorf("exporter %s: takes traces and logs, got %s", e.set.ID, b.Signal()))
	}
	e.set.Counters.Add(component.Sent, b.Signal(), b.Items())
	return nil
}

// AckPoint implements component.AckPointer.
func (c *Config) AckPoint(component.AckMode) string {
	return "the events are in the SLOs' per-minute counts (written to state_dir every minute and at shutdown: a crash loses at most the last minute's)"
}
