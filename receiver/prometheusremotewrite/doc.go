// Package prometheusremotewrite is the prometheusremotewrite receiver: it accepts Prometheus
// remote write 1.0 and 2.0 requests and hands their bodies to metrics pipelines without decoding
// them into pdata.
package prometheusremotewrite
