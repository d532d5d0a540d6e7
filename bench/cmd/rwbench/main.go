// Command rwbench measures an agent as a Prometheus remote-write relay: this process sends
// remote write 1.0 (one request encoded once, resent) to the agent, the agent forwards it by
// remote write to a sink in this process, which validates and counts every sample. Per agent it
// reports samples/s, CPU seconds per million samples and peak RSS, from /proc. Vigil is always
// measured; vmagent too when -vmagent names its binary (the side-by-side comparison of issue 5).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/bench/internal/benchutil"
	"github.com/vigilhq/vigil/internal/promrw"
)

type options struct {
	vigil, vmagent   string
	alerting         bool
	duration, warmup time.Duration
	concurrency      int
	series, labels   int
	rounds           int
	out              string
	cpuProfile       string
}

func main() {
	var o options
	flag.StringVar(&o.vigil, "vigil", os.Getenv("VIGIL_BIN"), "vigil binary (default $VIGIL_BIN)")
	flag.StringVar(&o.vmagent, "vmagent", "", "vmagent binary to measure beside vigil (empty: vigil only)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured load per agent and round")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.concurrency, "concurrency", 8, "requests in flight")
	flag.IntVar(&o.series, "series", 2000, "series per request, one sample each (Prometheus sends up to 2000 samples per request)")
	flag.IntVar(&o.labels, "labels", 8, "labels per series besides __name__")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds; agents alternate within each round")
	flag.BoolVar(&o.alerting, "alerting", false, "also measure vigil with the alerting exporter and rules beside the remote-write exporter")
	flag.StringVar(&o.out, "out", "bench/results/remote-write.md", "Markdown report (empty: stdout only)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "have vigil write a CPU profile of its last run here")
	flag.Parse()
	if o.vigil == "" {
		log.Fatal("rwbench: -vigil (or $VIGIL_BIN) is required")
	}
	if err := run(o); err != nil {
		log.Fatalf("rwbench: %v", err)
	}
}

type agent struct {
	name   string
	config func(listen, sink, metrics, dir string) (*exec.Cmd, string) // command, readiness URL
}

