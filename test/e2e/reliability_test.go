//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// The reliability scenarios: vigil between the sequence-numbered load generator and the
// faultsink, with exact accounting. Every seq the client saw acknowledged must reach the sink
// (at-least-once: duplicates are allowed and reported); where a policy drops data by design,
// the loss must equal what vigil counted as dropped. See docs/reliability.md for the figures.

// memoryQueue is a memory sending queue large enough for every scenario's whole load.
const memoryQueue = "{enabled: true, num_consumers: 4, queue_size: 5000, sizer: requests}"

// walQueue is the persistent sending queue in dir, with fsync: always unless extra (more keys
// of the flow map) says otherwise.
func walQueue(dir string, extra string) string {
	q := fmt.Sprintf("{enabled: true, num_consumers: 4, queue_size: 100000, sizer: requests, persistent: true, directory: %s", dir)
	if !strings.Contains(extra, "fsync:") {
		q += ", fsync: always"
	}
	if extra != "" {
		q += ", " + extra
	}
	return q + "}"
}

// logFigures reports a scenario's accounting in one place, for docs/reliability.md.
func logFigures(t *testing.T, r loadResult, st sinkStats, lost int, extra string) {
	t.Helper()
	t.Logf("FIGURES %s: load: %s", t.Name(), r)
	t.Logf("FIGURES %s: sink: %d unique seqs, %d duplicates, %d requests (%d accepted), %d failures injected %v, %d refusals; acknowledged spans lost: %d%s",
		t.Name(), st.Unique, st.Duplicates, st.Requests, st.Accepted, st.FailuresInjected, st.Injected, st.Refusals, lost, extra)
}

// flakyMode makes 30% of the sink's answers retryable failures: 20% UNAVAILABLE / 503, 5%
// RESOURCE_EXHAUSTED with RetryInfo / 429 with Retry-After, and 5% that hang past the
// exporter's 2s timeout after the sink recorded the data (a backend that did the work but
// answered too late), which is where at-least-once delivery makes duplicates.
const flakyMode = `{"fail_percent": 20, "throttle_percent": 5, "retry_after": "500ms", "hang_percent": 5, "hang": "2500ms", "hang_accept": true}`

// TestReliabilityFlakySink: under flakyMode, every acknowledged span must arrive, over both
// exporters; duplicates are counted and reported.
func TestReliabilityFlakySink(t *testing.T) {
	for _, exporter := range []string{"otlp", "otlphttp"} {
		t.Run(exporter, func(t *testing.T) {
			sink := startFaultSink(t)
			sink.setMode(t, flakyMode)
			c := newRelConfig(t, sink, memoryQueue)
			c.exporter = exporter
			v := startRelVigil(t, "vigil", c, true)

			gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 2000, duration: 5 * time.Second})
			gen.start()
			gen.wait(30 * time.Second)
			r := gen.result()
			st := requireDelivered(t, sink, r, 30*time.Second)
			n, _ := missing(r.acked, st.Seqs)

			counts := readExporterCounts(t, v, exporter)
			logFigures(t, r, st, n, fmt.Sprintf("; exporter sent %.0f, retries %.0f, dropped %.0f", counts.sent, counts.retries, counts.dropped))
			if st.FailuresInjected == 0 || counts.retries == 0 {
				t.Errorf("the sink injected %d failures and vigil retried %.0f times: the scenario did not exercise retries", st.FailuresInjected, counts.retries)
			}
			if counts.dropped != 0 {
				t.Errorf("exporter dropped %.0f items, want 0", counts.dropped)
			}
			if r.rejected > 0 || r.abandoned > 0 {
				t.Errorf("client: %d requests rejected, %d abandoned, want 0%s", r.rejected, r.abandoned, r.errorSummary())
			}
			// A batch whose first attempt hung after the sink recorded it is already at the
			// sink but may still be retrying: heal the sink and let the queue empty before
			// stopping (TestReliabilityShutdownPendingRetry covers stopping mid-retry).
			sink.setMode(t, `{}`)
			if !within(20*time.Second, func() bool { return metricSum(t, v, "vigil_exporter_queue_size") == 0 }) {
				t.Errorf("the sending queue did not empty within 20s of healing the sink")
			}
			v.stopClean(t)
		})
	}
}

