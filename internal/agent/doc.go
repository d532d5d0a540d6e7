// Package agent runs a loaded config: it builds the pipeline graph, serves self-telemetry and
// health, starts everything downstream-first and, on a signal or a fatal component error, drains
// and stops everything within a grace period.
package agent
