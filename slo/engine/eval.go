// Package engine evaluates SLOs in the agent: error ratios and burn rates over the windows of
// the SLO's policy, read from its per-minute counts; page and ticket alerts with the
// multi-window, multi-burn-rate conditions, held back below a minimum of events; and a
// no-data alert when the events stop. Time comes from the caller, so tests drive it by the
// minute.
package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil/slo/counts"
	"github.com/vigilhq/vigil/slo/spec"
	"github.com/vigilhq/vigil/slo/windows"
)

// Options apply to every SLO.
type Options struct {
	// Policy names the burn-rate windows (windows.Policies).
	Policy string
	// MinEvents is the least number of events an alert condition's long window needs for the
	// condition to hold: below it, a few errors in little traffic do not page.
	MinEvents float64
	// NoDataAfter raises SLONoData when no event has arrived for this long; 0 turns it off.
	NoDataAfter time.Duration
	// ResendDelay is how often a firing alert is sent again (and a resolved one, for
	// ResolvedRetention).
	ResendDelay time.Duration
}

// Defaults of Options.
const (
	DefaultMinEvents   = 100
	DefaultNoDataAfter = 15 * time.Minute
	DefaultResendDelay = time.Minute
	// ResolvedRetention is how long a resolved alert is still sent, as Prometheus does, so
	// that a receiver that missed the first resolved notification gets another.
	ResolvedRetention = 15 * time.Minute
)

// NoDataAlert is the name of the alert raised when an SLO's events stop.
const NoDataAlert = "SLONoData"

// State of an alert.
type State int

// The states, as Prometheus names them.
const (
	Inactive State = iota
	Pending
	Firing
)

func (s State) String() string { return [...]string{"inactive", "pending", "firing"}[s] }

// Alert is one alert of an SLO: a burn-rate condition (one per window pair, label window the
// long one) or no data.
type Alert struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	State       State
	ActiveAt    time.Time
	FiredAt     time.Time
	ResolvedAt  time.Time // set once resolved (State Inactive)
	LastSentAt  time.Time
	Value       float64 // the long window's burn rate; for no data, the minutes without events
}

// SLO is one SLO's counts and alert state.
type SLO struct {
	Spec    *spec.SLO
	Ring    *counts.Ring
	Windows []windows.Window
	opts    Options
	since   time.Time // tracking started: no-data counts from here
	alerts  map[string]*Alert
}

// NewSLO starts tracking s at now.
func NewSLO(s *spec.SLO, o Options, now time.Time) (*SLO, error) {
	if s.Window == 0 {
		s.Window = spec.DefaultWindow
	}
	ws, err := windows.For(o.Policy, s)
	if err != nil {
		return nil, fmt.Errorf("slo %q: %w", s.Name, err)
	}
	for _, w := range ws {
		if w.Long > s.Window {
			return nil, fmt.Errorf("slo %q: alert window %s is longer than the SLO's window %s", s.Name, model.Duration(w.Long), model.Duration(s.Window))
		}
	}
	if o.ResendDelay <= 0 {
		o.ResendDelay = DefaultResendDelay
	}
	return &SLO{Spec: s, Ring: counts.New(s.Window), Windows: ws, opts: o, since: now, alerts: map[string]*Alert{}}, nil
}

// WindowStatus is the SLI over one window.
type WindowStatus struct {
	Window     time.Duration
	Bad, Total float64
	// Ratio is bad / total, NaN without events; Burn is Ratio / error budget.
	Ratio, Burn float64
}

// Status is an SLO's state at one time.
type Status struct {
	Windows []WindowStatus // the policy's windows, shortest first
	Period  WindowStatus   // the whole SLO window
	// BudgetRemaining is 1 − the period's burn rate: 1 untouched, 0 spent, below 0 overspent.
	BudgetRemaining float64
}

// Status computes the ratios of every window at now.
func (s *SLO) Status(now time.Time) Status {
	budget := s.Spec.ErrorBudget()
	ws := func(w time.Duration) WindowStatus {
		bad, total := s.Ring.Sum(now, w)
		st := WindowStatus{Window: w, Bad: bad, Total: total, Ratio: math.NaN(), Burn: math.NaN()}
		if total > 0 {
			st.Ratio = bad / total
			st.Burn = st.Ratio / budget
		}
		return st
	}
	var out Status
	for _, w := range windows.Durations(s.Windows) {
		out.Windows = append(out.Windows, ws(w))
	}
	out.Period = ws(s.Spec.Window)
	out.BudgetRemaining = 1 - out.Period.Burn
	if math.IsNaN(out.BudgetRemaining) {
		out.BudgetRemaining = 1 // no events: nothing spent
	}
	return out
}

func (st *Status) window(w time.Duration) WindowStatus {
	for _, x := range st.Windows {
		if x.Window == w {
			return x
		}
	}
	return WindowStatus{Window: w, Ratio: math.NaN(), Burn: math.NaN()}
}

// Evaluate updates the alerts at now. It returns the alerts that are pending or firing, and
// those to send now: newly firing or resolved ones, and the rest again every ResendDelay
// (resolved ones for ResolvedRetention).
func (s *SLO) Evaluate(now time.Time) (active, send []Alert) {
	active, send, _ = s.evaluate(now)
	return active, send
}

