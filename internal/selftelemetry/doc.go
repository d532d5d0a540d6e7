// Package selftelemetry is Vigil's view of itself: the standard per-component item counters the
// framework keeps, build info, process and Go metrics, health and readiness, and the listener
// that serves /metrics, /healthz and /readyz.
package selftelemetry
