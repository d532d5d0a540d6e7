// Command harness measures Vigil as an OTLP/gRPC relay, side by side with the OpenTelemetry
// Collector when -otelcol names its binary: loadgen → agent (otlp → batch → otlp) → sink, for
// traces, logs and metrics, with the same compression on both hops. Per round it runs every case
// (scenario × signal × compression) once per agent, the agents back to back, so that both see
// the same host; the ratios vigil/otelcol are taken within a round. Per run it starts a fresh sink
// and agent, warms up, measures, and reads the agent's CPU time and peak RSS from /proc. It writes
// a Markdown report, an SVG chart and a benchstat-compatible file.
package main

import (
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
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/bench/internal/benchutil"
)

type options struct {
	vigil, otelcol, loadgen, sink string
	duration, warmup              time.Duration
	concurrency, conns            int
	items                         int     // per request
	rate                          float64 // items/s in the fixed-rate scenario
	rounds                        int
	signals, compressions         []string
	scenarios, queues             []string
	batchSize                     int
	batchTimeout                  time.Duration
	memLimitMiB                   int
	acks                          string // vigil's pipeline acknowledgements; "": not set (its default)
	out                           string
	keep                          bool
}

func main() {
	var o options
	flag.StringVar(&o.vigil, "vigil", os.Getenv("VIGIL_BIN"), "vigil binary (default $VIGIL_BIN; empty: build ./cmd/vigil)")
	flag.StringVar(&o.otelcol, "otelcol", os.Getenv("OTELCOL_BIN"), "otelcol-core binary to measure beside vigil (default $OTELCOL_BIN; empty: vigil only)")
	flag.StringVar(&o.loadgen, "loadgen", "", "loadgen binary (empty: build ./bench/cmd/loadgen)")
	flag.StringVar(&o.sink, "sink", "", "sink binary (empty: build ./bench/cmd/sink)")
	// The defaults fit `make bench` into about ten minutes on two cores: 2 rounds × 24 runs.
	flag.DurationVar(&o.duration, "duration", 7*time.Second, "measured load per run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds; within each, every case runs once per agent, agents back to back")
	flag.IntVar(&o.concurrency, "concurrency", 8, "loadgen concurrent streams")
	flag.IntVar(&o.conns, "conns", 2, "loadgen gRPC connections")
	flag.IntVar(&o.items, "items", 1000, "items (spans, log records, data points) per loadgen request")
	flag.IntVar(&o.items, "spans", 1000, "the same as -items (the flag's older name)")
	flag.Float64Var(&o.rate, "rate", 100_000, "items per second sent in the fixed-rate scenario (the same for every agent)")
	signals := flag.String("signals", "traces,logs,metrics", "comma-separated signals")
	comp := flag.String("compression", "zstd,gzip", "comma-separated compressions, each applied to both hops (none, gzip, zstd)")
	scenarios := flag.String("scenarios", "saturation,fixed", "comma-separated scenarios: saturation (unthrottled load), fixed (-rate items/s)")
	queues := flag.String("queue", "memory", "comma-separated exporter queue modes: memory (batch processor in front; every agent), "+
		"wal (persistent, fsync always, batching in the queue; vigil only), wal-interval (the same with fsync interval; vigil only)")
	flag.IntVar(&o.batchSize, "batch-size", 8192, "batch processor send_batch_size (both agents)")
	flag.DurationVar(&o.batchTimeout, "batch-timeout", 200*time.Millisecond, "batch processor timeout (both agents)")
	flag.IntVar(&o.memLimitMiB, "memory-limit-mib", 0, "put a memory_limiter (limit_mib, check_interval 1s) before the batch processor of both agents; 0: none")
	flag.StringVar(&o.acks, "acks", "", "vigil only: the pipeline's acknowledgements (durable, end_to_end, none); "+
		"empty: not set (durable, the default; also what builds older than acknowledgement modes accept)")
	flag.StringVar(&o.out, "out", "bench/results/otlp-relay.md", "Markdown report; the chart and the benchstat file go beside it "+
		"(.svg, .bench.txt); empty: stdout only")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, agent logs)")
	flag.Parse()
	split := func(s string) []string {
		var out []string
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	o.signals, o.compressions, o.scenarios, o.queues = split(*signals), split(*comp), split(*scenarios), split(*queues)
	if err := o.validate(); err != nil {
		log.Fatalf("harness: %v", err)
	}
	if err := run(o); err != nil {
		log.Fatalf("harness: %v", err)
	}
}