// TestReliabilitySinkOutage: the sink refuses connections for 20 s in the middle of the load,
// then comes back. With a memory queue large enough for the outage, and again with the WAL,
// nothing acknowledged is lost; /readyz reports the outage and recovers; /healthz stays 200.
func TestReliabilitySinkOutage(t *testing.T) {
	const outage = 20 * time.Second
	for _, tc := range []struct{ name, queue string }{
		{"memory", memoryQueue},
		{"wal", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the outage is the floor of this test's time; run both at once
			sink := startFaultSink(t)
			queue := tc.queue
			if queue == "" {
				queue = walQueue(t.TempDir(), "max_size_mib: 256")
			}
			c := newRelConfig(t, sink, queue)
			v := startRelVigil(t, "vigil", c, true)

			gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 2000, duration: outage + 6*time.Second})
			gen.start()
			time.Sleep(3 * time.Second)
			sink.setMode(t, fmt.Sprintf(`{"refuse_for": %q}`, outage.String()))
			down := time.Now()

			// During the outage: alive, not ready (once unhealthy_after passed), still taking data.
			var readyDuring, healthDuring int
			var readyBody string
			for time.Since(down) < outage-2*time.Second {
				if code, body := httpStatus("http://" + c.telemetry + "/readyz"); code != 200 {
					readyDuring, readyBody = code, body
				}
				if code, _ := httpStatus("http://" + c.telemetry + "/healthz"); code != 200 {
					healthDuring = code
				}
				time.Sleep(500 * time.Millisecond)
			}
			ackedDuring := gen.acksSince(down.Add(time.Second))

			gen.wait(30 * time.Second)
			r := gen.result()
			st := requireDelivered(t, sink, r, 45*time.Second)
			n, _ := missing(r.acked, st.Seqs)
			counts := readExporterCounts(t, v, "otlp")
			logFigures(t, r, st, n, fmt.Sprintf("; outage %s; requests acknowledged during the outage: %d; /readyz during the outage: %d %s; exporter retries %.0f, dropped %.0f",
				outage, ackedDuring, readyDuring, readyBody, counts.retries, counts.dropped))

			if st.Refusals != 1 {
				t.Errorf("sink closed its listeners %d times, want 1", st.Refusals)
			}
			if ackedDuring == 0 {
				t.Errorf("no request was acknowledged during the outage: the queue did not absorb it")
			}
			if healthDuring != 0 {
				t.Errorf("/healthz answered %d during the outage, want 200 throughout", healthDuring)
			}
			if readyDuring != 503 || !strings.Contains(readyBody, "degraded") {
				t.Errorf("/readyz during the outage: %d %s, want 503 degraded (retry_on_failure.unhealthy_after: 2s)", readyDuring, readyBody)
			}
			if counts.dropped != 0 {
				t.Errorf("exporter dropped %.0f items, want 0", counts.dropped)
			}
			if !within(15*time.Second, func() bool { code, _ := httpStatus("http://" + c.telemetry + "/readyz"); return code == 200 }) {
				code, body := httpStatus("http://" + c.telemetry + "/readyz")
				t.Errorf("/readyz after the outage: %d %s, want 200", code, body)
			}
			v.stopClean(t)
		})
	}
}

