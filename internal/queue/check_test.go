package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// damagedDir builds a closed WAL of two segments (records 0-2 and 3-5, record 0 acknowledged),
// then flips a byte in record 1 and leaves half a record at the end of the second segment.
func damagedDir(t *testing.T) (WALOptions, []record) {
	t.Helper()
	opts := walOpts(t)
	opts.SegmentBytes = 3 * int64(frameLen+payloadHeaderLen+mk(t, 0, 1).EncodedSize())
	w := open(t, opts)
	put(t, w, span(0, 6)...)
	_, dones := take(t, w, 1)
	dones[0](true)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, opts.Dir)
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
	recs := recordOffsets(t, segs[0])
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[recs[1].off+frameLen+payloadHeaderLen+3] ^= 1
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	last, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segs[1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(last[:len(last)/3/2]); err != nil { // half of the first record
		t.Fatal(err)
	}
	_ = f.Close()
	return opts, recs
}

func TestCheckAndRepair(t *testing.T) {
	opts, recs := damagedDir(t)
	rep, err := Check(opts.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// Records 0, 2 in the first segment (1 is corrupt), 3-5 in the second; 0 is acknowledged.
	if rep.Segments != 2 || rep.Records != 5 || rep.Pending != 4 || rep.Items != 4 || rep.Corrupt != 2 || rep.Repaired {
		t.Fatalf("Check found:\n%s%+v", rep, rep)
	}
	if time.Since(rep.Oldest) > time.Minute {
		t.Fatalf("Oldest = %v", rep.Oldest)
	}
	first := fmt.Sprintf("%s:%d: ", segmentName(1), recs[1].off)
	if len(rep.Problems) != 2 || !strings.HasPrefix(rep.Problems[0], first) || !strings.Contains(rep.Problems[0], "checksum mismatch") ||
		!strings.HasPrefix(rep.Problems[1], segmentName(2)+":") || !strings.Contains(rep.Problems[1], "torn tail") {
		t.Fatalf("Problems = %q", rep.Problems)
	}
	out := rep.String()
	for _, want := range []string{opts.Dir, "segments: 2", "5 valid, 4 pending delivery (4 items)", "oldest pending", first, "--repair"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	rep, err = Check(opts.Dir, true)
	if err != nil || !rep.Repaired || rep.Corrupt != 2 {
		t.Fatalf("repair: %v\n%s", err, rep)
	}
	rep, err = Check(opts.Dir, false)
	if err != nil || rep.Corrupt != 0 || len(rep.Problems) != 0 || rep.Pending != 4 || rep.Records != 5 {
		t.Fatalf("after repair: %v\n%s", err, rep)
	}
	if !strings.Contains(rep.String(), "no problems found") {
		t.Fatalf("clean report:\n%s", rep)
	}
	w := open(t, opts)
	if s := w.Stats(); s.Corruptions != 0 {
		t.Fatalf("open after repair: %+v", s)
	}
	wantSeqs(t, "replayed after repair", drain(t, w), []int{2, 3, 4, 5})
}

func TestOpenSkipsWhatCheckReports(t *testing.T) {
	opts, _ := damagedDir(t)
	w := open(t, opts)
	if s := w.Stats(); s.Corruptions != 1 || s.Batches != 4 {
		t.Fatalf("Stats = %+v, want the flipped record counted and the torn tail not", s)
	}
	wantSeqs(t, "replayed", drain(t, w), []int{2, 3, 4, 5})
	_ = w.Close()
	// Open truncated the torn tail, and the second segment went once delivered. The first,
	// with a corrupt record in the middle, stays on disk until --repair.
	rep, err := Check(opts.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Corrupt != 1 || rep.Segments != 1 || rep.Pending != 0 {
		t.Fatalf("after delivering everything:\n%s", rep)
	}
	if _, err := Check(opts.Dir, true); err != nil {
		t.Fatal(err)
	}
	w = open(t, opts)
	if s := w.Stats(); s.Segments != 0 || s.Corruptions != 0 {
		t.Fatalf("after repair, open deletes what is delivered: %+v", s)
	}
}

func TestUnreadableSegmentKept(t *testing.T) {
	opts := walOpts(t)
	path := filepath.Join(opts.Dir, segmentName(7))
	junk := []byte("written by something else entirely, or by a newer vigil")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	w := open(t, opts)
	if s := w.Stats(); s.Corruptions != 1 || s.Segments != 1 || s.Batches != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	put(t, w, 0)
	drain(t, w)
	_ = w.Close()
	if b, err := os.ReadFile(path); err != nil || string(b) != string(junk) {
		t.Fatalf("an unreadable segment was changed or deleted: %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	if _, err := Check(filepath.Join(t.TempDir(), "missing"), false); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Check of a missing directory = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(file, false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Check of a file = %v", err)
	}
}

func TestCheckBadCheckpoint(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	put(t, w, 0, 1)
	_, dones := take(t, w, 1)
	dones[0](true)
	_ = w.Close()
	if err := os.WriteFile(filepath.Join(opts.Dir, ackFile), []byte{1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(opts.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pending != 2 || len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0], ackFile+": unreadable") {
		t.Fatalf("report:\n%s", rep)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
