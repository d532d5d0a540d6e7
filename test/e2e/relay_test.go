//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// relayA is the agent under test: OTLP in over gRPC and HTTP, memory_limiter and batch, and OTLP
// out to vigil B with a different compression per signal. The batch sizes are small so that
// batches get split and merged on the way.
const relayA = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
      http:
        endpoint: %[2]s
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
  batch:
    send_batch_size: 256
    send_batch_max_size: 512
    timeout: 200ms
exporters:
  otlp/zstd:
    endpoint: %[3]s
    tls: {insecure: true}
    compression: zstd
    timeout: 10s
    retry_on_failure: {enabled: true, initial_interval: 100ms, max_interval: 1s}
    sending_queue: {enabled: true, num_consumers: 4, queue_size: 100}
  otlp/gzip:
    endpoint: %[3]s
    tls: {insecure: true}
    compression: gzip
  otlp/none:
    endpoint: %[3]s
    tls: {insecure: true}
    compression: none
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/zstd]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/gzip]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/none]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`

// relayB receives from A and writes each signal to its own OTLP/JSON file.
const relayB = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  file/traces: {path: %[2]s/traces.jsonl, flush_interval: 100ms}
  file/metrics: {path: %[2]s/metrics.jsonl, flush_interval: 100ms}
  file/logs: {path: %[2]s/logs.jsonl, flush_interval: 100ms}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [file/traces]}
    metrics: {receivers: [otlp], exporters: [file/metrics]}
    logs: {receivers: [otlp], exporters: [file/logs]}
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[3]s}
`

// tgRun is one telemetrygen invocation and the number of items it must produce.
type tgRun struct {
	run  string // value of the e2e.run attribute on every item
	http bool
	args []string // signal-specific flags
	want int
	// per-signal shape, for the checks
	workers, perWorker, childSpans int
}

