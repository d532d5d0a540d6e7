package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/testdata"
)

var quiet = slog.New(slog.DiscardHandler)

// writeWAL creates a persistent queue in dir holding n batches of 3 spans, the way an exporter
// would, and closes it.
func writeWAL(t *testing.T, dir string, n int) {
	t.Helper()
	q, err := queue.OpenWAL(queue.WALOptions{Options: queue.Options{Capacity: 100, WhenFull: queue.Block}, Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := q.Put(context.Background(), batch.FromTraces(testdata.Traces(1, 3, 3*i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// corrupt flips bytes in the middle of the queue's first segment.
func corrupt(t *testing.T, dir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) == 0 {
		t.Fatalf("no segment in %s", dir)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+8; i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestQueueCheck(t *testing.T) {
	f := func(args []string, wantCode int, wantOut ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		all := out.String() + errOut.String()
		if code != wantCode {
			t.Errorf("vigil %v: exit %d, want %d; output:\n%s", args, code, wantCode, all)
		}
		for _, w := range wantOut {
			if !strings.Contains(all, w) {
				t.Errorf("vigil %v: output lacks %q:\n%s", args, w, all)
			}
		}
	}
	shared := t.TempDir() // a sending_queue.directory shared by two exporters
	primary := filepath.Join(shared, "otlp-primary")
	backup := filepath.Join(shared, "otlphttp")
	writeWAL(t, primary, 5)
	writeWAL(t, backup, 2)

	f([]string{"queue", "check", primary}, 0, "5 pending delivery (15 items)", "no problems found")
	f([]string{"queue", "check", shared}, 0, "otlp-primary", "5 pending delivery (15 items)", "otlphttp", "2 pending delivery (6 items)")

	corrupt(t, primary)
	f([]string{"queue", "check", primary}, 1, "damaged stretches: 1", "run again with --repair")
	f([]string{"queue", "check", shared}, 1, "damaged stretches: 1", "2 pending delivery")
	f([]string{"queue", "check", primary, "--repair"}, 0, "repaired")
	f([]string{"queue", "check", "--repair", primary}, 0, "no problems found")
	f([]string{"queue", "check", primary}, 0, "no problems found")

	// What survives the repair is what a start replays.
	q, err := queue.OpenWAL(queue.WALOptions{Options: queue.Options{Capacity: 100}, Dir: primary, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Batches < 3 || st.Batches > 4 || st.Corruptions != 0 {
		t.Errorf("after repair the queue replays %d batches with %d corruptions; want 3 or 4 and 0", st.Batches, st.Corruptions)
	}
	// A queue in use is locked.
	f([]string{"queue", "check", primary}, 1, primary)
	_ = q.Close()

	f([]string{"queue"}, 2, "Usage: vigil queue check DIR")
	f([]string{"queue", "help"}, 0, "Usage: vigil queue check DIR")
	f([]string{"queue", "fix", primary}, 2, `unknown subcommand "fix"`)
	f([]string{"queue", "check"}, 2, "want one directory, got 0")
	f([]string{"queue", "check", primary, shared}, 2, "want one directory, got 2")
	f([]string{"queue", "check", "--force", primary}, 2, "flag provided but not defined: -force")
	f([]string{"queue", "check", filepath.Join(shared, "missing")}, 1, "no such file")
	f([]string{"queue", "check", t.TempDir()}, 1, "holds no persistent queue")
}
