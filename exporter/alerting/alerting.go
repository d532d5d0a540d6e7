// Package alerting is the exporter that feeds the in-process alerting engine's store
// (alerting/engine, configured by the top-level `alerting` section). It can sit in any metrics
// pipeline next to the exporters that ship the data (`exporters: [prometheusremotewrite,
// alerting]`); it stores only the series the rules select.
package alerting

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promconv"
)

// Type is the name configs use for this exporter.
const Type = "alerting"

// Config translates metrics that did not arrive as Prometheus data (OTLP) with the same
// settings, keys and defaults as the prometheusremotewrite exporter, so that the rules see the
// names the central Prometheus sees.
type Config struct {
	Namespace                     string       `yaml:"namespace"`
	AddMetricSuffixes             bool         `yaml:"add_metric_suffixes"`
	ResourceToTelemetryConversion EnabledBlock `yaml:"resource_to_telemetry_conversion"`
	TargetInfo                    EnabledBlock `yaml:"target_info"`

	engine *engine.Engine
}

// EnabledBlock is an `{enabled: bool}` block.
type EnabledBlock struct {
	Enabled bool `yaml:"enabled"`
}

// NewConfig returns the defaults (those of the prometheusremotewrite exporter).
func NewConfig() *Config {
	return &Config{AddMetricSuffixes: true, TargetInfo: EnabledBlock{Enabled: true}}
}

// Attach gives the exporter the agent's engine; the agent calls it before creating the
// exporter.
func (c *Config) Attach(e *engine.Engine) { c.engine = e }

// NewFactory returns the factory.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Metrics},
		NewConfig: func() component.Config { return NewConfig() },
		Create: component.CreateExporter(func(set component.Settings, c *Config) (*exporter, error) {
			if c.engine == nil {
				return nil, fmt.Errorf("exporter %s: needs the top-level alerting section", set.ID)
			}
			return &exporter{set: set, engine: c.engine, conv: promconv.Settings{
				Namespace:                    c.Namespace,
				AddMetricSuffixes:            c.AddMetricSuffixes,
				PromoteAllResourceAttributes: c.ResourceToTelemetryConversion.Enabled,
				DisableTargetInfo:            !c.TargetInfo.Enabled,
			}}, nil
		}),
	}
}

type exporter struct {
	set    component.Settings
	engine *engine.Engine
	conv   promconv.Settings
}

func (e *exporter) Start(context.Context, component.Host) error { return nil }

func (e *exporter) Shutdown(context.Context) error { return nil }

// Consume appends the batch's selected series to the store: once it returns nil they are in
// the head and its WAL. Series no rule selects are counted sent (the exporter did its job:
// they are not needed); series beyond max_series and samples the head refuses (out of order,
// too old) are counted dropped. A store that fails is a retryable error.
func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	if b.Signal() != batch.Metrics {
		e.set.Counters.Add(component.Dropped, b.Signal(), b.Items())
		return consumererror.NewPermanent(fmt.Errorf("exporter %s: takes metrics only, got %s", e.set.ID, b.Signal()))
	}
	st := e.engine.Store()
	if body, ok := b.PromRW(); ok {
		app, err := st.AppendRW(ctx, body)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			e.set.Counters.Add(component.Dropped, batch.Metrics, b.Items())
			return consumererror.NewPermanent(fmt.Errorf("exporter %s: %w", e.set.ID, err))
		}
		e.count(app.Appended+app.Skipped, app.Refused+app.Invalid)
		return nil
	}
	md, err := b.Metrics()
	if err != nil {
		e.set.Counters.Add(component.Dropped, batch.Metrics, b.Items())
		return consumererror.NewPermanent(fmt.Errorf("exporter %s: %w", e.set.ID, err))
	}
	app := st.Feed(ctx)
	rejected, cerr := promconv.Convert(ctx, md, e.conv, app)
	if err := app.Commit(); err != nil {
		return fmt.Errorf("exporter %s: alerting store: %w", e.set.ID, err)
	}
	if cerr != nil {
		e.set.Logger.Debug("metrics the store cannot hold", "error", cerr, "data_points", rejected)
	}
	e.count(b.Items()-rejected-app.Refused-app.Invalid, rejected+app.Refused+app.Invalid)
	return nil
}

func (e *exporter) count(sent, dropped int) {
	e.set.Counters.Add(component.Sent, batch.Metrics, max(sent, 0))
	e.set.Counters.Add(component.Dropped, batch.Metrics, dropped)
}

// AckPoint implements component.AckPointer.
func (c *Config) AckPoint(component.AckMode) string {
	return "the selected series are in the alerting store's head and written to its WAL (not fsynced)"
}