// TestRelayTelemetrygen sends traces, metrics and logs from telemetrygen through vigil A to
// vigil B, over gRPC and HTTP, and checks that B wrote every item exactly once with its
// attributes intact, that A's counters agree, and that both shut down cleanly.
func TestRelayTelemetrygen(t *testing.T) {
	id := runID(t)
	out := t.TempDir()
	aGRPC, aHTTP, aTel := freeAddr(t), freeAddr(t), freeAddr(t)
	bGRPC, bTel := freeAddr(t), freeAddr(t)

	b := startVigil(t, "vigil-B", fmt.Sprintf(relayB, bGRPC, out, bTel), bTel)
	a := startVigil(t, "vigil-A", fmt.Sprintf(relayA, aGRPC, aHTTP, bGRPC, aTel), aTel)

	send := func(t *testing.T, signal string, r tgRun) {
		t.Helper()
		args := append([]string{signal}, r.args...)
		args = append(args,
			"--workers", strconv.Itoa(r.workers), "--rate", "0", "--otlp-insecure",
			"--service", "e2e-relay",
			"--telemetry-attributes", fmt.Sprintf("e2e.run=%q", r.run),
			"--telemetry-attributes", "e2e.n=42",
			"--telemetry-attributes", "e2e.flag=true",
			"--otlp-attributes", fmt.Sprintf("e2e.res=%q", id),
			"--otlp-attributes", "e2e.res_n=7",
		)
		if r.http {
			args = append(args, "--otlp-http", "--otlp-endpoint", aHTTP)
		} else {
			args = append(args, "--otlp-endpoint", aGRPC)
		}
		runTelemetrygen(t, args...)
	}

	// checkCommon checks the count per run and the attributes every item must carry.
	checkCommon := func(t *testing.T, items []item, runs []tgRun) {
		t.Helper()
		byRun := map[string][]item{}
		want := 0
		for _, r := range runs {
			want += r.want
		}
		if len(items) != want {
			t.Errorf("B wrote %d items, want exactly %d", len(items), want)
		}
		for i, it := range items {
			byRun[it.run] = append(byRun[it.run], it)
			if got := attrString(it.res, "e2e.res"); got != id {
				t.Fatalf("item %d: resource e2e.res = %q, want %q", i, got, id)
			}
			if got := attrInt(it.res, "e2e.res_n"); got != 7 {
				t.Fatalf("item %d: resource e2e.res_n = %d, want 7", i, got)
			}
			if got := attrString(it.res, "service.name"); got != "e2e-relay" {
				t.Fatalf("item %d: resource service.name = %q, want e2e-relay", i, got)
			}
			if attrInt(it.attrs, "e2e.n") != 42 || !attrBool(it.attrs, "e2e.flag") {
				t.Fatalf("item %d: attributes e2e.n / e2e.flag lost: %v", i, it.attrs.AsRaw())
			}
		}
		for _, r := range runs {
			if got := len(byRun[r.run]); got != r.want {
				t.Errorf("run %s: %d items, want %d", r.run, got, r.want)
			}
			delete(byRun, r.run)
		}
		for run, its := range byRun {
			t.Errorf("%d items with unexpected e2e.run %q", len(its), run)
		}
	}

	// Expected totals per signal and exporter of A, checked against its counters at the end.
	type flow struct{ signal, exporter string }
	wantSent := map[flow]int{}

	t.Run("traces", func(t *testing.T) {
		runs := []tgRun{
			{run: id + "-traces-grpc", workers: 3, perWorker: 40, childSpans: 4},
			{run: id + "-traces-http", http: true, workers: 2, perWorker: 25, childSpans: 1},
		}
		want := 0
		for i := range runs {
			r := &runs[i]
			r.args = []string{"--traces", strconv.Itoa(r.perWorker), "--child-spans", strconv.Itoa(r.childSpans)}
			// Each trace is a root span with childSpans children; every worker sends perWorker traces.
			r.want = r.workers * r.perWorker * (1 + r.childSpans)
			want += r.want
			send(t, "traces", *r)
		}
		items := waitItems(t, "traces", filepath.Join(out, "traces.jsonl"), want)
		checkCommon(t, items, runs)

		spans := map[string]bool{}
		traces := map[string][]item{}
		dups, firstDup := 0, ""
		for _, it := range items {
			k := it.traceID + "/" + it.spanID
			if spans[k] {
				if dups++; firstDup == "" {
					firstDup = k
				}
			}
			spans[k] = true
			traces[it.traceID] = append(traces[it.traceID], it)
		}
		if dups > 0 {
			t.Errorf("%d spans arrived more than once, the first: %s", dups, firstDup)
		}
		for _, r := range runs {
			n, bad, firstBad := 0, 0, ""
			for tid, its := range traces {
				if its[0].run != r.run {
					continue
				}
				n++
				roots := 0
				for _, it := range its {
					if it.root {
						roots++
					}
				}
				if len(its) != 1+r.childSpans || roots != 1 {
					if bad++; firstBad == "" {
						firstBad = fmt.Sprintf("trace %s has %d spans and %d roots", tid, len(its), roots)
					}
				}
			}
			if bad > 0 {
				t.Errorf("run %s: %d traces are not one root with %d children, the first: %s", r.run, bad, r.childSpans, firstBad)
			}
			if want := r.workers * r.perWorker; n != want {
				t.Errorf("run %s: %d traces, want %d", r.run, n, want)
			}
		}
		wantSent[flow{"traces", "otlp/zstd"}] = want
	})

	t.Run("metrics", func(t *testing.T) {
		runs := []tgRun{
			{run: id + "-metrics-grpc", workers: 3, perWorker: 150},
			{run: id + "-metrics-http", http: true, workers: 2, perWorker: 60},
		}
		want := 0
		for i := range runs {
			r := &runs[i]
			r.args = []string{"--metrics", strconv.Itoa(r.perWorker), "--otlp-metric-name", "e2e_gauge"}
			// One gauge data point per metric; each worker counts its values 0, 1, … perWorker-1.
			r.want = r.workers * r.perWorker
			want += r.want
			send(t, "metrics", *r)
		}
		items := waitItems(t, "metrics", filepath.Join(out, "metrics.jsonl"), want)
		checkCommon(t, items, runs)
		// No per-point ID exists, but the values do: each must appear once per worker.
		for _, r := range runs {
			seen := map[int64]int{}
			for _, it := range items {
				if it.run != r.run {
					continue
				}
				if it.metric != "e2e_gauge" {
					t.Fatalf("metric name %q, want e2e_gauge", it.metric)
				}
				seen[it.value]++
			}
			for v := range int64(r.perWorker) {
				if seen[v] != r.workers {
					t.Errorf("run %s: value %d seen %d times, want %d (one per worker)", r.run, v, seen[v], r.workers)
					break // one example is enough; the count check above gives the size
				}
			}
		}
		wantSent[flow{"metrics", "otlp/gzip"}] = want
	})

	t.Run("logs", func(t *testing.T) {
		runs := []tgRun{
			{run: id + "-logs-grpc", workers: 3, perWorker: 300},
			{run: id + "-logs-http", http: true, workers: 1, perWorker: 80},
		}
		want := 0
		for i := range runs {
			r := &runs[i]
			r.args = []string{"--logs", strconv.Itoa(r.perWorker), "--body", "e2e body " + r.run, "--severity-text", "Warn", "--severity-number", "13"}
			r.want = r.workers * r.perWorker
			want += r.want
			send(t, "logs", *r)
		}
		items := waitItems(t, "logs", filepath.Join(out, "logs.jsonl"), want)
		checkCommon(t, items, runs)
		for _, it := range items {
			if it.body != "e2e body "+it.run || it.severity != "Warn" || attrString(it.attrs, "app") != "server" {
				t.Fatalf("log record changed on the way: body %q, severity %q, attributes %v", it.body, it.severity, it.attrs.AsRaw())
			}
		}
		wantSent[flow{"logs", "otlp/none"}] = want
	})

	if t.Failed() {
		return
	}

	// A's own counters must agree with what B wrote: every item its receiver took in reached
	// the exporter and was acknowledged by B, and nothing failed or was dropped.
	samples := scrape(t, a.telemetry)
	for f, want := range wantSent {
		signal, exporter := f.signal, f.exporter
		exp := map[string]string{"kind": "exporter", "component": exporter, "signal": signal}
		rcv := map[string]string{"kind": "receiver", "component": "otlp", "signal": signal}
		got := map[string]float64{
			"receiver received": sum(samples, "vigil_component_received_items_total", rcv),
			"exporter received": sum(samples, "vigil_component_received_items_total", exp),
			"exporter sent":     sum(samples, "vigil_component_sent_items_total", exp),
		}
		for what, v := range got {
			if v != float64(want) {
				t.Errorf("A %s: %s = %g, want %d", signal, what, v, want)
			}
		}
		for _, name := range []string{"vigil_component_failed_items_total", "vigil_component_dropped_items_total"} {
			if v := sum(samples, name, exp); v != 0 {
				t.Errorf("A %s: %s{component=%q} = %g, want 0", signal, name, exporter, v)
			}
		}
	}

	a.stopClean(t)
	b.stopClean(t)
}