// evaluate is Evaluate, also returning the status it computed on the way.
func (s *SLO) evaluate(now time.Time) (active, send []Alert, st Status) {
	st = s.Status(now)
	for _, w := range s.Windows {
		if s.alertOff(w.Severity) {
			continue
		}
		long, short := st.window(w.Long), st.window(w.Short)
		holds := long.Total >= s.opts.MinEvents && long.Total > 0 && long.Burn > w.Factor && short.Burn > w.Factor
		key := w.Severity + "/" + model.Duration(w.Long).String()
		s.step(key, holds, w.For, now, func() *Alert { return s.burnAlert(w) }, long.Burn, &st)
	}
	if s.opts.NoDataAfter > 0 {
		_, total := s.Ring.Sum(now, s.opts.NoDataAfter)
		holds := total == 0 && now.Sub(s.since) >= s.opts.NoDataAfter
		s.step("nodata", holds, 0, now, s.noDataAlert, s.opts.NoDataAfter.Minutes(), &st)
	}
	keys := make([]string, 0, len(s.alerts))
	for k := range s.alerts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		a := s.alerts[k]
		switch {
		case a.State != Inactive:
			active = append(active, *a)
			if a.State == Firing && (a.LastSentAt.IsZero() || now.Sub(a.LastSentAt) >= s.opts.ResendDelay || a.LastSentAt.Before(a.FiredAt)) {
				a.LastSentAt = now
				send = append(send, *a)
			}
		case now.Sub(a.ResolvedAt) > ResolvedRetention:
			delete(s.alerts, k)
		case a.LastSentAt.Before(a.ResolvedAt) || now.Sub(a.LastSentAt) >= s.opts.ResendDelay:
			if !a.FiredAt.IsZero() { // a pending alert that went away was never sent
				a.LastSentAt = now
				send = append(send, *a)
			}
		}
	}
	return active, send, st
}

// step moves one alert's state machine by the condition at now.
func (s *SLO) step(key string, holds bool, hold time.Duration, now time.Time, mk func() *Alert, value float64, st *Status) {
	a := s.alerts[key]
	if holds {
		if a == nil || a.State == Inactive {
			a = mk()
			a.State, a.ActiveAt = Pending, now
			s.alerts[key] = a
		}
		if a.State == Pending && now.Sub(a.ActiveAt) >= hold {
			a.State, a.FiredAt = Firing, now
		}
		a.Value = value
		s.annotate(a, st)
		return
	}
	if a == nil || a.State == Inactive {
		return
	}
	if a.State == Pending {
		delete(s.alerts, key)
		return
	}
	a.State, a.ResolvedAt = Inactive, now
	s.annotate(a, st)
}

func (s *SLO) alertOff(severity string) bool {
	if severity == "page" {
		return s.Spec.Alerting.PageAlert.Disable
	}
	return s.Spec.Alerting.TicketAlert.Disable
}

// baseLabels identify the SLO: Vigil's and Sloth's names for the same things.
func (s *SLO) baseLabels() map[string]string {
	return map[string]string{
		"slo": s.Spec.Name, "service": s.Spec.Service,
		"sloth_id": s.Spec.ID, "sloth_service": s.Spec.Service, "sloth_slo": s.Spec.Name,
	}
}

func (s *SLO) burnAlert(w windows.Window) *Alert {
	a := s.Spec.Alerting.PageAlert
	if w.Severity == "ticket" {
		a = s.Spec.Alerting.TicketAlert
	}
	labels := merge(s.Spec.Alerting.Labels, a.Labels, s.baseLabels(), map[string]string{
		"severity": w.Severity, "sloth_severity": w.Severity, "window": model.Duration(w.Long).String(),
	})
	if v, ok := a.Labels["severity"]; ok { // the spec's routing label wins, as in Sloth's output
		labels["severity"] = v
	}
	ann := merge(map[string]string{
		"summary": fmt.Sprintf("%s %s SLO error budget burn rate is over expected.", s.Spec.Service, s.Spec.Name),
		"title":   fmt.Sprintf("(%s) %s %s SLO error budget burn rate is too fast.", w.Severity, s.Spec.Service, s.Spec.Name),
		"windows": fmt.Sprintf("%s and %s above %s×", model.Duration(w.Long), model.Duration(w.Short), strconv.FormatFloat(w.Factor, 'g', 4, 64)),
	}, s.Spec.Alerting.Annotations, a.Annotations)
	return &Alert{Name: s.Spec.Alerting.Name, Labels: labels, Annotations: ann}
}

func (s *SLO) noDataAlert() *Alert {
	return &Alert{
		Name:   NoDataAlert,
		Labels: merge(s.baseLabels(), map[string]string{"severity": "ticket", "sloth_severity": "ticket"}),
		Annotations: map[string]string{
			"summary": fmt.Sprintf("%s %s SLO has had no events for %s.", s.Spec.Service, s.Spec.Name, model.Duration(s.opts.NoDataAfter)),
		},
	}
}

// annotate writes the burn rate and the budget left into the alert's annotations.
func (s *SLO) annotate(a *Alert, st *Status) {
	if a.Name != NoDataAlert {
		a.Annotations["burn_rate"] = strconv.FormatFloat(a.Value, 'f', 2, 64)
	}
	a.Annotations["error_budget_remaining"] = strconv.FormatFloat(st.BudgetRemaining*100, 'f', 2, 64) + "%"
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
