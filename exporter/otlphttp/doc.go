// Package otlphttp is the OTLP/HTTP exporter (type "otlphttp"): it POSTs batches to
// /v1/traces, /v1/metrics and /v1/logs of any OTLP backend, as protobuf (encoded requests pass
// through untouched) or JSON. See README.md for configuration and delivery guarantees.
package otlphttp
