// Package otlp is the OTLP/gRPC exporter (type "otlp"): it sends batches to any OTLP backend,
// passing encoded requests through as raw bytes so that a relay never decodes what it forwards.
// See README.md for configuration and delivery guarantees.
package otlp
