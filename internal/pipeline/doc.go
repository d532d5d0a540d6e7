// Package pipeline turns a config into running components: per-signal pipelines, fan-in from
// receivers, a lock-free ring and workers in front of each pipeline's processors, fan-out to
// exporters with the clone rules, start downstream-first and stop upstream-first with draining.
package pipeline