// TestReliabilityKill9: with the WAL on, vigil is killed with SIGKILL while the sink fails
// every request, so what the client was told is safe exists only in the WAL; vigil is
// restarted on the same config and directory and the sink heals. Every span acknowledged
// before the kill, and after it, must arrive. Variants: fsync always; fsync always with
// batching in the exporter queue (merged requests must not lose their parts' WAL records);
// fsync interval (a process crash leaves the page cache intact, so it must lose nothing
// either; only an OS crash or power loss can cost up to fsync_interval of data).
//
// A batch processor in front of the WAL, and the kill hitting what it holds, is
// TestAcksKill9BatchInFront (acks_test.go), for every receiver.
func TestReliabilityKill9(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
	}{
		{name: "fsync_always"},
		{name: "fsync_always_batch", extra: "batch: {min_size: 1000, max_size: 2000, flush_timeout: 200ms}"},
		{name: "fsync_interval", extra: "fsync: interval, fsync_interval: 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := startFaultSink(t)
			dir := t.TempDir()
			extra := "max_size_mib: 256"
			if tc.extra != "" {
				extra += ", " + tc.extra
			}
			c := newRelConfig(t, sink, walQueue(dir, extra))
			v := startRelVigil(t, "vigil-1", c, true)

			gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 2000, duration: 8 * time.Second})
			gen.start()
			time.Sleep(time.Second)
			sink.setMode(t, `{"fail_percent": 100}`)
			time.Sleep(2 * time.Second)

			v.kill() // SIGKILL to the process group: no shutdown, no flush
			atKill := gen.result()
			inSink := sink.stats(t, true)
			notDelivered, _ := missing(atKill.acked, inSink.Seqs)
			t.Logf("killed vigil: %d spans acknowledged, %d of them not yet at the sink; WAL %d bytes in %d files",
				atKill.ackedSpans, notDelivered, dirSize(t, dir), len(walFiles(t, dir)))
			if notDelivered == 0 {
				t.Fatal("nothing acknowledged was pending at the kill: the scenario proves nothing")
			}
			out, code := runTool(t, 30*time.Second, binary(t, "VIGIL_BIN"), "queue", "check", dir)
			t.Logf("vigil queue check after SIGKILL (exit %d):\n%s", code, strings.TrimSpace(out))
			// A kill between appends leaves no damage; one that lands in the middle of an append
			// (the load does not stop for it) leaves a torn tail of that one record, which was
			// never acknowledged and is cut off on start. Anything else is damage.
			tornTailOnly := code == 1 && strings.Contains(out, "damaged stretches: 1") && strings.Contains(out, "torn tail")
			if code != 0 && !tornTailOnly {
				t.Errorf("vigil queue check after SIGKILL: exit %d, want 0, or 1 for a torn tail alone", code)
			}

			time.Sleep(500 * time.Millisecond) // the client keeps retrying against a dead port meanwhile
			v2 := startRelVigil(t, "vigil-2", c, false)
			sink.setMode(t, `{}`)

			gen.wait(30 * time.Second)
			r := gen.result()
			// The kill's victims first: the acknowledged spans that were only in the WAL.
			if n, gaps, _ := awaitDelivered(t, sink, atKill.acked, 30*time.Second); n > 0 {
				t.Errorf("LOST: %d of the %d spans acknowledged before the kill never arrived; missing: %s", n, atKill.ackedSpans, fmtRuns(gaps, 10))
			}
			st := requireDelivered(t, sink, r, 30*time.Second)
			n, _ := missing(r.acked, st.Seqs)
			logFigures(t, r, st, n, fmt.Sprintf("; at the kill %d spans acknowledged, %d only in the WAL", atKill.ackedSpans, notDelivered))
			v2.stopClean(t)
		})
	}
}