type result struct {
	agent               string
	round               int
	acked, sunk         int64 // samples during the measured window
	ackedAll, sunkAll   int64 // including warm-up, sink count after the agent stopped
	seconds, cpuSeconds float64
	rssMiB              float64
	p50, p99            time.Duration
	errors              int64
	firstErr            string
	exit                int
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "vigil-rwbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	body, samples := request(o.series, o.labels)
	compressed := promrw.Encode(nil, body)
	log.Printf("request: %d samples, %d bytes, %d bytes snappy", samples, len(body), len(compressed))

	agents := []agent{{"vigil", func(listen, sink, metrics, dir string) (*exec.Cmd, string) {
		cfg := filepath.Join(dir, "vigil.yaml")
		_ = os.WriteFile(cfg, fmt.Appendf(nil, vigilConfig, listen, sink, metrics), 0o644)
		args := []string{"run", "--config", cfg}
		if o.cpuProfile != "" {
			args = append(args, "--cpuprofile", o.cpuProfile)
		}
		return exec.Command(o.vigil, args...), "http://" + metrics + "/readyz"
	}}}
	if o.alerting {
		// The same relay with the alerting exporter beside the remote-write one and rules that
		// select a fifth of the series (10 of the 50 metric names): what the local store and
		// the rules cost on the hot path, measured in the same run.
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: bench\n    interval: 15s\n    rules:\n")
		for i := range 10 {
			fmt.Fprintf(&rules, "      - alert: Bench%d\n        expr: rate(bench_metric_%d[5m]) > 1e9\n", i, i)
		}
		rulesFile := filepath.Join(dir, "bench.rules.yaml")
		if err := os.WriteFile(rulesFile, []byte(rules.String()), 0o644); err != nil {
			return err
		}
		agents = append(agents, agent{"vigil+alerting", func(listen, sink, metrics, dir string) (*exec.Cmd, string) {
			cfg := filepath.Join(dir, "vigil.yaml")
			_ = os.WriteFile(cfg, fmt.Appendf(nil, vigilAlertingConfig, listen, sink, metrics, rulesFile, filepath.Join(dir, "store")), 0o644)
			return exec.Command(o.vigil, "run", "--config", cfg), "http://" + metrics + "/readyz"
		}})
	}
	if o.vmagent != "" {
		agents = append(agents, agent{"vmagent", func(listen, sink, _, dir string) (*exec.Cmd, string) {
			return exec.Command(o.vmagent, "-httpListenAddr="+listen, "-remoteWrite.url=http://"+sink+"/api/v1/write",
				"-remoteWrite.tmpDataPath="+filepath.Join(dir, "vmagent-data"), "-loggerLevel=WARN"), "http://" + listen + "/health"
		}})
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, a := range agents {
			log.Printf("round %d: %s (%s warm-up, %s measured)", round, a.name, o.warmup, o.duration)
			r, err := measure(o, a, filepath.Join(dir, fmt.Sprintf("%s-%d", a.name, round)), compressed, int64(samples))
			if err != nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			r.round = round
			results = append(results, r)
		}
	}
	report := markdown(o, samples, len(compressed), results)
	fmt.Print(report)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

const vigilConfig = `receivers:
  prometheusremotewrite:
    endpoint: %s
exporters:
  prometheusremotewrite:
    endpoint: http://%s/api/v1/write
service:
  pipelines:
    metrics:
      receivers: [prometheusremotewrite]
      exporters: [prometheusremotewrite]
  telemetry:
    logs: {level: warn}
    metrics: {address: %s}
`

const alertingNote = "vigil+alerting: the same relay with the `alerting` exporter beside the remote-write one, " +
	"feeding the local store of 10 alerting rules that select 10 of the 50 metric names (a fifth of the series); " +
	"the difference to vigil is what the store and the rules cost.\n\n"

const vigilAlertingConfig = `receivers:
  prometheusremotewrite:
    endpoint: %s
exporters:
  prometheusremotewrite:
    endpoint: http://%s/api/v1/write
  alerting: {}
service:
  pipelines:
    metrics:
      receivers: [prometheusremotewrite]
      exporters: [prometheusremotewrite, alerting]
  telemetry:
    logs: {level: warn}
    metrics: {address: %s}
alerting:
  rule_files: [%s]
  store: {path: %s, retention: 1h}
`

// request builds a 1.0 body of n series with realistic label sets, one sample each.
func request(n, nlabels int) ([]byte, int) {
	var body []byte
	var enc promrw.SeriesEncoder
	ts := time.Now().UnixMilli()
	for i := range n {
		enc.Reset()
		enc.Label("__name__", fmt.Sprintf("bench_metric_%d", i%50))
		names := []string{"instance", "job"}
		for l := range nlabels - 2 {
			names = append(names, fmt.Sprintf("label_%d", l))
		}
		slices.Sort(names)
		for _, name := range names {
			v := fmt.Sprintf("value-%d-%d", i, len(name))
			switch name {
			case "job":
				v = "bench"
			case "instance":
				v = fmt.Sprintf("host-%d:9100", i%100)
			}
			enc.Label(name, v)
		}
		enc.Sample(float64(i), ts)
		body = enc.AppendTo(body)
	}
	return body, n
}

// sink is a remote-write receiver that validates and counts.
type sink struct {
	samples, bad atomic.Int64
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		switch r.Header.Get("Content-Encoding") {
		case "", "snappy":
			raw, err = promrw.Decode(nil, raw, 256<<20)
		default:
			err = fmt.Errorf("encoding %q", r.Header.Get("Content-Encoding"))
		}
	}
	var n, h int
	if err == nil {
		n, h, _, err = promrw.CountV1(raw)
	}
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.samples.Add(int64(n + h))
	w.WriteHeader(http.StatusNoContent)
}