func (o *options) validate() error {
	var errs []error
	check := func(flag string, vals []string, allowed ...string) {
		if len(vals) == 0 {
			errs = append(errs, fmt.Errorf("-%s: empty", flag))
		}
		for _, v := range vals {
			if !contains(allowed, v) {
				errs = append(errs, fmt.Errorf("-%s: %q is not one of %s", flag, v, strings.Join(allowed, ", ")))
			}
		}
	}
	check("signals", o.signals, "traces", "logs", "metrics")
	check("compression", o.compressions, "none", "gzip", "zstd")
	check("scenarios", o.scenarios, "saturation", "fixed")
	check("queue", o.queues, "memory", "wal", "wal-interval")
	if o.acks != "" && !contains([]string{"durable", "end_to_end", "none"}, o.acks) {
		errs = append(errs, fmt.Errorf("-acks: %q is not one of durable, end_to_end, none", o.acks))
	}
	if o.rounds < 1 {
		errs = append(errs, fmt.Errorf("-rounds: must be >= 1, got %d", o.rounds))
	}
	if contains(o.scenarios, "fixed") && o.rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate: the fixed scenario needs a rate > 0, got %g", o.rate))
	}
	if o.items < 1 {
		errs = append(errs, fmt.Errorf("-items: must be >= 1, got %d", o.items))
	}
	return errors.Join(errs...)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// testCase is one cell of the matrix; every agent runs it once per round.
type testCase struct {
	scenario, signal, compression, queue string
}

func (c testCase) String() string {
	s := c.scenario + "/" + c.signal + "/" + c.compression
	if c.queue != "memory" {
		s += "/" + c.queue
	}
	return s
}

