// Command logbench measures agents on the logs path (issue 14), side by side in one run:
//
//   - files: this process appends lines at a fixed rate to 1, 100 and 1000 files; the agent
//     tails them and ships them to VictoriaLogs (vigil by its loki exporter to the Loki push
//     API, the OpenTelemetry Collector's filelog receiver by otlphttp to VictoriaLogs' OTLP
//     endpoint). Each agent gets a fresh VictoriaLogs; the run ends when it holds every line,
//     and a LogsQL count then checks that none was lost or repeated.
//   - syslog: this process sends RFC 5424 messages over TCP (octet counting) as fast as the agent
//     takes them; vigil's syslog receiver writes them with its file exporter, Debian's rsyslog
//     (imtcp) with omfile. The run ends when the output holds every message.
//
// Per agent it reports lines/s, lines and MiB per CPU-second and peak RSS (from /proc), and
// whether any line was lost or repeated; a loss, a repeat or a wait that timed out fails the run.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/bench/internal/benchutil"
)

type options struct {
	vigil, otelcol, victorialogs, rsyslog string
	files                                 []int
	rate                                  int
	duration                              time.Duration
	lineBytes                             int
	syslogMessages, syslogConns           int
	timeout                               time.Duration
	out                                   string
	parts                                 string
	cpuProfile                            string
}

func main() {
	var o options
	var files string
	flag.StringVar(&o.vigil, "vigil", os.Getenv("VIGIL_BIN"), "vigil binary (default $VIGIL_BIN)")
	flag.StringVar(&o.otelcol, "otelcol", "", "otelcol-filelog binary to measure beside vigil on files (empty: vigil only)")
	flag.StringVar(&o.victorialogs, "victorialogs", os.Getenv("VICTORIALOGS_BIN"), "victoria-logs binary (default $VICTORIALOGS_BIN)")
	flag.StringVar(&o.rsyslog, "rsyslog", "", "rsyslogd binary to measure beside vigil on syslog (empty: vigil only)")
	flag.StringVar(&files, "files", "1,100,1000", "numbers of files appended to, one run each")
	flag.IntVar(&o.rate, "rate", 20000, "lines per second appended, over all files")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "how long lines are appended in each run")
	flag.IntVar(&o.lineBytes, "line-bytes", 200, "bytes per line, newline included")
	flag.IntVar(&o.syslogMessages, "syslog-messages", 300000, "messages sent in the syslog run")
	flag.IntVar(&o.syslogConns, "syslog-conns", 4, "TCP connections the syslog messages are sent on")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long a run may take to deliver everything after the writing ends")
	flag.StringVar(&o.out, "out", "bench/results/logs.md", "Markdown report (empty: stdout only)")
	flag.StringVar(&o.parts, "parts", "files,syslog", "what to run: files, syslog")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "have vigil write a CPU profile of its last run here")
	flag.Parse()
	for f := range strings.SplitSeq(files, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("logbench: -files: %q is not a positive number", f)
		}
		o.files = append(o.files, n)
	}
	if o.vigil == "" {
		log.Fatal("logbench: -vigil (or $VIGIL_BIN) is required")
	}
	if err := run(o); err != nil {
		log.Fatalf("logbench: %v", err)
	}
}

// result is one agent's run.
type result struct {
	test, agent   string
	lines, bytes  int64 // written
	got, distinct int64 // in the backend
	seconds       float64
	cpuSeconds    float64
	rssMiB        float64       // VmHWM: the peak since start, start-up included
	loadRSSMiB    float64       // the highest VmRSS sampled while the load ran
	loadAnonMiB   float64       // the highest RssAnon sampled while the load ran
	lag           time.Duration // from the last write until the backend held everything
	failure       string
}

func (r result) ok() bool { return r.failure == "" && r.got == r.lines && r.distinct == r.lines }

