// Package windows gives the multi-window, multi-burn-rate alert conditions of an SLO: those of
// the SRE workbook (Sloth's defaults), Pyrra's, or the spec's own.
package windows

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigilhq/vigil/slo/spec"
)

// Window is one alert condition: the burn rate over both Long and Short above Factor.
type Window struct {
	Severity    string // page or ticket
	Long, Short time.Duration
	Factor      float64
	// For is how long the condition must hold (Pyrra's); 0 fires at once, as Sloth's do.
	For time.Duration
}

// Policies are the names Policy takes.
var Policies = []string{"google", "pyrra"}

// Google is the SRE workbook's policy as Sloth applies it to any period: a page when 2% of the
// budget goes in 1 h (checked over 5 m too) or 5% in 6 h (30 m); a ticket when 10% goes in 1 d
// (2 h) or in 3 d (6 h). The factor is budget share × period / long window: 14.4, 6, 3 and 1
// for 30 days.
func Google(period time.Duration) []Window {
	w := func(sev string, pct float64, long, short time.Duration) Window {
		return Window{Severity: sev, Long: long, Short: short, Factor: pct / 100 * (period.Hours() / long.Hours())}
	}
	return []Window{
		w("page", 2, time.Hour, 5*time.Minute),
		w("page", 5, 6*time.Hour, 30*time.Minute),
		w("ticket", 10, 24*time.Hour, 2*time.Hour),
		w("ticket", 10, 72*time.Hour, 6*time.Hour),
	}
}

// Pyrra is Pyrra's policy: windows scaled from those for 28 days (1h/5m ×14, 6h/30m ×7,
// 1d/2h ×2, 4d/6h ×1) in proportion to the period, rounded to the minute, with `for`.
func Pyrra(period time.Duration) []Window {
	r := func(d time.Duration) time.Duration { return d.Round(time.Minute) }
	const h = 28 * 24 // hours in 28 days
	return []Window{
		{Severity: "page", Long: r(period / h), Short: r(period / (h * 12)), Factor: 14, For: r(period / (h * 30))},
		{Severity: "page", Long: r(period / (28 * 4)), Short: r(period / (h * 2)), Factor: 7, For: r(period / (h * 4))},
		{Severity: "ticket", Long: r(period / 28), Short: r(period / (28 * 12)), Factor: 2, For: r(period / h)},
		{Severity: "ticket", Long: r(period / 7), Short: r(period / (28 * 4)), Factor: 1, For: r(period / (28 * 8))},
	}
}

// For is the SLO's conditions: its own alerting.windows, else the policy's for its window.
func For(policy string, slo *spec.SLO) ([]Window, error) {
	if len(slo.Alerting.Windows) > 0 {
		out := make([]Window, 0, len(slo.Alerting.Windows))
		for _, w := range slo.Alerting.Windows {
			out = append(out, Window{Severity: w.Severity, Long: w.Long, Short: w.Short, Factor: w.Factor})
		}
		return out, nil
	}
	period := slo.Window
	if period == 0 {
		period = spec.DefaultWindow
	}
	switch policy {
	case "", "google":
		return Google(period), nil
	case "pyrra":
		return Pyrra(period), nil
	}
	return nil, fmt.Errorf("window policy %q: one of %v", policy, Policies)
}

// Durations is every long and short window, shortest first, without repeats.
func Durations(ws []Window) []time.Duration {
	var out []time.Duration
	for _, w := range ws {
		out = append(out, w.Short, w.Long)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
