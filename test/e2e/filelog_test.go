//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const filelogVigil = `receivers:
  filelog:
    include: [%[1]s/*.log]
    start_at: beginning
    checkpoint_dir: %[4]s
    poll_interval: 50ms
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
    labels:
      attributes: [log.file.name]
service:
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [loki]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
`

func writeLines(t *testing.T, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "%s %05d\n", prefix, i)
	}
}

// countLines is how many entries VictoriaLogs holds for the query, and how many distinct.
func countLines(t *testing.T, vl, q string) (total, distinct int, err error) {
	got, err := queryLogs(t, vl, q)
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	for _, e := range got {
		seen[e["_msg"]] = true
	}
	return len(got), len(seen), nil
}

// TestFilelogRotationToVictoriaLogs: files written and rotated by rename and by copytruncate,
// tailed by the filelog receiver, shipped by the loki exporter: VictoriaLogs holds exactly the
// lines written, none twice. Then Vigil stops cleanly, more is written, and the restart
// ships only that.
func TestFilelogRotationToVictoriaLogs(t *testing.T) {
	vl := startVictoriaLogs(t)
	dir := t.TempDir()
	logs, ckpt := filepath.Join(dir, "logs"), filepath.Join(dir, "ckpt")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	renamed, truncated := filepath.Join(logs, "renamed.log"), filepath.Join(logs, "truncated.log")
	writeLines(t, renamed, "renamed", 0, 1000)
	writeLines(t, truncated, "truncated", 0, 1000)
	tel := freeAddr(t)
	cfg := fmt.Sprintf(filelogVigil, logs, tel, vl, ckpt)
	v := startVigil(t, "vigil", cfg, tel)
	expect := func(want map[string]int) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			for q, n := range want {
				total, distinct, err := countLines(t, vl, q)
				if err != nil {
					return err
				}
				if total != n || distinct != n {
					return fmt.Errorf("%s: %d entries (%d distinct), want %d", q, total, distinct, n)
				}
			}
			return nil
		})
	}
	expect(map[string]int{`renamed`: 1000, `truncated`: 1000})
	// Rotation by rename (the old name leaves the glob; its writer appends a last few lines),
	// and by copytruncate.
	if err := os.Rename(renamed, renamed+".1"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, renamed+".1", "renamed", 1000, 1010)
	writeLines(t, renamed, "renamed", 1010, 1500)
	if err := os.Truncate(truncated, 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, truncated, "post", 0, 300)
	expect(map[string]int{`renamed`: 1500, `truncated`: 1000, `post`: 300})
	v.stopClean(t)

	writeLines(t, renamed, "renamed", 1500, 1600)
	v = startVigil(t, "vigil-restarted", cfg, tel)
	expect(map[string]int{`renamed`: 1600})
	v.stopClean(t)
}

// killVigil acknowledges end to end: a file offset is checkpointed only once VictoriaLogs has
// the lines before it.
const filelogKillVigil = `receivers:
  filelog:
    include: [%[1]s/*.log]
    start_at: beginning
    checkpoint_dir: %[4]s
    checkpoint_interval: 100ms
    poll_interval: 50ms
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
    acknowledgements: end_to_end
service:
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [loki]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
`

// TestFilelogSurvivesKill: Vigil is killed with SIGKILL while lines are being written and
// shipped; after the restart every line is in VictoriaLogs: lines since the last checkpoint
// may come twice, none is lost.
func TestFilelogSurvivesKill(t *testing.T) {
	vl := startVictoriaLogs(t)
	dir := t.TempDir()
	logs, ckpt := filepath.Join(dir, "logs"), filepath.Join(dir, "ckpt")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(logs, "app.log")
	tel := freeAddr(t)
	cfg := fmt.Sprintf(filelogKillVigil, logs, tel, vl, ckpt)
	v := startVigil(t, "vigil", cfg, tel)
	for i := 0; i < 20; i++ {
		writeLines(t, path, "app", i*500, (i+1)*500)
		time.Sleep(100 * time.Millisecond)
	}
	// Kill once VictoriaLogs has acknowledged more than half of the lines (on a busy host the
	// first pushes can take longer than the writing), and three checkpoint intervals later:
	// the checkpoint must then be past them, so at most the rest come twice.
	eventually(t, 30*time.Second, func() error {
		_, distinct, err := countLines(t, vl, `app`)
		if err == nil && distinct < 6000 {
			err = fmt.Errorf("%d of 10000 lines in VictoriaLogs before the kill", distinct)
		}
		return err
	})
	time.Sleep(300 * time.Millisecond)
	v.kill()
	writeLines(t, path, "app", 10000, 11000)
	v = startVigil(t, "vigil-restarted", cfg, tel)
	eventually(t, 30*time.Second, func() error {
		total, distinct, err := countLines(t, vl, `app`)
		if err != nil {
			return err
		}
		if distinct != 11000 {
			return fmt.Errorf("%d distinct lines of 11000 (%d entries)", distinct, total)
		}
		return nil
	})
	total, _, _ := countLines(t, vl, `app`)
	t.Logf("after kill -9: 11000 lines, %d entries (%d repeated)", total, total-11000)
	if total-11000 > 5000 {
		t.Errorf("%d lines repeated: the checkpoint did not follow the acknowledgements", total-11000)
	}
	v.stopClean(t)
}
