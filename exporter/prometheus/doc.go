// Package prometheus is the "prometheus" exporter: a pull endpoint that serves the latest value of
// every metric series that flowed through it at /metrics, named by the OpenTelemetry
// specification's Prometheus compatibility rules, and forgets series not updated for a while.
package prometheus
