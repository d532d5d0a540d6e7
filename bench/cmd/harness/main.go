// Command harness measures Vigil as an OTLP/gRPC trace relay: loadgen → vigil (otlp → batch →
// otlp) → sink. Per scenario it starts a fresh sink and vigil, warms up, runs loadgen for a fixed
// duration, and reads vigil's CPU time and peak RSS from /proc. It prints a Markdown table and
// writes it to -out.
package main

import (
	"github.com/vigilhq/vigil/bench/internal/benchutil"

	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	vigil, loadgen, sink string
	duration, warmup     time.Duration
	concurrency, conns   int
	spans                int
	rate                 float64
	compressions         []string
	queues               []string
	batchSize            int
	out                  string
	keep                 bool
}

func main() {
	var o options
	flag.StringVar(&o.vigil, "vigil", os.Getenv("VIGIL_BIN"), "vigil binary (default $VIGIL_BIN; empty: build ./cmd/vigil)")
	flag.StringVar(&o.loadgen, "loadgen", "", "loadgen binary (empty: build ./bench/cmd/loadgen)")
	flag.StringVar(&o.sink, "sink", "", "sink binary (empty: build ./bench/cmd/sink)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured load duration per scenario")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.concurrency, "concurrency", 8, "loadgen concurrent streams")
	flag.IntVar(&o.conns, "conns", 2, "loadgen gRPC connections")
	flag.IntVar(&o.spans, "spans", 1000, "spans per loadgen request")
	flag.Float64Var(&o.rate, "rate", 0, "loadgen requests per second (0: as fast as vigil acknowledges)")
	comp := flag.String("compression", "none,zstd", "comma-separated scenarios: compression on both hops (none, gzip, zstd)")
	flag.IntVar(&o.batchSize, "batch-size", 8192, "vigil batch processor send_batch_size")
	queues := flag.String("queue", "memory", "comma-separated scenarios: the exporter's sending queue: memory (batch processor in front), "+
		"wal (persistent, fsync always, batching in the queue), wal-interval (the same with fsync interval)")
	flag.StringVar(&o.out, "out", "bench/results/latest.md", "where to write the Markdown report (empty: stdout only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	flag.Parse()
	o.compressions = strings.Split(*comp, ",")
	o.queues = strings.Split(*queues, ",")
	if err := run(o); err != nil {
		log.Fatalf("harness: %v", err)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		log.Printf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	for _, b := range []struct {
		path *string
		pkg  string
	}{{&o.vigil, "./cmd/vigil"}, {&o.loadgen, "./bench/cmd/loadgen"}, {&o.sink, "./bench/cmd/sink"}} {
		if *b.path == "" {
			if *b.path, err = build(dir, b.pkg); err != nil {
				return err
			}
		}
	}
	var rows []row
	for _, q := range o.queues {
		for _, c := range o.compressions {
			q, c := strings.TrimSpace(q), strings.TrimSpace(c)
			log.Printf("scenario queue=%s compression=%s: %s warm-up, %s measured", q, c, o.warmup, o.duration)
			r, err := scenario(o, dir, c, q)
			if err != nil {
				return fmt.Errorf("scenario %s/%s: %w", q, c, err)
			}
			rows = append(rows, r)
		}
	}
	report := markdown(o, rows)
	fmt.Print(report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

// build compiles a package of this module (the harness runs from the repository root).
func build(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	log.Printf("building %s", pkg)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// row is one scenario's figures.
type row struct {
	compression  string
	queue        string
	loadgen      loadResult // measured run only
	sinkSpans    int64      // arriving at the sink during the measured run
	seconds      float64    // measured run, from its start until the sink stopped growing
	cpuSeconds   float64    // vigil's user+system CPU over the same window
	peakRSSMiB   float64
	ackedTotal   int64 // warm-up + measured, acknowledged to loadgen
	sinkTotal    int64 // everything the sink got, after vigil shut down
	vigilExit    int
	vigilErrLogs int
}

// loadResult is the part of loadgen's JSON the report uses.
type loadResult struct {
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes"`
	FirstError string           `json:"first_error"`
	SpansAcked int64            `json:"spans_acked"`
	Seconds    float64          `json:"seconds"`
	SpansPerS  float64          `json:"spans_per_second"`
	P50        float64          `json:"latency_p50_ms"`
	P99        float64          `json:"latency_p99_ms"`
}

func scenario(o options, dir, compression, queueMode string) (row, error) {
	r := row{compression: compression, queue: queueMode}
	sinkGRPC, sinkHTTP, vigilGRPC, vigilMetrics := benchutil.FreePort(), benchutil.FreePort(), benchutil.FreePort(), benchutil.FreePort()

	sink := exec.Command(o.sink, "-listen", sinkGRPC, "-http", sinkHTTP)
	var sinkOut bytes.Buffer
	sink.Stdout, sink.Stderr = &sinkOut, os.Stderr
	if err := benchutil.Start(sink); err != nil {
		return r, err
	}
	defer benchutil.Stop(sink, 5*time.Second)

	name := queueMode + "-" + compression
	cfg, err := vigilConfig(vigilGRPC, sinkGRPC, vigilMetrics, compression, queueMode, o.batchSize, filepath.Join(dir, "wal-"+name))
	if err != nil {
		return r, err
	}
	cfgPath := filepath.Join(dir, "vigil-"+name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return r, err
	}
	logPath := filepath.Join(dir, "vigil-"+name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	vigil := exec.Command(o.vigil, "run", "--config", cfgPath)
	vigil.Stdout, vigil.Stderr = logFile, logFile
	if err := benchutil.Start(vigil); err != nil {
		return r, err
	}
	defer benchutil.Stop(vigil, 5*time.Second)
	if err := benchutil.WaitHTTP("http://"+vigilMetrics+"/readyz", 20*time.Second); err != nil {
		return r, fmt.Errorf("vigil not ready: %w (log: %s)", err, logPath)
	}
	if err := benchutil.WaitHTTP("http://"+sinkHTTP+"/count", 10*time.Second); err != nil {
		return r, fmt.Errorf("sink not ready: %w", err)
	}

	loadArgs := func(d time.Duration) []string {
		return []string{"-json", "-endpoint", vigilGRPC, "-duration", d.String(), "-spans", strconv.Itoa(o.spans),
			"-concurrency", strconv.Itoa(o.concurrency), "-conns", strconv.Itoa(o.conns),
			"-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-compression", compression}
	}
	warm, err := runLoad(o.loadgen, loadArgs(o.warmup))
	if err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	sink0, err := settle(sinkHTTP, warm.SpansAcked)
	if err != nil {
		return r, err
	}

	pid := vigil.Process.Pid
	cpu0, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	r.loadgen, err = runLoad(o.loadgen, loadArgs(o.duration))
	if err != nil {
		return r, fmt.Errorf("measured run: %w", err)
	}
	r.ackedTotal = warm.SpansAcked + r.loadgen.SpansAcked
	sink1, err := settle(sinkHTTP, r.ackedTotal)
	if err != nil {
		return r, err
	}
	r.seconds = time.Since(t0).Seconds()
	cpu1, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cpuSeconds = cpu1 - cpu0
	r.sinkSpans = sink1 - sink0
	if r.peakRSSMiB, err = benchutil.PeakRSSMiB(pid); err != nil {
		return r, err
	}

	r.vigilExit = benchutil.Stop(vigil, 30*time.Second)
	logFile.Sync()
	logs, _ := os.ReadFile(logPath)
	r.vigilErrLogs = bytes.Count(logs, []byte(`"level":"ERROR"`))
	benchutil.Stop(sink, 5*time.Second)
	var final struct {
		Spans int64 `json:"spans"`
	}
	if err := json.Unmarshal(sinkOut.Bytes(), &final); err != nil {
		return r, fmt.Errorf("sink final counts %q: %w", sinkOut.String(), err)
	}
	r.sinkTotal = final.Spans
	return r, nil
}

// vigilConfig is the relay under test. With the memory queue a batch processor batches in front
// of the exporter (the usual setup); with a WAL the exporter's queue batches, after the WAL, as
// Vigil recommends, so that nothing acknowledged sits outside the WAL.
func vigilConfig(listen, sink, metrics, compression, queueMode string, batchSize int, walDir string) (string, error) {
	processors, queueCfg := "[batch]", ""
	switch queueMode {
	case "memory":
	case "wal", "wal-interval":
		fsync := "always"
		if queueMode == "wal-interval" {
			fsync = "interval"
		}
		processors = "[]"
		queueCfg = fmt.Sprintf(`
    sending_queue:
      persistent: true
      directory: %s
      fsync: %s
      queue_size: 100000
      batch: {min_size: %d, flush_timeout: 200ms}`, walDir, fsync, batchSize)
	default:
		return "", fmt.Errorf("unknown queue mode %q (want memory, wal or wal-interval)", queueMode)
	}
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  batch:
    send_batch_size: %d
    timeout: 200ms
exporters:
  otlp:
    endpoint: %s
    tls:
      insecure: true
    compression: %s%s
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: %s
      exporters: [otlp]
  telemetry:
    logs:
      level: warn
    metrics:
      address: %s
`, listen, batchSize, sink, compression, queueCfg, processors, metrics), nil
}

func runLoad(bin string, args []string) (loadResult, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("loadgen: %w", err)
	}
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("loadgen output %q: %w", out.String(), err)
	}
	return r, nil
}

// settle waits until the sink holds at least want spans, or its count stops growing for a
// second (data was lost: the report shows it), and returns the count.
func settle(addr string, want int64) (int64, error) {
	var last int64 = -1
	lastChange := time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n, err := sinkSpans(addr)
		if err != nil {
			return 0, err
		}
		if n >= want {
			return n, nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > time.Second {
			return n, nil
		}
	}
	return last, errors.New("sink count still growing after 60s")
}

func sinkSpans(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var c struct {
		Spans int64 `json:"spans"`
	}
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c.Spans, err
}

func markdown(o options, rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Vigil relay benchmark\n\n")
	fmt.Fprintf(&b, "%s · %s · %d CPUs · %s · %s/%s\n\n", time.Now().UTC().Format(time.RFC3339), benchutil.CPUModel(),
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "loadgen → vigil (otlp gRPC → batch %d → otlp gRPC; with a WAL the batching happens in the exporter's queue) → sink, all on this host. "+
		"%d spans per request, %d streams over %d connections, rate %s, %s warm-up, %s measured.\n\n",
		o.batchSize, o.spans, o.concurrency, o.conns, rateText(o.rate), o.warmup, o.duration)
	b.WriteString("| queue | compression | sink spans/s | loadgen acked spans/s | p50 / p99 ms | vigil CPU s per M spans | spans per CPU-s | vigil peak RSS MiB | loss (acked − received) | loadgen errors | vigil exit / ERROR logs |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		perM, perCPU := 0.0, 0.0
		if r.sinkSpans > 0 {
			perM = r.cpuSeconds / float64(r.sinkSpans) * 1e6
		}
		if r.cpuSeconds > 0 {
			perCPU = float64(r.sinkSpans) / r.cpuSeconds
		}
		loss := r.ackedTotal - r.sinkTotal
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f / %.1f | %.2f | %s | %.0f | %d of %s (%.4f%%) | %d | %d / %d |\n",
			r.queue, r.compression, benchutil.Human(float64(r.sinkSpans)/r.seconds), benchutil.Human(r.loadgen.SpansPerS),
			r.loadgen.P50, r.loadgen.P99, perM, benchutil.Human(perCPU), r.peakRSSMiB,
			loss, benchutil.Human(float64(r.ackedTotal)), benchutil.Pct(loss, r.ackedTotal), r.loadgen.Errors, r.vigilExit, r.vigilErrLogs)
	}
	b.WriteString("\nsink spans/s: spans that reached the sink during the measured run divided by the time from its " +
		"start until the sink stopped growing. CPU: vigil's utime+stime from /proc/PID/stat over that window. " +
		"Peak RSS: VmHWM. Loss: spans acknowledged to loadgen (warm-up and measured) minus spans the sink " +
		"received by the time vigil exited; negative would mean duplicates.\n")
	for _, r := range rows {
		if r.loadgen.FirstError != "" {
			fmt.Fprintf(&b, "\n%s/%s: loadgen errors %v, first: %s\n", r.queue, r.compression, r.loadgen.ErrorCodes, r.loadgen.FirstError)
		}
	}
	return b.String()
}

func rateText(r float64) string {
	if r <= 0 {
		return "unthrottled"
	}
	return fmt.Sprintf("%g req/s", r)
}
