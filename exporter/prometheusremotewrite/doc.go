// Package prometheusremotewrite is the prometheusremotewrite exporter: it sends metrics to
// anything that accepts Prometheus remote write 1.0 or 2.0, sharded by series so that each
// series' samples arrive in order.
package prometheusremotewrite
