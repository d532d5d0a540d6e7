package engine

import (
	"math"
	"testing"
	"time"

	"github.com/vigilhq/vigil/slo/spec"
)

// The alert times below follow from the arithmetic of a 99.9% objective over 30 days, with
// Google's windows (page: 1h and 5m over 14.4×, 6h and 30m over 6×; ticket: 1d and 2h over 3×,
// 3d and 6h over 1×), steady traffic of 1000 events a minute and three clean days before the
// errors start. Each minute's events are counted, then the SLO is evaluated at the end of
// that minute; "after k minutes" means after k minutes of errors.

const perMinute = 1000

type sim struct {
	t     *testing.T
	slo   *SLO
	start time.Time
	k     int // minutes simulated
}

func newSim(t *testing.T, objective float64, o Options) *sim {
	t.Helper()
	return newSimOver(t, objective, 0, o)
}

// newSimOver is newSim for an SLO window of period (0: the default 30 days).
func newSimOver(t *testing.T, objective float64, period time.Duration, o Options) *sim {
	t.Helper()
	s := &spec.SLO{ID: "svc-api", Service: "svc", Name: "api", Objective: objective, Window: period,
		SLI: spec.SLI{Spans: &spec.Spans{Service: "svc"}}, Alerting: spec.Alerting{Name: "APIBudgetBurn"}}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	slo, err := NewSLO(s, o, start)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, slo: slo, start: start}
}

// minute counts one minute of total events, bad of them, and evaluates at its end.
func (s *sim) minute(bad, total float64) (active, send []Alert) {
	at := s.start.Add(time.Duration(s.k) * time.Minute)
	s.slo.Ring.Add(at.Add(30*time.Second), at.Add(30*time.Second), bad, total)
	s.k++
	return s.slo.Evaluate(at.Add(59 * time.Second))
}

// clean runs n minutes without errors and fails on any alert.
func (s *sim) clean(n int) {
	for range n {
		if active, _ := s.minute(0, perMinute); len(active) > 0 {
			s.t.Fatalf("minute %d of clean traffic: %+v", s.k, active)
		}
	}
}

// until runs minutes with errors (a share of perMinute) until an alert with the given label
// severity and window is firing, for at most limit minutes; it returns after how many.
func (s *sim) until(errShare float64, severity, window string, limit int) (int, Alert) {
	s.t.Helper()
	for m := 1; m <= limit; m++ {
		active, _ := s.minute(errShare*perMinute, perMinute)
		for _, a := range active {
			if a.State == Firing && a.Labels["sloth_severity"] == severity && a.Labels["window"] == window {
				return m, a
			}
		}
	}
	return -1, Alert{}
}

func within(t *testing.T, what string, got, want, tolerance int) {
	t.Helper()
	if got < 0 || math.Abs(float64(got-want)) > float64(tolerance) {
		t.Errorf("%s after %d minutes, want %d ± %d", what, got, want, tolerance)
	}
}

func defaults() Options { return Options{MinEvents: DefaultMinEvents, NoDataAfter: DefaultNoDataAfter} }

// TestTotalOutagePagesAtOnce: 100% errors. The 5m and 1h windows cross 1.44% in the first
// minute (1000/5000 and 1000/60000): a page within the 5m window's reach.
func TestTotalOutagePagesAtOnce(t *testing.T) {
	s := newSim(t, 99.9, defaults())
	s.clean(3 * 24 * 60)
	m, a := s.until(1, "page", "1h", 5)
	within(t, "the page", m, 1, 0)
	if a.Labels["slo"] != "api" || a.Labels["service"] != "svc" || a.Labels["severity"] != "page" || a.Name != "APIBudgetBurn" {
		t.Errorf("page labels %v name %q", a.Labels, a.Name)
	}
	if a.Annotations["burn_rate"] == "" || a.Annotations["error_budget_remaining"] == "" {
		t.Errorf("annotations %v", a.Annotations)
	}
}

// TestTwentyTimesBurnPagesAfter43Minutes: 2% errors is a 20× burn. The 5m window is above
// 1.44% at once; the 1h window holds 20·k errors of 60 000 events after k minutes and crosses
// 1.44% when k > 43.2: the page comes after 44 minutes. The 6h window would take 108. When the
// errors stop, the 5m window falls below 1.44% (72 errors of 5000) two minutes later.
func TestTwentyTimesBurnPagesAfter43Minutes(t *testing.T) {
	s := newSim(t, 99.9, defaults())
	s.clean(3 * 24 * 60)
	m, _ := s.until(0.02, "page", "1h", 120)
	within(t, "the 1h page", m, 44, 1)
	for k := 1; k <= 10; k++ {
		active, send := s.minute(0, perMinute)
		firing := false
		for _, a := range active {
			firing = firing || a.Labels["window"] == "1h"
		}
		if !firing {
			within(t, "resolved", k, 2, 1)
			resolvedSent := false
			for _, a := range send {
				resolvedSent = resolvedSent || (a.State == Inactive && !a.ResolvedAt.IsZero() && a.Labels["window"] == "1h")
			}
			if !resolvedSent {
				t.Errorf("the resolved page was not handed over to send: %+v", send)
			}
			return
		}
	}
	t.Error("the page did not resolve within 10 minutes of the errors stopping")
}