// TestReliabilityWALFull: the sink is down and the WAL's max_size_mib is small. Under block the
// client is pushed back (RESOURCE_EXHAUSTED with RetryInfo), /readyz says degraded, /healthz
// stays 200, and once the sink is back everything acknowledged arrives. Under drop_oldest the
// client is not pushed back, the oldest data is dropped and counted, and exactly the counted
// items are missing.
func TestReliabilityWALFull(t *testing.T) {
	for _, policy := range []string{"block", "drop_oldest"} {
		t.Run(policy, func(t *testing.T) {
			sink := startFaultSink(t)
			dir := t.TempDir()
			c := newRelConfig(t, sink, walQueue(dir, "max_size_mib: 1, block_timeout: 200ms, when_full: "+policy))
			v := startRelVigil(t, "vigil", c, true)
			sink.setMode(t, `{"refuse": true}`)

			// 200-byte spans: about 300 KB/s, so 1 MiB fills in a few seconds.
			gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 1500, payload: 200, duration: 10 * time.Second})
			gen.start()

			var readyFull, healthFull int
			var readyBody string
			var walPeak int64
			full := within(8*time.Second, func() bool {
				code, body := httpStatus("http://" + c.telemetry + "/readyz")
				readyFull, readyBody = code, body
				return policy == "block" && gen.result().refusals[codes.ResourceExhausted] > 0 ||
					policy == "drop_oldest" && readExporterCounts(t, v, "otlp").dropped > 0
			})
			if !full {
				t.Errorf("the WAL never filled up within 8s: WAL %d bytes; %s", dirSize(t, dir), gen.result())
			}
			for range 10 { // watch it hold while full
				if code, body := httpStatus("http://" + c.telemetry + "/readyz"); code != 200 {
					readyFull, readyBody = code, body
				}
				if code, _ := httpStatus("http://" + c.telemetry + "/healthz"); code != 200 {
					healthFull = code
				}
				walPeak = max(walPeak, dirSize(t, dir))
				time.Sleep(200 * time.Millisecond)
			}
			before := readExporterCounts(t, v, "otlp")
			sink.setMode(t, `{}`)
			gen.wait(30 * time.Second)
			r := gen.result()

			if v.exited() {
				t.Fatalf("vigil exited (code %d) with a full WAL", v.cmd.ProcessState.ExitCode())
			}
			if healthFull != 0 {
				t.Errorf("/healthz answered %d while the WAL was full, want 200", healthFull)
			}
			if readyFull != 503 || !strings.Contains(readyBody, "degraded") {
				t.Errorf("/readyz while full: %d %s, want 503 degraded", readyFull, readyBody)
			}
			// 1 MiB of records plus at most a segment's worth of slack (headers, the record
			// being written).
			if limit := int64(2 << 20); walPeak > limit {
				t.Errorf("WAL grew to %d bytes with max_size_mib: 1, want at most %d", walPeak, limit)
			}
			switch policy {
			case "block":
				st := requireDelivered(t, sink, r, 30*time.Second)
				n, _ := missing(r.acked, st.Seqs)
				counts := readExporterCounts(t, v, "otlp")
				logFigures(t, r, st, n, fmt.Sprintf("; WAL peak %d bytes; /readyz while full: %d %s; exporter dropped %.0f", walPeak, readyFull, readyBody, counts.dropped))
				if r.refusals[codes.ResourceExhausted] == 0 || r.retryInfo == 0 {
					t.Errorf("the client never saw RESOURCE_EXHAUSTED with RetryInfo: %s", r)
				}
				if counts.dropped != 0 {
					t.Errorf("exporter dropped %.0f items under block, want 0", counts.dropped)
				}
			case "drop_oldest":
				// Nothing more is dropped once the sink is back: wait until no more than the
				// counted drops are missing and the sink has gone quiet.
				dropped := int(readExporterCounts(t, v, "otlp").dropped)
				n, gaps, st := awaitMissingAtMost(t, sink, r.acked, dropped, 20*time.Second)
				counts := readExporterCounts(t, v, "otlp")
				logFigures(t, r, st, n, fmt.Sprintf("; WAL peak %d bytes; /readyz while full: %d %s; exporter dropped %.0f (%.0f when the sink came back)",
					walPeak, readyFull, readyBody, counts.dropped, before.dropped))
				if counts.dropped == 0 {
					t.Errorf("nothing was counted as dropped under drop_oldest with a full WAL")
				}
				byReason := sum(scrape(t, v.telemetry), "vigil_exporter_dropped_items_total", map[string]string{"reason": "drop_oldest"})
				if byReason != counts.dropped {
					t.Errorf("vigil_exporter_dropped_items_total{reason=drop_oldest} = %.0f, want the exporter's dropped items, %.0f", byReason, counts.dropped)
				}
				if float64(n) != counts.dropped {
					t.Errorf("%d acknowledged spans are missing but %.0f were counted as dropped: every loss must be counted, and only losses (missing: %s)",
						n, counts.dropped, fmtRuns(gaps, 10))
				}
				if r.refusals[codes.ResourceExhausted] > 0 {
					t.Errorf("drop_oldest pushed back on the client %d times, want never", r.refusals[codes.ResourceExhausted])
				}
				// The dropped spans must be the oldest: every gap ends before the first span
				// acknowledged after the sink came back... at least, no gap may be among the
				// newest acknowledged spans.
				if len(gaps) > 0 && gaps[len(gaps)-1][1] >= int64(r.ackedSpans)-1 {
					t.Errorf("the newest spans were dropped (gaps %s), want the oldest", fmtRuns(gaps, 10))
				}
			}
			if !within(15*time.Second, func() bool { code, _ := httpStatus("http://" + c.telemetry + "/readyz"); return code == 200 }) {
				code, body := httpStatus("http://" + c.telemetry + "/readyz")
				t.Errorf("/readyz after the WAL drained: %d %s, want 200", code, body)
			}
			if code := v.stop(30 * time.Second); code != 0 {
				t.Errorf("vigil exited %d after SIGTERM, want 0", code)
			}
		})
	}
}

