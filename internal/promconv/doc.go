// Package promconv converts between Prometheus data and Vigil's batches: an upstream
// storage.AppenderV2 that writes remote-write 1.0 bodies (what the scrape loop and the OTLP
// translator append to), OTLP → remote write through the upstream translator, and remote write →
// OTLP following the OpenTelemetry specification's Prometheus compatibility rules.
package promconv