func measure(o options, a agent, dir string, body []byte, perReq int64) (result, error) {
	r := result{agent: a.name}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	sk := &sink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	srv := &http.Server{Handler: sk, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	listen, metrics := benchutil.FreePort(), benchutil.FreePort()
	cmd, ready := a.config(listen, ln.Addr().String(), metrics, dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := benchutil.Start(cmd); err != nil {
		return r, err
	}
	defer benchutil.Stop(cmd, 10*time.Second)
	if err := benchutil.WaitHTTP(ready, 30*time.Second); err != nil {
		return r, fmt.Errorf("not ready: %w\n%s", err, logs.String())
	}
	url := "http://" + listen + "/api/v1/write"

	warm := load(url, body, perReq, o.concurrency, o.warmup)
	settle(sk, warm.acked)
	pid := cmd.Process.Pid
	cpu0, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	sink0 := sk.samples.Load()
	t0 := time.Now()
	m := load(url, body, perReq, o.concurrency, o.duration)
	r.ackedAll = warm.acked + m.acked
	settle(sk, r.ackedAll)
	r.seconds = time.Since(t0).Seconds()
	cpu1, err := benchutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cpuSeconds = cpu1 - cpu0
	r.sunk = sk.samples.Load() - sink0
	r.acked, r.p50, r.p99, r.errors, r.firstErr = m.acked, m.p50, m.p99, m.errors+warm.errors, m.firstErr
	if r.rssMiB, err = benchutil.PeakRSSMiB(pid); err != nil {
		return r, err
	}
	r.exit = benchutil.Stop(cmd, 30*time.Second)
	r.sunkAll = sk.samples.Load()
	if r.ackedAll != r.sunkAll {
		log.Printf("%s: %d acknowledged, %d received; its log:\n%s", a.name, r.ackedAll, r.sunkAll, tailLines(logs.String(), 30))
	}
	if bad := sk.bad.Load(); bad > 0 {
		return r, fmt.Errorf("the sink got %d malformed requests", bad)
	}
	return r, nil
}

type loadResult struct {
	acked, errors int64
	p50, p99      time.Duration
	firstErr      string
}

// load posts body from n workers for d and counts the samples acknowledged (2xx).
func load(url string, body []byte, perReq int64, n int, d time.Duration) loadResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu  sync.Mutex
		res loadResult
		lat []time.Duration
		wg  sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			var acked, errs int64
			var mine []time.Duration
			var first string
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
				t := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = errors.New(resp.Status)
					}
				}
				mine = append(mine, time.Since(t))
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acked += perReq
			}
			mu.Lock()
			res.acked += acked
			res.errors += errs
			if res.firstErr == "" {
				res.firstErr = first
			}
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// settle waits until the sink has at least want samples or stops growing for 2 s.
func settle(s *sink, want int64) {
	last, lastChange := int64(-1), time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := s.samples.Load()
		if n >= want {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			return
		}
	}
}

func markdown(o options, perReq, reqBytes int, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Remote-write relay benchmark\n\n%s · %s · %d CPUs · %s\n\n", time.Now().UTC().Format(time.RFC3339),
		benchutil.CPUModel(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "rwbench → agent (remote write in → remote write out) → sink (in rwbench), all on this host. "+
		"%d series × 1 sample per request (%d labels each, %d bytes snappy), %d requests in flight, %s warm-up, %s measured, %d round(s).\n\n",
		perReq, o.labels+1, reqBytes, o.concurrency, o.warmup, o.duration, o.rounds)
	if o.alerting {
		b.WriteString(alertingNote)
	}
	b.WriteString("| round | agent | sink samples/s | acked samples/s | p50 / p99 ms | CPU s per M samples | samples per CPU-s | peak RSS MiB | loss (acked − received) | errors | exit |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, r := range rs {
		perM, perCPU := 0.0, 0.0
		if r.sunk > 0 {
			perM = r.cpuSeconds / float64(r.sunk) * 1e6
		}
		if r.cpuSeconds > 0 {
			perCPU = float64(r.sunk) / r.cpuSeconds
		}
		loss := r.ackedAll - r.sunkAll
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %.1f / %.1f | %.3f | %s | %.0f | %d of %s (%.4f%%) | %d | %d |\n",
			r.round, r.agent, benchutil.Human(float64(r.sunk)/r.seconds), benchutil.Human(float64(r.acked)/o.duration.Seconds()),
			ms(r.p50), ms(r.p99), perM, benchutil.Human(perCPU), r.rssMiB, loss, benchutil.Human(float64(r.ackedAll)),
			benchutil.Pct(loss, r.ackedAll), r.errors, r.exit)
	}
	b.WriteString("\nsink samples/s: samples that reached the sink during the measured run divided by the time from its start " +
		"until the sink caught up. CPU: the agent's utime+stime (/proc/PID/stat) over that window; the load generator and " +
		"sink are this process and are not counted. Peak RSS: VmHWM. Loss: samples acknowledged to rwbench minus samples " +
		"the sink received by the time the agent exited (vmagent acknowledges before sending and keeps a disk queue; " +
		"negative means duplicates).\n")
	for _, r := range rs {
		if r.firstErr != "" {
			fmt.Fprintf(&b, "\n%s round %d: first error: %s\n", r.agent, r.round, r.firstErr)
		}
	}
	return b.String()
}