// TestReliabilityOverload: the sink takes 200 ms per request and vigil sends with two
// consumers: 1000 spans/s, against an input of 4000 spans/s of 2 KB spans (8 MB/s). The
// memory queue is capped at 48 MiB (sizer: bytes) and memory_limiter at limit_mib: 64, so
// either may push back first. vigil's RSS must stay under the limit plus a stated margin, the
// client must be pushed back, and once the sink speeds up everything acknowledged arrives.
func TestReliabilityOverload(t *testing.T) {
	const (
		limitMiB  = 64
		queueMiB  = 48
		marginMiB = 64 // Go runtime, gRPC buffers, GC headroom: see docs/reliability.md
	)
	sink := startFaultSink(t)
	sink.setMode(t, `{"delay": "200ms"}`)
	c := newRelConfig(t, sink, fmt.Sprintf("{enabled: true, num_consumers: 2, sizer: bytes, queue_size: %d, when_full: block, block_timeout: 500ms}", queueMiB<<20))
	c.timeout = "5s"
	c.processors = fmt.Sprintf("  memory_limiter: {check_interval: 100ms, limit_mib: %d}", limitMiB)
	c.pipeline = "memory_limiter"
	v := startRelVigil(t, "vigil", c, true)
	rss := sampleRSS(v.cmd.Process.Pid, 50*time.Millisecond)

	gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 4000, workers: 8, payload: 2000, duration: 15 * time.Second})
	gen.start()
	// Watch it while overloaded: queue occupancy, memory_limiter refusals, /readyz.
	var queueBytes, limiterRefusing, heapPeak, refused, queueFull float64
	var readyBody string
	readyCode := 200
	for gen.running() {
		if code, body := httpStatus("http://" + c.telemetry + "/readyz"); code != 200 {
			readyCode, readyBody = code, body
		}
		samples := scrape(t, c.telemetry)
		queueBytes = max(queueBytes, sum(samples, "vigil_exporter_queue_bytes", nil))
		limiterRefusing = max(limiterRefusing, sum(samples, "vigil_memory_limiter_refusing", nil))
		heapPeak = max(heapPeak, sum(samples, "vigil_memory_limiter_heap_bytes", nil))
		// Refusals are counted on the edge into the component that refused: the receiver's.
		refused = sum(samples, "vigil_component_failed_items_total", map[string]string{"kind": "receiver"})
		queueFull = sum(samples, "vigil_exporter_enqueue_failures_total", map[string]string{"reason": "full"})
		time.Sleep(250 * time.Millisecond)
	}
	gen.wait(20 * time.Second)
	peak, samples := rss.stop()
	r := gen.result()
	sink.setMode(t, `{}`)
	st := requireDelivered(t, sink, r, 60*time.Second)
	n, _ := missing(r.acked, st.Seqs)
	counts := readExporterCounts(t, v, "otlp")
	logFigures(t, r, st, n, fmt.Sprintf("; peak RSS %.1f MiB over %d samples (limit_mib %d + margin %d); peak heap %.1f MiB; peak queue %.1f MiB of %d; memory_limiter seen refusing: %v; receiver refused %.0f spans; exporter queue full %.0f times; /readyz while overloaded: %d %s; exporter dropped %.0f",
		float64(peak)/(1<<20), samples, limitMiB, marginMiB, heapPeak/(1<<20), queueBytes/(1<<20), queueMiB, limiterRefusing > 0, refused, queueFull, readyCode, readyBody, counts.dropped))

	if limit := int64(limitMiB+marginMiB) << 20; peak > limit {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB (limit_mib %d + margin %d)", float64(peak)/(1<<20), limitMiB+marginMiB, limitMiB, marginMiB)
	}
	if r.backpressure() == 0 {
		t.Errorf("the client was never pushed back (no RESOURCE_EXHAUSTED or UNAVAILABLE): %s", r)
	}
	if counts.dropped != 0 {
		t.Errorf("exporter dropped %.0f items, want 0", counts.dropped)
	}
	v.stopClean(t)
}

