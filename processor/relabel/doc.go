// Package relabel is the "relabel" processor: Prometheus metric_relabel_configs, run by the upstream
// model/relabel package, on remote-write series in place (only the series a rule changes are
// re-encoded) and on the data points of OTLP metrics.
package relabel