func (o *options) cases() []testCase {
	var cs []testCase
	for _, sc := range o.scenarios {
		for _, q := range o.queues {
			for _, sig := range o.signals {
				for _, c := range o.compressions {
					cs = append(cs, testCase{sc, sig, c, q})
				}
			}
		}
	}
	return cs
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
	agents := []agent{vigilAgent(o.vigil)}
	if o.otelcol != "" {
		agents = append(agents, otelcolAgent(o.otelcol))
	}
	for _, a := range agents {
		log.Printf("%s: %s", a.name, a.version())
	}
	if err := preflight(o, agents, dir); err != nil {
		return err
	}

	cases := o.cases()
	total := 0
	for _, c := range cases {
		for _, a := range agents {
			if a.supports(c) {
				total++
			}
		}
	}
	total *= o.rounds
	perRun := o.warmup + o.duration + 2*time.Second
	log.Printf("%d runs of about %s each: about %s", total, perRun, (time.Duration(total) * perRun).Round(time.Second))

	rep := &report{opts: o, agents: agents, started: time.Now()}
	n := 0
	var runErr error
rounds:
	for round := 1; round <= o.rounds; round++ {
		for _, c := range cases {
			// The agents take turns going first, so that neither always runs on a host the
			// other has just warmed up (or left busy).
			order := agents
			if round%2 == 0 && len(agents) == 2 {
				order = []agent{agents[1], agents[0]}
			}
			for _, a := range order {
				if !a.supports(c) {
					continue
				}
				n++
				log.Printf("[%d/%d] round %d %s %s", n, total, round, c, a.name)
				r, err := measure(o, dir, a, c, round)
				if err != nil {
					runErr = fmt.Errorf("round %d %s %s: %w", round, c, a.name, err)
					break rounds
				}
				log.Printf("    %s items/s at the sink, %s items per CPU-s, %.0f MiB peak RSS, p99 %.1f ms, loss %d",
					benchutil.Human(r.sinkRate()), benchutil.Human(r.perCPU()), r.rssMiB, r.load.P99, r.loss())
				rep.results = append(rep.results, r)
			}
		}
	}
	if err := rep.write(); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
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

// result is one agent's run of one case in one round.
type result struct {
	round      int
	c          testCase
	agent      string
	load       loadResult // measured run only
	targetRate float64    // items/s asked of loadgen; 0: unthrottled
	sinkItems  int64      // arriving at the sink during the measured run
	seconds    float64    // measured run, from its start until the sink stopped growing
	cpuSeconds float64    // the agent's user+system CPU over the same window
	rssMiB     float64    // peak (VmHWM), warm-up included
	ackedTotal int64      // warm-up + measured, acknowledged to loadgen
	sinkTotal  int64      // everything the sink got, after the agent shut down
	exit       int
	errLogs    int
	firstErr   string // first error log line of the agent
}

func (r result) sinkRate() float64 {
	if r.seconds <= 0 {
		return 0
	}
	return float64(r.sinkItems) / r.seconds
}

func (r result) perCPU() float64 {
	if r.cpuSeconds <= 0 {
		return 0
	}
	return float64(r.sinkItems) / r.cpuSeconds
}

// cpuPerM is CPU seconds per million items.
func (r result) cpuPerM() float64 {
	if r.sinkItems <= 0 {
		return 0
	}
	return r.cpuSeconds / float64(r.sinkItems) * 1e6
}

func (r result) loss() int64 { return r.ackedTotal - r.sinkTotal }

// loadResult is the part of loadgen's JSON the report uses.
type loadResult struct {
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes"`
	FirstError string           `json:"first_error"`
	ItemsAcked int64            `json:"items_acked"`
	ItemsPerS  float64          `json:"items_per_second"`
	ReqBytes   int              `json:"request_bytes"`
	Seconds    float64          `json:"seconds"`
	P50        float64          `json:"latency_p50_ms"`
	P99        float64          `json:"latency_p99_ms"`
}

func measure(o options, dir string, a agent, c testCase, round int) (result, error) {
	r := result{round: round, c: c, agent: a.name}
	p := ports{
		listen: benchutil.FreePort(), sink: benchutil.FreePort(),
		sinkHTTP: benchutil.FreePort(), telemetry: benchutil.FreePort(),
	}
	runDir := filepath.Join(dir, fmt.Sprintf("%d-%s-%s", round, strings.ReplaceAll(c.String(), "/", "-"), a.name))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return r, err
	}

	sink := exec.Command(o.sink, "-listen", p.sink, "-http", p.sinkHTTP)
	var sinkOut, sinkErr bytes.Buffer // its stderr only matters when it fails
	sink.Stdout, sink.Stderr = &sinkOut, &sinkErr
	if err := benchutil.Start(sink); err != nil {
		return r, err
	}
	defer benchutil.Stop(sink, 5*time.Second)
	if err := benchutil.WaitHTTP("http://"+p.sinkHTTP+"/count", 10*time.Second); err != nil {
		return r, fmt.Errorf("sink not ready: %w\n%s", err, sinkErr.String())
	}

	cfg, err := a.config(o, c, p, runDir)
	if err != nil {
		return r, err
	}
	cfgPath := filepath.Join(runDir, a.name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return r, err
	}
	logPath := filepath.Join(runDir, a.name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	cmd := exec.Command(a.bin, a.args(cfgPath)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := benchutil.Start(cmd); err != nil {
		return r, err
	}
	defer benchutil.Stop(cmd, 5*time.Second)
	if err := a.ready(p, 30*time.Second); err != nil {
		logs, _ := os.ReadFile(logPath)
		return r, fmt.Errorf("%s not ready: %w; its log:\n%s", a.name, err, tail(string(logs), 20))
	}

	reqPerS := 0.0
	if c.scenario == "fixed" {
		r.targetRate = o.rate
		reqPerS = o.rate / float64(o.items)
	}
	loadArgs := func(d time.Duration) []string {
		return []string{"-json", "-endpoint", p.listen, "-signal", c.signal, "-duration", d.String(),
			"-items", strconv.Itoa(o.items), "-concurrency", strconv.Itoa(o.concurrency), "-conns", strconv.Itoa(o.conns),
			"-rate", strconv.FormatFloat(reqPerS, 'f', -1, 64), "-compression", c.compression}
	}
	warm, err := runLoad(o.loadgen, loadArgs(o.warmup))
	if err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	sink0, err := settle(p.sinkHTTP, c.signal, warm.ItemsAcked)
	if err != nil {
		return r, err
	}

	pid := cmd.Process.Pid
	cpu0, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	r.load, err = runLoad(o.loadgen, loadArgs(o.duration))
	if err != nil {
		return r, fmt.Errorf("measured run: %w", err)
	}
	r.ackedTotal = warm.ItemsAcked + r.load.ItemsAcked
	sink1, err := settle(p.sinkHTTP, c.signal, r.ackedTotal)
	if err != nil {
		return r, err
	}
	r.seconds = time.Since(t0).Seconds()
	cpu1, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cpuSeconds = cpu1 - cpu0
	r.sinkItems = sink1 - sink0
	if r.rssMiB, err = benchutil.PeakRSSMiB(pid); err != nil {
		return r, err
	}

	r.exit = benchutil.Stop(cmd, 30*time.Second)
	_ = logFile.Sync()
	logs, _ := os.ReadFile(logPath)
	r.errLogs, r.firstErr = errorLines(logs)
	benchutil.Stop(sink, 5*time.Second)
	var final counts
	if err := json.Unmarshal(sinkOut.Bytes(), &final); err != nil {
		return r, fmt.Errorf("sink final counts %q: %w\n%s", sinkOut.String(), err, sinkErr.String())
	}
	r.sinkTotal = final.of(c.signal)
	if final.Malformed > 0 {
		return r, fmt.Errorf("the sink got %d malformed requests", final.Malformed)
	}
	if r.loss() != 0 {
		log.Printf("    %s: %d items acknowledged, %d received; its log ends:\n%s", a.name, r.ackedTotal, r.sinkTotal, tail(string(logs), 10))
	}
	return r, nil
}

// errorLines counts the JSON log lines at level error (Vigil writes "ERROR", the Collector
// "error") and returns the first.
func errorLines(logs []byte) (int, string) {
	n, first := 0, ""
	for line := range bytes.SplitSeq(logs, []byte("\n")) {
		if bytes.Contains(bytes.ToLower(line), []byte(`"level":"error"`)) {
			if n == 0 {
				first = string(line)
			}
			n++
		}
	}
	return n, first
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
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

// counts is the sink's /count answer.
type counts struct {
	Spans      int64 `json:"spans"`
	DataPoints int64 `json:"data_points"`
	LogRecords int64 `json:"log_records"`
	Malformed  int64 `json:"malformed"`
}

func (c counts) of(signal string) int64 {
	switch signal {
	case "traces":
		return c.Spans
	case "metrics":
		return c.DataPoints
	case "logs":
		return c.LogRecords
	}
	return 0
}

// settle waits until the sink holds at least want items, or its count stops growing for a
// second (data was lost: the report shows it), and returns the count.
func settle(addr, signal string, want int64) (int64, error) {
	var last int64 = -1
	lastChange := time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := sinkCounts(addr)
		if err != nil {
			return 0, err
		}
		n := c.of(signal)
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

func sinkCounts(addr string) (counts, error) {
	var c counts
	resp, err := http.Get("http://" + addr + "/count")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c, err
}
