package windows

import (
	"math"
	"testing"
	"time"

	"github.com/vigilhq/vigil/slo/spec"
)

const day = 24 * time.Hour

func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []Window
		want []Window
	}{
		{"google 30d", Google(30 * day), []Window{
			{"page", time.Hour, 5 * time.Minute, 14.4, 0}, {"page", 6 * time.Hour, 30 * time.Minute, 6, 0},
			{"ticket", day, 2 * time.Hour, 3, 0}, {"ticket", 3 * day, 6 * time.Hour, 1, 0}}},
		{"google 28d (Sloth's)", Google(28 * day), []Window{
			{"page", time.Hour, 5 * time.Minute, 13.44, 0}, {"page", 6 * time.Hour, 30 * time.Minute, 5.6, 0},
			{"ticket", day, 2 * time.Hour, 2.8, 0}, {"ticket", 3 * day, 6 * time.Hour, 0.9333333333, 0}}},
		{"pyrra 28d", Pyrra(28 * day), []Window{
			{"page", time.Hour, 5 * time.Minute, 14, 2 * time.Minute}, {"page", 6 * time.Hour, 30 * time.Minute, 7, 15 * time.Minute},
			{"ticket", day, 2 * time.Hour, 2, time.Hour}, {"ticket", 4 * day, 6 * time.Hour, 1, 3 * time.Hour}}},
		{"pyrra 7d", Pyrra(7 * day), []Window{
			{"page", 15 * time.Minute, time.Minute, 14, time.Minute}, {"page", 90 * time.Minute, 8 * time.Minute, 7, 4 * time.Minute},
			{"ticket", 6 * time.Hour, 30 * time.Minute, 2, 15 * time.Minute}, {"ticket", day, 90 * time.Minute, 1, 45 * time.Minute}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, w := range tc.want {
				g := tc.got[i]
				if g.Severity != w.Severity || g.Long != w.Long || g.Short != w.Short || g.For != w.For || math.Abs(g.Factor-w.Factor) > 1e-9 {
					t.Errorf("window %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestForAndDurations(t *testing.T) {
	s := &spec.SLO{}
	ws, err := For("", s)
	if err != nil || ws[0].Factor != 14.4 {
		t.Fatalf("default policy for the default window: %v %v", ws, err)
	}
	got := Durations(ws)
	want := []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day}
	if len(got) != len(want) {
		t.Fatalf("durations %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("durations %v, want %v", got, want)
		}
	}
	s.Alerting.Windows = []spec.BurnWindow{{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Factor: 10}}
	if ws, _ := For("google", s); len(ws) != 1 || ws[0].Factor != 10 {
		t.Errorf("the SLO's own windows: %v", ws)
	}
	if _, err := For("sloth", &spec.SLO{}); err == nil {
		t.Error("an unknown policy was accepted")
	}
}
