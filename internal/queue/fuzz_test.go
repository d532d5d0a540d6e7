package queue

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// validSegment is three records, as Put writes them.
func validSegment(t testing.TB) []byte {
	var seg []byte
	for i := range 3 {
		enc, err := mk(t, i, 2).Encoded()
		if err != nil {
			t.Fatal(err)
		}
		seg = appendRecord(seg, 1, bodyOTLP, 2, uint64(i), int64(i), enc)
	}
	return seg
}

// FuzzWALReplay feeds arbitrary bytes to the replay path as a segment file. Scanning must
// account for every byte, and Check, repair and open must never fail, panic or hang: damage
// is skipped and counted.
func FuzzWALReplay(f *testing.F) {
	seg := validSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-7])
	flipped := slices.Clone(seg)
	flipped[len(seg)/2] ^= 0xff
	f.Add(flipped)
	f.Add(append(slices.Clone(seg[:30]), seg...))
	f.Add(recordMagic[:])
	f.Add([]byte{})
	f.Fuzz(fuzzReplay)
}

func fuzzReplay(t *testing.T, data []byte) {
	{
		// Records and damage tile the segment, in order.
		type span struct{ from, to int }
		var spans []span
		dmg := scanSegment(data, func(r record) { spans = append(spans, span{r.off, r.off + r.size}) })
		for _, d := range dmg {
			spans = append(spans, span{d.off, d.end})
		}
		slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
		at := 0
		for _, s := range spans {
			if s.from != at || s.to <= s.from {
				t.Fatalf("scan does not tile the segment: %v", spans)
			}
			at = s.to
		}
		if at != len(data) {
			t.Fatalf("scan covers %d of %d bytes", at, len(data))
		}

		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Check(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		after, err := Check(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if after.Corrupt != 0 || after.Pending != rep.Pending {
			t.Fatalf("after repair: %s\nbefore: %s", after, rep)
		}
		w, err := openWAL(WALOptions{Dir: dir, Options: Options{Capacity: 1 << 30}, Logger: discard}, testCfg)
		if err != nil {
			t.Fatal(err)
		}
		if s := w.Stats(); s.Batches != rep.Pending || s.Corruptions != 0 {
			t.Fatalf("open after repair: %+v, Check said %d pending", s, rep.Pending)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for {
			_, done, ok := w.Get(ctx)
			if !ok {
				break
			}
			done(true)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzCheckpoint: a damaged acknowledgement checkpoint is refused, never a panic.
func FuzzCheckpoint(f *testing.F) {
	ck := checkpoint{below: 3, next: 9}
	ck.add(5)
	ck.add(7)
	f.Add(ck.marshal(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := unmarshalCheckpoint(data)
		if err != nil {
			return
		}
		for _, s := range []uint64{0, c.below, c.next, 1 << 63} {
			_ = c.has(s)
		}
	})
}

// TestReplayMutations runs the fuzz body over damage of every kind, every time the tests run.
func TestReplayMutations(t *testing.T) {
	seg := validSegment(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		d := slices.Clone(seg)
		switch rng.IntN(4) {
		case 0: // flipped bytes
			for range 1 + rng.IntN(4) {
				d[rng.IntN(len(d))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // cut short
			d = d[:rng.IntN(len(d))]
		case 2: // zeros inserted
			p := rng.IntN(len(d))
			d = append(d[:p:p], append(make([]byte, 1+rng.IntN(20)), d[p:]...)...)
		case 3: // a stretch repeated
			a, b := rng.IntN(len(d)), rng.IntN(len(d))
			d = append(d, d[min(a, b):max(a, b)]...)
		}
		fuzzReplay(t, d)
	}
}
