package engine

import (
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/common/model"
)

// SLOStatus is one SLO in /api/v1/slos.
type SLOStatus struct {
	ID                   string             `json:"id"`
	Service              string             `json:"service"`
	Name                 string             `json:"name"`
	Description          string             `json:"description,omitempty"`
	Objective            float64            `json:"objective"`
	Window               string             `json:"window"`
	SLI                  string             `json:"sli"`
	Events               float64            `json:"events"`
	BadEvents            float64            `json:"badEvents"`
	ErrorBudgetRemaining float64            `json:"errorBudgetRemaining"`
	ErrorRatios          map[string]float64 `json:"errorRatios"`
	BurnRates            map[string]float64 `json:"burnRates"`
	Alerts               []APIAlert         `json:"alerts"`
}

// APIAlert is an active alert of an SLO.
type APIAlert struct {
	Name        string            `json:"name"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       float64           `json:"value"`
}

// Register serves GET /api/v1/slos.
func (e *Engine) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/slos", e.serveSLOs)
}

func (e *Engine) serveSLOs(w http.ResponseWriter, _ *http.Request) {
	now := e.now()
	out := make([]SLOStatus, 0, len(e.slos))
	for _, en := range e.slos {
		en.mu.Lock()
		st := en.Status(now)
		var alerts []APIAlert
		for _, a := range en.alerts {
			if a.State != Inactive {
				alerts = append(alerts, APIAlert{Name: a.Name, State: a.State.String(), Labels: a.Labels, Annotations: a.Annotations, ActiveAt: a.ActiveAt, Value: finite(a.Value)})
			}
		}
		en.mu.Unlock()
		s := en.Spec
		ss := SLOStatus{ID: s.ID, Service: s.Service, Name: s.Name, Description: s.Description, Objective: s.Objective,
			Window: model.Duration(s.Window).String(), SLI: s.SLI.Kind(), Events: st.Period.Total, BadEvents: st.Period.Bad,
			ErrorBudgetRemaining: finite(st.BudgetRemaining), ErrorRatios: map[string]float64{}, BurnRates: map[string]float64{},
			Alerts: alerts}
		if ss.Alerts == nil {
			ss.Alerts = []APIAlert{}
		}
		for _, ws := range append(st.Windows, st.Period) {
			if !math.IsNaN(ws.Ratio) {
				k := model.Duration(ws.Window).String()
				ss.ErrorRatios[k], ss.BurnRates[k] = ws.Ratio, ws.Burn
			}
		}
		out = append(out, ss)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"slos": out}})
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
