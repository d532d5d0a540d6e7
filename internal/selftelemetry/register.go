package selftelemetry

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers a component's own collector with reg (which may be nil) and returns the
// collector to use: c, or the one already registered under the same description when a
// component with the same ID registered it before (a restart, a lifecycle test).
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}

// Running is the set of collectors a component registered for as long as it runs (see
// RegisterRunning), so that an instance that is built but never started leaves no series behind.
type Running struct {
	reg prometheus.Registerer
	cs  []prometheus.Collector
}

// RegisterRunning registers cs with reg (nil: nothing is registered). A collector that cannot be
// registered is logged and left out: metrics are an aid, not a reason to refuse to run.
func RegisterRunning(reg prometheus.Registerer, log *slog.Logger, cs ...prometheus.Collector) *Running {
	r := &Running{reg: reg}
	if reg == nil {
		return r
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			if log != nil {
				log.Warn("cannot register metric", "error", err)
			}
			continue
		}
		r.cs = append(r.cs, c)
	}
	return r
}

// Unregister removes what RegisterRunning registered; safe on nil and twice.
func (r *Running) Unregister() {
	if r == nil {
		return
	}
	for _, c := range r.cs {
		r.reg.Unregister(c)
	}
	r.cs = nil
}
