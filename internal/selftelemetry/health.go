package selftelemetry

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"
)

// Health tracks whether the agent is alive and ready, and why not.
type Health struct {
	mu       sync.Mutex
	ready    bool
	stopping bool
	problems map[string]string // fatal: component → what is wrong
	degraded map[string]string // not ready, still alive: component → what is wrong
}

// NewHealth starts not ready.
func NewHealth() *Health {
	return &Health{problems: map[string]string{}, degraded: map[string]string{}}
}

// SetReady marks every pipeline started (true) or not.
func (h *Health) SetReady(ready bool) {
	h.mu.Lock()
	h.ready = ready
	h.mu.Unlock()
}

// SetStopping marks the agent as shutting down: no longer ready.
func (h *Health) SetStopping() {
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
}

// Report records (err != nil) or clears (err == nil) a component's problem.
func (h *Health) Report(component string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.problems, component)
		return
	}
	h.problems[component] = err.Error()
}

// Degrade records (err != nil) or clears (nil) a component's non-fatal problem: the agent is
// alive but should not get traffic it cannot pass on.
func (h *Health) Degrade(component string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.degraded, component)
		return
	}
	h.degraded[component] = err.Error()
}

type status struct {
	Status     string            `json:"status"`
	Components map[string]string `json:"components,omitempty"`
	Degraded   map[string]string `json:"degraded,omitempty"`
}

func (h *Health) write(w http.ResponseWriter, ok bool, state string) {
	h.mu.Lock()
	s := status{Status: state}
	if len(h.problems) > 0 {
		s.Components = maps.Clone(h.problems)
	}
	if len(h.degraded) > 0 {
		s.Degraded = maps.Clone(h.degraded)
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(s)
}

// Healthz answers 200 while no component reported a fatal problem; degraded components are
// listed but keep it 200, since restarting the agent would not fix a backend outage.
func (h *Health) Healthz(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	ok := len(h.problems) == 0
	h.mu.Unlock()
	if ok {
		h.write(w, true, "ok")
		return
	}
	h.write(w, false, "unhealthy")
}

// Readyz answers 200 only once every pipeline started and until shutdown begins.
func (h *Health) Readyz(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	ok := h.ready && !h.stopping && len(h.problems) == 0 && len(h.degraded) == 0
	state := "ready"
	switch {
	case h.stopping:
		state = "stopping"
	case !h.ready:
		state = "starting"
	case len(h.problems) > 0:
		state = "unhealthy"
	case !ok:
		state = "degraded"
	}
	h.mu.Unlock()
	h.write(w, ok, state)
}
