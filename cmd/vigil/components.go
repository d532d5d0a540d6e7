package main

import (
	alertingexporter "github.com/vigilhq/vigil/exporter/alerting"
	"github.com/vigilhq/vigil/exporter/debug"
	"github.com/vigilhq/vigil/exporter/file"
	lokiexporter "github.com/vigilhq/vigil/exporter/loki"
	otlpexporter "github.com/vigilhq/vigil/exporter/otlp"
	"github.com/vigilhq/vigil/exporter/otlphttp"
	promexporter "github.com/vigilhq/vigil/exporter/prometheus"
	prwexporter "github.com/vigilhq/vigil/exporter/prometheusremotewrite"
	sloexporter "github.com/vigilhq/vigil/exporter/slo"
	"github.com/vigilhq/vigil/internal/component"
	batchprocessor "github.com/vigilhq/vigil/processor/batch"
	"github.com/vigilhq/vigil/processor/k8sattributes"
	"github.com/vigilhq/vigil/processor/memorylimiter"
	"github.com/vigilhq/vigil/processor/relabel"
	"github.com/vigilhq/vigil/processor/serieslimit"
	alertingreceiver "github.com/vigilhq/vigil/receiver/alerting"
	"github.com/vigilhq/vigil/receiver/filelog"
	lokireceiver "github.com/vigilhq/vigil/receiver/loki"
	otlpreceiver "github.com/vigilhq/vigil/receiver/otlp"
	promreceiver "github.com/vigilhq/vigil/receiver/prometheus"
	prwreceiver "github.com/vigilhq/vigil/receiver/prometheusremotewrite"
	syslogreceiver "github.com/vigilhq/vigil/receiver/syslog"
)

// components is the one list of what this binary is built with. Adding a component is one
// package and one line here.
func components() (component.Factories, error) {
	return component.MakeFactories(
		[]component.ReceiverFactory{
			otlpreceiver.NewFactory(),
			promreceiver.NewFactory(),
			prwreceiver.NewFactory(),
			alertingreceiver.NewFactory(),
			lokireceiver.NewFactory(),
			syslogreceiver.NewFactory(),
			filelog.NewFactory(),
		},
		[]component.ProcessorFactory{
			batchprocessor.NewFactory(),
			memorylimiter.NewFactory(),
			relabel.NewFactory(),
			serieslimit.NewFactory(),
			k8sattributes.NewFactory(),
		},
		[]component.ExporterFactory{
			otlpexporter.NewFactory(),
			otlphttp.NewFactory(),
			debug.NewFactory(),
			file.NewFactory(),
			promexporter.NewFactory(),
			prwexporter.NewFactory(),
			alertingexporter.NewFactory(),
			sloexporter.NewFactory(),
			lokiexporter.NewFactory(),
		},
	)
}