// TestReliabilityShutdownPendingRetry: one request is acknowledged, the sink throttles its
// first delivery with RetryInfo 3s and then heals, and vigil gets SIGTERM while the batch waits
// out that delay, with the default 20s grace period. The backend is healthy and there is time:
// with the memory queue the batch must be delivered before vigil exits 0; with the WAL it may
// instead stay in the WAL, and must then be delivered after a restart.
func TestReliabilityShutdownPendingRetry(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		name := map[bool]string{false: "memory", true: "wal"}[persistent]
		t.Run(name, func(t *testing.T) {
			sink := startFaultSink(t)
			sink.setMode(t, `{"throttle_percent": 100, "retry_after": "3s"}`)
			queue := memoryQueue
			if persistent {
				queue = walQueue(t.TempDir(), "")
			}
			c := newRelConfig(t, sink, queue)
			v := startRelVigil(t, "vigil-1", c, true)

			gen := newLoadGen(t, loadConfig{addr: c.grpc, maxSpans: 100, duration: 5 * time.Second})
			gen.start()
			gen.wait(5 * time.Second)
			r := gen.result()
			if r.ackedSpans != 100 {
				t.Fatalf("acknowledged %d spans, want 100: %s%s", r.ackedSpans, r, r.errorSummary())
			}
			if !within(5*time.Second, func() bool { return sink.stats(t, false).Injected["throttled"] > 0 }) {
				t.Fatal("the sink never throttled the request")
			}
			sink.setMode(t, `{}`)
			start := time.Now()
			code := v.stop(30 * time.Second)
			took := time.Since(start)
			st := sink.stats(t, true)
			t.Logf("FIGURES %s: SIGTERM during a 3s RetryInfo wait, sink healthy: exit %d after %s; the sink holds %d of 100 acknowledged spans",
				t.Name(), code, took.Round(time.Millisecond), st.Unique)
			if persistent && st.Unique < 100 {
				v2 := startRelVigil(t, "vigil-2", c, true)
				st = requireDelivered(t, sink, r, 15*time.Second)
				t.Logf("FIGURES %s: after a restart the sink holds %d of 100", t.Name(), st.Unique)
				v2.stopClean(t)
				return
			}
			if n, gaps := missing(r.acked, st.Seqs); n > 0 {
				t.Errorf("LOST at graceful shutdown: %d acknowledged spans (%s) were dropped although the sink was healthy and %s of the 20s grace period were left; exit %d; vigil logged:\n%s",
					n, fmtRuns(gaps, 3), (20*time.Second - took).Round(time.Second), code, errorLines(v.output()))
			}
			if code != 0 {
				t.Errorf("vigil exited %d after SIGTERM, want 0", code)
			}
		})
	}
}