// TestTwiceBurnTicketsAfter36Hours: 0.2% errors is a 2× burn: never a page (14.4× and 6×) nor
// the 1d ticket (3×); the 3d window, 2·k errors of 4 320 000 events, crosses 0.1% (1×) after
// k = 2160 minutes, 36 hours, while the 6h window is at 2×.
func TestTwiceBurnTicketsAfter36Hours(t *testing.T) {
	s := newSim(t, 99.9, defaults())
	s.clean(3 * 24 * 60)
	for m := 1; m <= 40*60; m++ {
		active, _ := s.minute(0.002*perMinute, perMinute)
		for _, a := range active {
			switch {
			case a.Labels["sloth_severity"] == "page":
				t.Fatalf("a 2× burn paged after %d minutes: %+v", m, a)
			case a.Labels["window"] == "1d":
				t.Fatalf("a 2× burn raised the 3× ticket after %d minutes", m)
			case a.State == Firing && a.Labels["window"] == "3d":
				within(t, "the 3d ticket", m, 2160, 1)
				return
			}
		}
	}
	t.Error("no ticket within 40 hours")
}

// TestPyrraPolicyHoldsFor: Pyrra's windows for a 99.9% objective over 28 days page when the
// burn is over 14× on 1h and 5m for 2 minutes. 100% errors cross both at once, so the alert
// is pending after the first minute and fires two minutes later. 2% errors (20×) put the 1h
// window over 1.4% when 20·k of 60 000 events exceed 840, after 43 minutes; it fires 2
// minutes after that. Google's policy has no wait: the sim with it pages after 1 minute.
func TestPyrraPolicyHoldsFor(t *testing.T) {
	const period = 28 * 24 * time.Hour
	o := defaults()
	o.Policy = "pyrra"

	s := newSimOver(t, 99.9, period, o)
	s.clean(3 * 24 * 60)
	active, _ := s.minute(perMinute, perMinute)
	pending := false
	for _, a := range active {
		if a.Labels["window"] == "1h" {
			pending = a.State == Pending
		}
	}
	if !pending {
		t.Fatalf("after the first minute of a total outage the 1h page is not pending: %+v", active)
	}
	m, _ := s.until(1, "page", "1h", 10)
	within(t, "the 1h page (after the pending minute)", m, 2, 0)

	s = newSimOver(t, 99.9, period, o)
	s.clean(3 * 24 * 60)
	m, _ = s.until(0.02, "page", "1h", 120)
	within(t, "the 1h page at 2% errors", m, 45, 1)

	g := newSimOver(t, 99.9, period, defaults())
	g.clean(3 * 24 * 60)
	m, _ = g.until(1, "page", "1h", 5)
	within(t, "Google's 1h page", m, 1, 0)
}

// TestLowTrafficDoesNotPage: one event a minute for three days, and then one error. Without a
// minimum the 1h window (1 of 60, 1.7%) and the 5m one (1 of 5, 20%) page; with min_events 100
// the 1h window's 60 events are too few, and the 6h window (1 of 360, 2.8×) is below 6×.
func TestLowTrafficDoesNotPage(t *testing.T) {
	for _, tc := range []struct {
		min  float64
		page bool
	}{{0, true}, {DefaultMinEvents, false}} {
		o := defaults()
		o.MinEvents = tc.min
		s := newSim(t, 99.9, o)
		for range 3 * 24 * 60 {
			s.minute(0, 1)
		}
		active, _ := s.minute(1, 1)
		paged := false
		for _, a := range active {
			paged = paged || (a.State == Firing && a.Labels["sloth_severity"] == "page")
		}
		if paged != tc.page {
			t.Errorf("min_events %v: paged %v, want %v (%+v)", tc.min, paged, tc.page, active)
		}
	}
}

// TestNoData: the events stop; SLONoData fires once there has been none for 15 minutes, and
// resolves when they come back.
func TestNoData(t *testing.T) {
	s := newSim(t, 99.9, defaults())
	s.clean(60)
	var fired int
	for m := 1; m <= 30 && fired == 0; m++ {
		active, _ := s.minute(0, 0)
		for _, a := range active {
			if a.Name == NoDataAlert && a.State == Firing {
				fired = m
			}
		}
	}
	within(t, "SLONoData", fired, 15, 0)
	active, send := s.minute(0, perMinute)
	if len(active) != 0 {
		t.Errorf("still active after events came back: %+v", active)
	}
	if len(send) != 1 || send[0].Name != NoDataAlert || send[0].ResolvedAt.IsZero() {
		t.Errorf("the resolved SLONoData was not sent: %+v", send)
	}
}

// TestResend: a firing alert is sent when it fires and then once per resend delay.
func TestResend(t *testing.T) {
	o := defaults()
	o.ResendDelay = 5 * time.Minute
	s := newSim(t, 99.9, o)
	s.clean(60)
	var sentAt []int
	for m := 1; m <= 12; m++ {
		_, send := s.minute(perMinute, perMinute)
		for _, a := range send {
			if a.Labels["window"] == "1h" {
				sentAt = append(sentAt, m)
			}
		}
	}
	if len(sentAt) != 3 || sentAt[0] != 1 || sentAt[1] != 6 || sentAt[2] != 11 {
		t.Errorf("the firing page was sent after minutes %v, want 1, 6, 11", sentAt)
	}
}

// TestStatus: the error ratios, burn rates and budget left follow the counts.
func TestStatus(t *testing.T) {
	s := newSim(t, 99, defaults())
	s.clean(60)
	s.minute(50, 100) // 50 bad of 100
	st := s.slo.Status(s.start.Add(time.Duration(s.k)*time.Minute - time.Second))
	five := st.window(5 * time.Minute)
	if five.Bad != 50 || five.Total != 4*perMinute+100 {
		t.Fatalf("5m window %+v", five)
	}
	if want := 50.0 / 4100 / 0.01; math.Abs(five.Burn-want) > 1e-9 {
		t.Errorf("5m burn %v, want %v", five.Burn, want)
	}
	if want := 1 - (50.0/(60*perMinute+100))/0.01; math.Abs(st.BudgetRemaining-want) > 1e-9 {
		t.Errorf("budget remaining %v, want %v", st.BudgetRemaining, want)
	}
}
