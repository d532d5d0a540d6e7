// Package debug is the "debug" exporter: it writes what reaches it to Vigil's own log, one line
// per batch (basic), per item (normal) or the full OTLP/JSON (detailed), for trying pipelines out.
package debug
