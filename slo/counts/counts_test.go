package counts

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)

func TestAddAndSum(t *testing.T) {
	r := New(time.Hour)
	r.Add(t0, t0, 1, 10)
	r.Add(t0, t0.Add(-30*time.Minute), 2, 20)
	r.Add(t0, t0.Add(time.Hour), 4, 40) // in the future: counted now
	if r.Add(t0, t0.Add(-2*time.Hour), 8, 80) || r.Dropped != 80 {
		t.Errorf("an event older than the window was kept (dropped %v)", r.Dropped)
	}
	if bad, total := r.Sum(t0, 5*time.Minute); bad != 5 || total != 50 {
		t.Errorf("5m: %v of %v, want 5 of 50", bad, total)
	}
	if bad, total := r.Sum(t0, time.Hour); bad != 7 || total != 70 {
		t.Errorf("1h: %v of %v, want 7 of 70", bad, total)
	}
	// 45 minutes later the minute 30 minutes back has left the hour; later still, everything.
	if bad, total := r.Sum(t0.Add(45*time.Minute), time.Hour); bad != 5 || total != 50 {
		t.Errorf("1h, 45m later: %v of %v, want 5 of 50", bad, total)
	}
	if bad, total := r.Sum(t0.Add(3*time.Hour), time.Hour); bad != 0 || total != 0 {
		t.Errorf("3h later: %v of %v, want nothing", bad, total)
	}
}

// TestSnapshot: counts written and read back are the same; a snapshot for another SLI key is
// refused; a ring of a shorter window keeps what it covers; garbage is an error.
func TestSnapshot(t *testing.T) {
	r := New(24 * time.Hour)
	for m := range 24 * 60 {
		at := t0.Add(time.Duration(m) * time.Minute)
		r.Add(at, at, float64(m%3), 10)
	}
	now := t0.Add(24*time.Hour - time.Minute)
	var b bytes.Buffer
	if err := r.WriteSnapshot(&b, 42); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 64<<10 {
		t.Errorf("snapshot of one day is %d bytes", b.Len())
	}
	back := New(24 * time.Hour)
	if err := back.ReadSnapshot(bytes.NewReader(b.Bytes()), 42); err != nil {
		t.Fatal(err)
	}
	for _, w := range []time.Duration{5 * time.Minute, time.Hour, 24 * time.Hour} {
		b1, t1 := r.Sum(now, w)
		b2, t2 := back.Sum(now, w)
		if b1 != b2 || t1 != t2 {
			t.Errorf("%s: %v/%v before, %v/%v after", w, b1, t1, b2, t2)
		}
	}
	if err := New(time.Hour).ReadSnapshot(bytes.NewReader(b.Bytes()), 7); !errors.Is(err, ErrKeyChanged) {
		t.Errorf("another key: %v", err)
	}
	short := New(time.Hour)
	if err := short.ReadSnapshot(bytes.NewReader(b.Bytes()), 42); err != nil {
		t.Fatal(err)
	}
	if _, total := short.Sum(now, time.Hour); total != 600 {
		t.Errorf("a 1h ring from a 1d snapshot holds %v events in its hour, want 600", total)
	}
	for _, bad := range [][]byte{nil, []byte("not zstd"), b.Bytes()[:b.Len()/2]} {
		if err := New(time.Hour).ReadSnapshot(bytes.NewReader(bad), 42); err == nil {
			t.Errorf("%d bytes of garbage read as a snapshot", len(bad))
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	r := New(time.Hour)
	r.Add(t0, t0, 1, 2)
	var b bytes.Buffer
	_ = r.WriteSnapshot(&b, 1)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(time.Hour)
		if err := r.ReadSnapshot(bytes.NewReader(data), 1); err != nil {
			return
		}
		if bad, total := r.Sum(t0, time.Hour); bad < 0 || total < 0 {
			t.Fatalf("negative counts from a snapshot: %v %v", bad, total)
		}
	})
}

// TestWholeWindowSum: the whole window's sum, kept as a running total, matches a walk of the
// buckets while minutes come and go.
func TestWholeWindowSum(t *testing.T) {
	r := New(time.Hour)
	for m := range 500 {
		at := t0.Add(time.Duration(m) * time.Minute)
		r.Add(at, at, 0.1*float64(m%7), 1.3*float64(m%11))
		if m%37 == 0 {
			at = at.Add(time.Duration(m%3) * time.Hour) // a jump ahead, over part or all of the window
		}
		gotBad, gotTotal := r.Sum(at, time.Hour)
		wantBad, wantTotal := r.Sum(at, time.Hour-time.Minute)
		r.mu.Lock()
		i := (at.Unix()/60 - 59) % r.n
		wantBad += r.bad[(i+r.n)%r.n]
		wantTotal += r.total[(i+r.n)%r.n]
		r.mu.Unlock()
		if math.Abs(gotBad-wantBad) > 1e-9 || math.Abs(gotTotal-wantTotal) > 1e-9 {
			t.Fatalf("minute %d: window sum %v/%v, walked %v/%v", m, gotBad, gotTotal, wantBad, wantTotal)
		}
	}
}
