//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// The acknowledgement scenarios (docs/acknowledgements.md): what a client was told is safe must
// arrive, whichever receiver it used, with a batch processor holding data in front of a
// persistent queue, under end_to_end, and when the client gives up early.

// ackReceiver is one way in: the receiver protocol, the signal, and the exporter the same
// signal leaves by.
type ackReceiver struct {
	name, protocol, signal, receiver, exporter string
	perRequest                                 int
}

var ackReceivers = []ackReceiver{
	{name: "otlp_grpc", protocol: "otlp-grpc", signal: "traces", receiver: "otlp", exporter: "otlp", perRequest: 500},
	{name: "otlp_http", protocol: "otlp-http", signal: "logs", receiver: "otlp", exporter: "otlphttp", perRequest: 500},
	{name: "remote_write", protocol: "remote-write", signal: "metrics", receiver: "prometheusremotewrite", exporter: "prometheusremotewrite", perRequest: 500},
}

// configure points c at r's receiver and exporter and returns the load generator's address.
func (r ackReceiver) configure(t *testing.T, c *relConfig) string {
	c.signal, c.receivers, c.exporter = r.signal, r.receiver, r.exporter
	switch r.protocol {
	case "otlp-http":
		c.http = freeAddr(t)
		return c.http
	case "remote-write":
		c.rw = freeAddr(t)
		return c.rw
	}
	return c.grpc
}

// queueFor adapts a sending queue flow map to the exporter: remote write sends batches one
// after the other (one consumer), to keep every series in order.
func queueFor(exporter, q string) string {
	if exporter == "prometheusremotewrite" {
		return strings.Replace(q, "num_consumers: 4", "num_consumers: 1", 1)
	}
	return q
}

// TestAcksKill9BatchInFront is the configuration people actually run: a batch processor with
// a 5s timeout in front of an exporter with a persistent queue. The sink refuses 30%, then goes
// down; vigil is killed with SIGKILL while the batch processor holds data; it restarts on the
// same WAL and the sink comes back. Every item acknowledged — before the kill and after — must
// arrive: what the batch processor held at the kill had not been acknowledged, so its clients
// sent it again. Once per receiver: OTLP/gRPC, OTLP/HTTP, Prometheus remote write.
func TestAcksKill9BatchInFront(t *testing.T) {
	for _, rc := range ackReceivers {
		t.Run(rc.name, func(t *testing.T) {
			sink := startFaultSink(t)
			dir := t.TempDir()
			// The queue cuts each 5s flush into requests of 1000 items, for the sink's faults to hit.
			c := newRelConfig(t, sink, queueFor(rc.exporter, walQueue(dir, "max_size_mib: 256, batch: {min_size: 0, max_size: 1000}")))
			addr := rc.configure(t, c)
			// idle_timeout 0s: only the timeout sends, so that data sits in the processor for
			// seconds, as with the Collector's batch processor.
			c.processors = "  batch: {send_batch_size: 100000, timeout: 5s, idle_timeout: 0s}"
			c.pipeline = "batch"
			v := startRelVigil(t, "vigil-1", c, true)
			if strings.Contains(v.output(), "buffering processor") {
				t.Errorf("vigil still warns about a buffering processor in front of a persistent queue")
			}
			sink.setMode(t, `{"fail_percent": 30}`)

			gen := newLoadGen(t, loadConfig{addr: addr, protocol: rc.protocol, perRequest: rc.perRequest,
				rate: 2500, workers: 48, duration: 20 * time.Second, timeout: 12 * time.Second})
			gen.start()
			// The batch processor sends at about 5s (into the flaky sink), 10s (into the WAL
			// only: the sink is down) and 15s; the kill comes between the last two.
			time.Sleep(6500 * time.Millisecond)
			sink.setMode(t, `{"refuse": true}`)
			time.Sleep(6 * time.Second)

			v.kill()
			atKill := gen.result()
			inSink := sink.stats(t, true)
			notDelivered, _ := missing(atKill.acked, inSink.Seqs)
			inFlight := atKill.offered - atKill.ackedSpans
			t.Logf("killed vigil: %d items offered, %d acknowledged (%d of them only in the WAL), %d not acknowledged (in the batch processor or on their way)",
				atKill.offered, atKill.ackedSpans, notDelivered, inFlight)
			if st := sink.stats(t, false); st.FailuresInjected == 0 {
				t.Errorf("the sink refused nothing before it went down: %+v", st)
			}
			if notDelivered == 0 || inFlight < rc.perRequest {
				t.Fatalf("the kill hit nothing: %d acknowledged items only in the WAL, %d unacknowledged in flight; the scenario proves nothing", notDelivered, inFlight)
			}

			time.Sleep(500 * time.Millisecond)
			v2 := startRelVigil(t, "vigil-2", c, false)
			time.Sleep(time.Second)
			sink.setMode(t, `{}`)

			gen.wait(40 * time.Second)
			r := gen.result()
			if n, gaps, _ := awaitDelivered(t, sink, atKill.acked, 30*time.Second); n > 0 {
				t.Errorf("LOST: %d of the %d items acknowledged before the kill never arrived; missing: %s", n, atKill.ackedSpans, fmtRuns(gaps, 10))
			}
			st := requireDelivered(t, sink, r, 30*time.Second)
			n, _ := missing(r.acked, st.Seqs)
			if r.ackedSpans < 20000 {
				t.Errorf("only %d items acknowledged in all; the scenario wants tens of thousands", r.ackedSpans)
			}
			logFigures(t, r, st, n, fmt.Sprintf("; at the kill %d items acknowledged (%d only in the WAL), %d unacknowledged in flight",
				atKill.ackedSpans, notDelivered, inFlight))
			v2.stopClean(t)
		})
	}
}