func run(o options) error {
	dir, err := os.MkdirTemp("", "vigil-logbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var results []result
	if strings.Contains(o.parts, "files") {
		if o.victorialogs == "" {
			return errors.New("-victorialogs (or $VICTORIALOGS_BIN) is required for the files runs")
		}
		for _, n := range o.files {
			agents := []string{"vigil"}
			if o.otelcol != "" {
				agents = append(agents, "otelcol")
			}
			for _, a := range agents {
				log.Printf("files: %s, %d files, %d lines/s for %s", a, n, o.rate, o.duration)
				r := filesRun(o, a, n, filepath.Join(dir, fmt.Sprintf("files-%s-%d", a, n)))
				log.Printf("files: %s: %s", a, r.summary())
				results = append(results, r)
			}
		}
	}
	if strings.Contains(o.parts, "syslog") {
		agents := []string{"vigil"}
		if o.rsyslog != "" {
			agents = append(agents, "rsyslog")
		}
		for _, a := range agents {
			log.Printf("syslog: %s, %d messages on %d connections", a, o.syslogMessages, o.syslogConns)
			r := syslogRun(o, a, filepath.Join(dir, "syslog-"+a))
			log.Printf("syslog: %s: %s", a, r.summary())
			results = append(results, r)
		}
	}
	report := markdown(o, results)
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range results {
		if !r.ok() {
			failed = append(failed, r.test+"/"+r.agent+": "+r.summary())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("runs that lost, repeated or did not finish:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

func (r result) summary() string {
	s := fmt.Sprintf("%d lines written, %d arrived (%d distinct) in %.1fs, %.2f CPU-s, %.0f MiB RSS under load (%.0f MiB since start), lag %s",
		r.lines, r.got, r.distinct, r.seconds, r.cpuSeconds, r.loadRSSMiB, r.rssMiB, r.lag.Round(10*time.Millisecond))
	if r.failure != "" {
		s += "; " + r.failure
	}
	return s
}

// proc is a started process whose output is kept in a file, shown when it fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  string
}

func start(name, dir string, args ...string) (*proc, error) {
	out := filepath.Join(dir, name+".out")
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := benchutil.Start(cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{name, cmd, out}, nil
}

func (p *proc) stop() {
	if code := benchutil.Stop(p.cmd, 20*time.Second); code != 0 && code != -1 {
		log.Printf("%s exited with %d:\n%s", p.name, code, p.tail())
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.out)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// cpu is the process's CPU time so far; rss its peak resident size since start.
func (p *proc) cpu() float64 {
	s, err := benchutil.CPUSeconds(p.cmd.Process.Pid)
	if err != nil {
		log.Printf("%s: %v", p.name, err)
	}
	return s
}

func (p *proc) rss() float64 {
	m, err := benchutil.PeakRSSMiB(p.cmd.Process.Pid)
	if err != nil {
		log.Printf("%s: %v", p.name, err)
	}
	return m
}

// sampleRSS records the highest VmRSS and RssAnon every 50 ms until stop is called, which
// returns them.
func (p *proc) sampleRSS() (stop func() (rss, anon float64)) {
	done, out := make(chan struct{}), make(chan [2]float64)
	go func() {
		var peak [2]float64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := benchutil.RSSMiB(p.cmd.Process.Pid); err == nil && m > peak[0] {
				peak[0] = m
			}
			if m, err := benchutil.AnonRSSMiB(p.cmd.Process.Pid); err == nil && m > peak[1] {
				peak[1] = m
			}
			select {
			case <-done:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) { close(done); v := <-out; return v[0], v[1] }
}

func (p *proc) alive() error {
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		return fmt.Errorf("%s is gone: %v\n%s", p.name, err, p.tail())
	}
	return nil
}

const vigilFilesConfig = `receivers:
  filelog:
    include: [%[1]s/*.log]
    start_at: beginning
    checkpoint_dir: %[2]s/checkpoints
processors:
  batch: {}
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
service:
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [loki]
  telemetry:
    logs: {level: warn}
    metrics: {address: %[4]s}
`

// The Collector as its filelog documentation sets it up for no loss across restarts: offsets
// in file_storage, a batch processor, and otlphttp to VictoriaLogs' OTLP logs endpoint.
const otelcolFilesConfig = `extensions:
  file_storage:
    directory: %[2]s/storage
    create_directory: true
receivers:
  filelog:
    include: [%[1]s/*.log]
    start_at: beginning
    storage: file_storage
processors:
  batch: {}
exporters:
  otlphttp:
    logs_endpoint: http://%[3]s/insert/opentelemetry/v1/logs
service:
  extensions: [file_storage]
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlphttp]
  telemetry:
    logs: {level: warn}
    metrics:
      readers:
        - pull:
            exporter:
              prometheus: {host: %[4]s, port: %[5]s}
`

// startAgent writes the agent's config and starts it; it returns once it answers.
func startAgent(o options, agent, dir, format string, args ...any) (*proc, error) {
	tel := benchutil.FreePort()
	host, port, _ := net.SplitHostPort(tel)
	var cmd []string
	cfg := filepath.Join(dir, agent+".yaml")
	ready := "http://" + tel + "/metrics"
	switch agent {
	case "vigil":
		args = append(args, tel)
		cmd = []string{o.vigil, "run", "--config", cfg}
		if o.cpuProfile != "" {
			cmd = append(cmd, "--cpuprofile", o.cpuProfile)
		}
		ready = "http://" + tel + "/readyz"
	case "otelcol":
		args = append(args, host, port)
		cmd = []string{o.otelcol, "--config", cfg}
	default:
		return nil, fmt.Errorf("unknown agent %s", agent)
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, format, args...), 0o600); err != nil {
		return nil, err
	}
	p, err := start(agent, dir, cmd...)
	if err != nil {
		return nil, err
	}
	if err := benchutil.WaitHTTP(ready, 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s not ready: %v\n%s", agent, err, p.tail())
	}
	return p, nil
}

func filesRun(o options, agent string, nfiles int, dir string) (r result) {
	r = result{test: fmt.Sprintf("files-%d", nfiles), agent: agent}
	fail := func(err error) result { r.failure = err.Error(); return r }
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return fail(err)
	}
	vlAddr := benchutil.FreePort()
	vl, err := start("victoria-logs", dir, o.victorialogs, "-httpListenAddr="+vlAddr,
		"-storageDataPath="+filepath.Join(dir, "vl"), "-retentionPeriod=100y", "-loggerLevel=WARN")
	if err != nil {
		return fail(err)
	}
	defer vl.stop()
	if err := benchutil.WaitHTTP("http://"+vlAddr+"/health", 30*time.Second); err != nil {
		return fail(fmt.Errorf("victoria-logs: %v\n%s", err, vl.tail()))
	}
	w, err := newWriter(logs, nfiles, o.lineBytes)
	if err != nil {
		return fail(err)
	}
	defer w.close()
	format := vigilFilesConfig
	if agent == "otelcol" {
		format = otelcolFilesConfig
	}
	p, err := startAgent(o, agent, dir, format, logs, dir, vlAddr)
	if err != nil {
		return fail(err)
	}
	defer p.stop()
	time.Sleep(time.Second) // the agent finds the (empty) files
	cpu0, t0 := p.cpu(), time.Now()
	stopRSS := p.sampleRSS()
	defer func() {
		if stopRSS != nil {
			stopRSS()
		}
	}()
	if err := w.run(o.rate, o.duration); err != nil {
		return fail(err)
	}
	r.lines, r.bytes = w.lines, w.bytes
	end := time.Now()
	deadline := end.Add(o.timeout)
	for {
		if err := p.alive(); err != nil {
			return fail(err)
		}
		n, _, err := vlCount(vlAddr, false)
		if err == nil && n >= r.lines {
			break
		}
		if time.Now().After(deadline) {
			r.got = n
			return fail(fmt.Errorf("timed out after %s with %d of %d lines in VictoriaLogs (last error: %v)", o.timeout, n, r.lines, err))
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := time.Now()
	r.cpuSeconds, r.seconds, r.lag = p.cpu()-cpu0, done.Sub(t0).Seconds(), done.Sub(end)
	r.rssMiB = p.rss()
	r.loadRSSMiB, r.loadAnonMiB = stopRSS()
	stopRSS = nil
	// Repeats that arrive late would be missed by a count taken at once.
	time.Sleep(2 * time.Second)
	if r.got, r.distinct, err = vlCount(vlAddr, true); err != nil {
		return fail(err)
	}
	if r.got != r.lines || r.distinct != r.lines {
		r.failure = fmt.Sprintf("%d lines written, %d in VictoriaLogs, %d distinct", r.lines, r.got, r.distinct)
	}
	return r
}

// vlCount asks VictoriaLogs how many entries it holds, and with distinct also how many
// different messages.
func vlCount(addr string, distinct bool) (n, d int64, err error) {
	q := "* | stats count() as n"
	if distinct {
		q = "* | stats count() as n, count_uniq(_msg) as d"
	}
	resp, err := http.Get("http://" + addr + "/select/logsql/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("LogsQL: %s: %s", resp.Status, b)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return 0, 0, nil
	}
	var row struct{ N, D string }
	if err := json.Unmarshal(b, &row); err != nil {
		return 0, 0, fmt.Errorf("LogsQL answer %q: %w", b, err)
	}
	n, _ = strconv.ParseInt(row.N, 10, 64)
	d, _ = strconv.ParseInt(row.D, 10, 64)
	return n, d, nil
}

// writer appends unique lines to its files round-robin, at a rate.
type writer struct {
	files        []*os.File
	bufs         [][]byte
	pad          string
	lines, bytes int64
}

func newWriter(dir string, n, lineBytes int) (*writer, error) {
	w := &writer{bufs: make([][]byte, n)}
	// "2026-12-03T20:00:00.000000Z INFO file=0000 seq=000000000 " is 57 bytes; the rest is padding.
	w.pad = strings.Repeat("x", max(1, lineBytes-58))
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app-%04d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			w.close()
			return nil, err
		}
		w.files = append(w.files, f)
	}
	return w, nil
}

func (w *writer) close() {
	for _, f := range w.files {
		_ = f.Close()
	}
}

// run appends rate lines a second for d, in 20 ms ticks; each file gets its lines of a tick in
// one write, as a logging library's buffered writer would.
func (w *writer) run(rate int, d time.Duration) error {
	t0 := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		elapsed := time.Since(t0)
		if elapsed > d {
			elapsed = d
		}
		due := int64(elapsed.Seconds() * float64(rate))
		stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
		for ; w.lines < due; w.lines++ {
			i := int(w.lines % int64(len(w.files)))
			w.bufs[i] = fmt.Appendf(w.bufs[i], "%s INFO file=%04d seq=%09d %s\n", stamp, i, w.lines, w.pad)
		}
		for i, b := range w.bufs {
			if len(b) == 0 {
				continue
			}
			if _, err := w.files[i].Write(b); err != nil {
				return err
			}
			w.bytes += int64(len(b))
			w.bufs[i] = b[:0]
		}
		if elapsed >= d {
			return nil
		}
		<-tick.C
	}
}

const vigilSyslogConfig = `receivers:
  syslog:
    tcp: {endpoint: %[1]s}
exporters:
  file:
    path: %[2]s/out.bin
    format: proto
    rotation: {max_megabytes: 100000}
service:
  pipelines:
    logs:
      receivers: [syslog]
      exporters: [file]
  telemetry:
    logs: {level: warn}
    metrics: {address: %[3]s}
`

// rsyslog as a relay would run it: imtcp in, omfile out with the traditional file format.
const rsyslogConfig = `global(workDirectory="%[2]s" maxMessageSize="8k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%[1]s")
action(type="omfile" file="%[2]s/out.log" template="RSYSLOG_FileFormat")
`

func syslogRun(o options, agent, dir string) (r result) {
	r = result{test: "syslog-tcp", agent: agent}
	fail := func(err error) result { r.failure = err.Error(); return r }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	listen := benchutil.FreePort()
	var p *proc
	var out string
	var err error
	switch agent {
	case "vigil":
		out = filepath.Join(dir, "out.bin")
		p, err = startAgent(o, agent, dir, vigilSyslogConfig, listen, dir)
	case "rsyslog":
		out = filepath.Join(dir, "out.log")
		_, port, _ := net.SplitHostPort(listen)
		cfg := filepath.Join(dir, "rsyslog.conf")
		if err = os.WriteFile(cfg, fmt.Appendf(nil, rsyslogConfig, port, dir), 0o600); err != nil {
			return fail(err)
		}
		p, err = start("rsyslog", dir, o.rsyslog, "-n", "-f", cfg, "-i", filepath.Join(dir, "rsyslogd.pid"))
		if err == nil {
			err = waitTCP(listen, 30*time.Second)
		}
	}
	if err != nil {
		return fail(err)
	}
	defer p.stop()
	cpu0, t0 := p.cpu(), time.Now()
	stopRSS := p.sampleRSS()
	defer func() {
		if stopRSS != nil {
			stopRSS()
		}
	}()
	r.lines, r.bytes, err = sendSyslog(listen, o.syslogMessages, o.syslogConns, o.lineBytes)
	if err != nil {
		return fail(err)
	}
	end := time.Now()
	deadline := end.Add(o.timeout)
	seen := make([]bool, r.lines)
	for {
		if err := p.alive(); err != nil {
			return fail(err)
		}
		r.got, r.distinct, err = countSeqs(out, seen)
		if err == nil && r.got >= r.lines {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("timed out after %s with %d of %d messages written out (last error: %v)", o.timeout, r.got, r.lines, err))
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := time.Now()
	r.cpuSeconds, r.seconds, r.lag = p.cpu()-cpu0, done.Sub(t0).Seconds(), done.Sub(end)
	r.rssMiB = p.rss()
	r.loadRSSMiB, r.loadAnonMiB = stopRSS()
	stopRSS = nil
	time.Sleep(time.Second)
	if r.got, r.distinct, err = countSeqs(out, seen); err != nil {
		return fail(err)
	}
	if r.got != r.lines || r.distinct != r.lines {
		r.failure = fmt.Sprintf("%d messages sent, %d written out, %d distinct", r.lines, r.got, r.distinct)
	}
	return r
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sendSyslog sends n RFC 5424 messages of about size bytes, octet-counted, on conns
// connections, as fast as the receiver reads them.
func sendSyslog(addr string, n, conns, size int) (sent, bytes int64, err error) {
	pad := strings.Repeat("x", max(1, size-100))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	per := n / conns
	for c := range conns {
		from, to := c*per, (c+1)*per
		if c == conns-1 {
			to = n
		}
		wg.Go(func() {
			var b int64
			err := func() error {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer conn.Close()
				bw := bufio.NewWriterSize(conn, 64<<10)
				var msg []byte
				stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
				for i := from; i < to; i++ {
					msg = fmt.Appendf(msg[:0], "<134>1 %s bench-host app 4242 ID47 - seq=%09d %s", stamp, i, pad)
					k, err := fmt.Fprintf(bw, "%d %s", len(msg), msg)
					if err != nil {
						return err
					}
					b += int64(k)
				}
				return bw.Flush()
			}()
			mu.Lock()
			bytes += b
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return int64(n), bytes, errors.Join(errs...)
}

// countSeqs scans a file for "seq=NNNNNNNNN" (in text or in protobuf, where strings are kept
// as they are) and counts them, marking each in seen.
func countSeqs(path string, seen []bool) (got, distinct int64, err error) {
	clear(seen)
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	const marker = "seq="
	matched := 0
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, distinct, err
		}
		if c == marker[matched] {
			matched++
			if matched < len(marker) {
				continue
			}
			matched = 0
			digits, err := br.Peek(9)
			if err != nil {
				break // a record being written
			}
			v, err := strconv.Atoi(string(digits))
			if err != nil || v >= len(seen) {
				continue
			}
			got++
			if !seen[v] {
				seen[v] = true
				distinct++
			}
			continue
		}
		matched = 0
		if c == marker[0] {
			matched = 1
		}
	}
	return got, distinct, nil
}

func markdown(o options, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Logs path: vigil beside the OpenTelemetry Collector's filelog receiver and rsyslog\n\n")
	fmt.Fprintf(&b, "%s, `go run ./bench/cmd/logbench` (`BENCH_PARTS=logs bash bench/run.sh`), %d CPUs (%s).\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), benchutil.CPUModel())
	fmt.Fprintf(&b, "Files: %d lines/s of %d bytes appended for %s over all files, round-robin; vigil's filelog "+
		"receiver → batch → loki exporter → VictoriaLogs' Loki push API, the Collector's filelog receiver (offsets in "+
		"file_storage) → batch → otlphttp → VictoriaLogs' OTLP endpoint; a fresh VictoriaLogs for each run. "+
		"Syslog: %d RFC 5424 messages over %d TCP connections, octet-counted, as fast as taken; vigil's syslog "+
		"receiver → file exporter (protobuf), rsyslog's imtcp → omfile. CPU-seconds and peak RSS are the agent's "+
		"alone, from the first line written until the backend held the last; \"lag\" is from the last write until then. "+
		"\"RSS under load\" is the highest VmRSS sampled every 50 ms over that time, \"anon\" the highest RssAnon (VmRSS "+
		"less the mapped file pages: the executable's code and constant data, which the kernel maps in whole page-cache "+
		"folios of up to megabytes at a touch, clean and reclaimable); \"since start\" is VmHWM, which "+
		"also holds the start-up peak (for vigil mostly its executable's pages touched by package initialisation, "+
		"released right after start).\n\n",
		o.rate, o.lineBytes, o.duration, o.syslogMessages, o.syslogConns)
	b.WriteString("| run | agent | lines | lines/s | lines per CPU-s | MiB per CPU-s | RSS under load MiB | anon MiB | RSS since start MiB | lag | lost / repeated |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		perCPU, mibPerCPU := 0.0, 0.0
		if r.cpuSeconds > 0 {
			perCPU = float64(r.got) / r.cpuSeconds
			mibPerCPU = float64(r.bytes) / (1 << 20) / r.cpuSeconds
		}
		rate := 0.0
		if r.seconds > 0 {
			rate = float64(r.got) / r.seconds
		}
		check := fmt.Sprintf("%d / %d", r.lines-r.distinct, r.got-r.distinct)
		if r.failure != "" {
			first, _, _ := strings.Cut(r.failure, "\n")
			check = "FAILED: " + first
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %.1f | %.0f | %.0f | %.0f | %s | %s |\n", r.test, r.agent, r.lines,
			benchutil.Human(rate), benchutil.Human(perCPU), mibPerCPU, r.loadRSSMiB, r.loadAnonMiB, r.rssMiB, r.lag.Round(10*time.Millisecond), check)
	}
	// The ratios the issue asks for, per run where both agents were measured.
	var ratios []string
	byRun := map[string]map[string]result{}
	var order []string
	for _, r := range rs {
		if byRun[r.test] == nil {
			byRun[r.test] = map[string]result{}
			order = append(order, r.test)
		}
		byRun[r.test][r.agent] = r
	}
	for _, t := range order {
		v, ok := byRun[t]["vigil"]
		for _, peer := range []string{"otelcol", "rsyslog"} {
			p, okp := byRun[t][peer]
			if !ok || !okp || v.cpuSeconds == 0 || p.cpuSeconds == 0 || p.rssMiB == 0 || p.loadRSSMiB == 0 || p.loadAnonMiB == 0 || !v.ok() || !p.ok() {
				continue
			}
			ratios = append(ratios, fmt.Sprintf("- %s: vigil %.2f× %s's lines per CPU-second, at %.2f× its RSS under load (anon %.2f×, since start %.2f×)",
				t, (float64(v.got)/v.cpuSeconds)/(float64(p.got)/p.cpuSeconds), peer, v.loadRSSMiB/p.loadRSSMiB, v.loadAnonMiB/p.loadAnonMiB, v.rssMiB/p.rssMiB))
		}
	}
	if len(ratios) > 0 {
		b.WriteString("\n" + strings.Join(ratios, "\n") + "\n")
	}
	return b.String()
}
