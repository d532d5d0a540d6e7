//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestShutdownSlowBackend: the backend holds every request for a minute and vigil gets
// SIGTERM with a 2 s grace period and 100 acknowledged spans queued. With the memory queue they
// cannot be delivered: vigil says how many it dropped and exits 1 (docs/architecture.md). With
// the persistent queue nothing is dropped: the spans stay on disk, vigil exits 0, and a restart
// against a healthy backend delivers them.
func TestShutdownSlowBackend(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		name := map[bool]string{false: "memory", true: "wal"}[persistent]
		t.Run(name, func(t *testing.T) {
			sink := startFaultSink(t)
			sink.setMode(t, `{"delay": "60s"}`)
			queue := memoryQueue
			if persistent {
				queue = walQueue(t.TempDir(), "")
			}
			c := newRelConfig(t, sink, queue)
			c.timeout = "120s" // the attempt outlives the grace period
			v := startRelVigil(t, "vigil-1", c, true, "--grace-period", "2s")
			gen := newLoadGen(t, loadConfig{addr: c.grpc, maxSpans: 100, duration: 5 * time.Second})
			gen.start()
			gen.wait(10 * time.Second)
			r := gen.result()
			if r.ackedSpans != 100 {
				t.Fatalf("acknowledged %d spans, want 100: %s%s", r.ackedSpans, r, r.errorSummary())
			}
			start := time.Now()
			code := v.stop(30 * time.Second)
			took := time.Since(start)
			t.Logf("FIGURES %s: SIGTERM with 100 spans queued behind a backend that hangs, --grace-period 2s: exit %d after %s",
				t.Name(), code, took.Round(time.Millisecond))
			if !persistent {
				if code != 1 {
					t.Errorf("exit %d, want 1: acknowledged data was dropped", code)
				}
				if !strings.Contains(v.output(), "dropped the rest") || !strings.Contains(v.output(), `"items":100`) {
					t.Errorf("the log does not say that 100 items were dropped:\n%s", errorLines(v.output()))
				}
				return
			}
			if code != 0 {
				t.Errorf("exit %d, want 0: nothing was dropped, the spans are on disk; log:\n%s", code, tail(v.output(), 20))
			}
			if !strings.Contains(v.output(), "persistent queue keeps unsent data for the next start") {
				t.Errorf("the log does not say what the queue keeps:\n%s", tail(v.output(), 20))
			}
			sink.setMode(t, `{}`)
			v2 := startRelVigil(t, "vigil-2", c, true)
			requireDelivered(t, sink, r, 20*time.Second)
			v2.stopClean(t)
		})
	}
}