// TestAcksEndToEnd: with acknowledgements end_to_end the client is told OK only for data the
// backend has. (i) The backend dies mid-run: at every point, everything acknowledged is already
// at the sink; once it is back, everything acknowledged arrives. (ii) Fan-out to two exporters
// of which one refuses everything for good: the client hears the refusal, and the healthy
// branch still got the data.
func TestAcksEndToEnd(t *testing.T) {
	t.Run("backend dies", func(t *testing.T) {
		sink := startFaultSink(t)
		c := newRelConfig(t, sink, memoryQueue)
		c.exporterAcks = "end_to_end"
		c.processors = "  batch: {send_batch_size: 1000, timeout: 200ms}"
		c.pipeline = "batch"
		v := startRelVigil(t, "vigil", c, true)
		gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 2000, workers: 16, duration: 12 * time.Second, timeout: 20 * time.Second})
		gen.start()
		check := func(when string) loadResult {
			t.Helper()
			r := gen.result()
			st := sink.stats(t, true)
			if n, gaps := missing(r.acked, st.Seqs); n > 0 {
				t.Errorf("%s: %d items acknowledged end to end are not at the sink: %s", when, n, fmtRuns(gaps, 10))
			}
			return r
		}
		time.Sleep(2 * time.Second)
		check("before the outage")
		// Hung requests first (the backend takes them and never answers), then no backend at all.
		sink.setMode(t, `{"hang_percent": 100, "hang": "3s"}`)
		time.Sleep(time.Second)
		atHang := check("while the backend hangs")
		sink.setMode(t, `{"refuse": true}`)
		time.Sleep(3 * time.Second)
		during := check("while the backend is down")
		if grown := during.ackedSpans - atHang.ackedSpans; grown > 0 {
			t.Errorf("%d items were acknowledged while the backend could take none", grown)
		}
		sink.setMode(t, `{}`)
		gen.wait(40 * time.Second)
		r := gen.result()
		st := requireDelivered(t, sink, r, 30*time.Second)
		n, _ := missing(r.acked, st.Seqs)
		logFigures(t, r, st, n, fmt.Sprintf("; acknowledged when the backend started hanging %d, after 3s of outage %d", atHang.ackedSpans, during.ackedSpans))
		v.stopClean(t)
	})

	t.Run("one branch refuses for good", func(t *testing.T) {
		good, bad := startFaultSink(t), startFaultSink(t)
		bad.setMode(t, `{"reject_percent": 100}`)
		c := newRelConfig(t, good, memoryQueue)
		c.exporter = "otlp"
		c.exporterAcks = "end_to_end"
		c.extraExporters = fmt.Sprintf("  otlp/refuses:\n    endpoint: %s\n    tls: {insecure: true}\n    acknowledgements: end_to_end\n    retry_on_failure: %s\n    sending_queue: %s\n",
			bad.grpc, c.retry, memoryQueue)
		c.exporterList = "otlp, otlp/refuses"
		v := startRelVigil(t, "vigil", c, true)
		gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 1000, workers: 4, duration: 3 * time.Second})
		gen.start()
		gen.wait(20 * time.Second)
		r := gen.result()
		if r.ackedSpans != 0 {
			t.Errorf("%d items acknowledged although one exporter's backend refused everything", r.ackedSpans)
		}
		if r.rejected == 0 || !strings.Contains(r.firstErr[codes.InvalidArgument], "rejected on purpose") {
			t.Errorf("the client did not hear the permanent refusal: %s%s", r, r.errorSummary())
		}
		wantSpans := r.offered
		if !within(20*time.Second, func() bool { return good.stats(t, false).Unique == int64(wantSpans) }) {
			t.Errorf("the healthy branch got %d of the %d items offered", good.stats(t, false).Unique, wantSpans)
		}
		t.Logf("FIGURES %s: load: %s; healthy sink %d unique; refusing sink rejected %d requests",
			t.Name(), r, good.stats(t, false).Unique, bad.stats(t, false).Injected["rejected"])
		v.stopCleanExcept(t, "refused the data for good")
	})
}

// TestAcksClientDeadline: the client gives up (1s) before the batch processor sends (3s). It is
// told to retry and sends again; nothing is lost — the abandoned data is still delivered — and
// the resends arrive as duplicates, which vigil counts as abandoned acknowledgements.
func TestAcksClientDeadline(t *testing.T) {
	sink := startFaultSink(t)
	c := newRelConfig(t, sink, memoryQueue)
	c.processors = "  batch: {send_batch_size: 100000, timeout: 3s, idle_timeout: 0s}"
	c.pipeline = "batch"
	v := startRelVigil(t, "vigil", c, true)
	gen := newLoadGen(t, loadConfig{addr: c.grpc, rate: 1000, workers: 8, duration: 6 * time.Second, timeout: time.Second})
	gen.start()
	gen.wait(60 * time.Second)
	r := gen.result()
	st := requireDelivered(t, sink, r, 30*time.Second)
	n, _ := missing(r.acked, st.Seqs)
	abandoned := metricSum(t, v, "vigil_receiver_acknowledgements_abandoned_total")
	if st.Duplicates == 0 || abandoned == 0 {
		t.Errorf("duplicates %d, abandoned acknowledgements %v: want both > 0 (every first attempt timed out)", st.Duplicates, abandoned)
	}
	if r.refusals[codes.DeadlineExceeded] == 0 {
		t.Errorf("the client never hit its deadline: %s", r)
	}
	logFigures(t, r, st, n, fmt.Sprintf("; vigil_receiver_acknowledgements_abandoned_total %v", abandoned))
	v.stopClean(t)
}