// errorLines returns the lines of a log logged at ERROR.
func errorLines(log string) string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestReliabilityWALCorruption: vigil is stopped with data pending in the WAL (the sink is
// down), one byte of a record in the middle of a segment is flipped, and vigil is started
// again: it must start, skip and count the bad record (metric and `vigil queue check`), and
// deliver every other pending record. Two places: inside the encoded request (the checksum
// catches it), and in the record's length field (the reader must find the next record by its
// magic rather than trust the length, or it would lose everything after).
func TestReliabilityWALCorruption(t *testing.T) {
	for _, where := range []string{"payload", "length"} {
		t.Run(where, func(t *testing.T) {
			sink := startFaultSink(t)
			sink.setMode(t, `{"refuse": true}`)
			dir := t.TempDir()
			c := newRelConfig(t, sink, walQueue(dir, "max_size_mib: 64"))
			v := startRelVigil(t, "vigil-1", c, true, "--grace-period", "2s")

			// 40 requests of 100 spans, each one WAL record (no queue batching).
			gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 2000, maxSpans: 4000, duration: 10 * time.Second})
			gen.start()
			gen.wait(10 * time.Second)
			r := gen.result()
			if r.ackedSpans != 4000 {
				t.Fatalf("acknowledged %d spans, want 4000: %s%s", r.ackedSpans, r, r.errorSummary())
			}
			code := v.stop(30 * time.Second)
			t.Logf("vigil stopped with the sink down: exit %d", code)

			qdir := queueDir(t, dir)
			seg, off, index, count := corruptMiddleRecord(t, qdir, where)
			t.Logf("flipped the byte at offset %d of %s, in the %s of record %d of %d", off, seg, where, index, count)

			out, code := runTool(t, 30*time.Second, binary(t, "VIGIL_BIN"), "queue", "check", qdir)
			t.Logf("vigil queue check (exit %d):\n%s", code, strings.TrimSpace(out))
			if code == 0 || !strings.Contains(strings.ToLower(out), "corrupt") {
				t.Errorf("vigil queue check: exit %d, want non-zero and the corrupt record reported", code)
			}

			v2 := startRelVigil(t, "vigil-2", c, false)
			sink.setMode(t, `{}`)
			n, gaps, st := awaitMissingAtMost(t, sink, r.acked, 100, 30*time.Second)
			corruptions := metricSum(t, v2, "vigil_exporter_wal_corruptions_total")
			if corruptions == 0 {
				t.Errorf("no WAL corruption counted: vigil_exporter_wal_corruptions_total is 0 or absent; WAL-related metrics: %v", metricNames(t, v2, "wal"))
			}
			logFigures(t, r, st, n, fmt.Sprintf("; corrupt records counted: %.0f; missing seqs: %s", corruptions, fmtRuns(gaps, 10)))
			// Exactly one record of 100 spans (one client request) may be lost: the corrupt one.
			if n != 100 || len(gaps) != 1 || gaps[0][0]%100 != 0 {
				t.Errorf("%d acknowledged spans missing (%s), want exactly the 100 of the one corrupt record", n, fmtRuns(gaps, 10))
			}
			v2.stopCleanExcept(t, "corrupt")

			// The damaged segment stays on disk for inspection after the drain: check still
			// reports it (exit 1) with nothing pending, --repair removes it, and then all is clean.
			out, code = runTool(t, 30*time.Second, binary(t, "VIGIL_BIN"), "queue", "check", qdir)
			t.Logf("vigil queue check after the drain (exit %d):\n%s", code, strings.TrimSpace(out))
			if code != 1 || !strings.Contains(out, "0 pending delivery") {
				t.Errorf("vigil queue check after the drain: exit %d, want 1 with the damage reported and nothing pending", code)
			}
			out, code = runTool(t, 30*time.Second, binary(t, "VIGIL_BIN"), "queue", "check", "--repair", qdir)
			if code != 0 {
				t.Errorf("vigil queue check --repair: exit %d, want 0:\n%s", code, out)
			}
			out, code = runTool(t, 30*time.Second, binary(t, "VIGIL_BIN"), "queue", "check", qdir)
			if code != 0 || strings.Contains(out, "damaged") {
				t.Errorf("vigil queue check after --repair: exit %d, want 0 and no damage:\n%s", code, out)
			}
		})
	}
}

// queueDir is the exporter's WAL directory under the configured directory: the sender keeps
// one per exporter (named after its id) so that several exporters can share a directory.
func queueDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var subdirs []string
	for _, e := range entries {
		if e.IsDir() {
			subdirs = append(subdirs, filepath.Join(dir, e.Name()))
		}
	}
	if len(subdirs) == 1 {
		return subdirs[0]
	}
	return dir
}
