package store

import (
	"testing"
	"time"
)

// TestAdmitForgetsSeriesPastRetention: at max_series a new series is refused, unless some held
// series has not been appended to within the retention: those are forgotten (as the head
// drops them) and no longer count against the limit.
func TestAdmitForgetsSeriesPastRetention(t *testing.T) {
	s := &Store{max: 2, retention: time.Hour, series: map[uint64]int64{}}
	now := time.Now()
	old := now.Add(-2 * time.Hour).UnixMilli()
	for _, step := range []struct {
		hash uint64
		t    int64
		want bool
	}{
		{1, old, true},
		{2, old, true},
		{1, old + 1, true},              // a held series is always admitted
		{3, now.UnixMilli(), true},      // full, but 1 and 2 are past the retention
		{4, now.UnixMilli(), true},      // room left by them
		{5, now.UnixMilli(), false},     // full, and nothing to forget
		{6, now.UnixMilli() + 1, false}, // still nothing
		{3, now.UnixMilli() + 2, true},
	} {
		if got := s.admit(step.hash, step.t); got != step.want {
			t.Errorf("admit(%d, %d) = %v, want %v (held %v)", step.hash, step.t, got, step.want, s.series)
		}
	}
	if len(s.series) != 2 {
		t.Errorf("%d series held, want 2", len(s.series))
	}
}
