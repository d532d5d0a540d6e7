//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// binary is the path of a tool run.sh built or found, named by an environment variable.
func binary(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the end-to-end tests with test/e2e/run.sh", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return p
}

// httpClient keeps no idle connections, so no transport goroutine outlives a test (goleak).
var httpClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

var (
	portsMu sync.Mutex
	ports   = map[string]bool{}
)

// freeAddr returns a loopback address whose port was free a moment ago, never the same one
// twice in this test run (the kernel may hand a just-closed port out again).
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		addr := l.Addr().String()
		l.Close()
		if !ports[addr] {
			ports[addr] = true
			return addr
		}
	}
	t.Fatal("no free port found")
	return ""
}

// logBuffer collects a process's output; safe for the writer goroutines and readers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a child process owned by one test: it is killed (with its process group) when the
// test ends, and its output is shown if the test failed.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir() // nothing may depend on or litter the caller's working directory
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Own process group, so that cleanup kills anything the child started; SIGKILL if this test
	// binary dies first (a go test timeout), so that nothing is left running.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output (last 8 KiB) ---\n%s", name, tail(p.out.String(), 8<<10))
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) kill() {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// wait waits for the process to exit on its own and returns its exit code.
func (p *process) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and returns the exit code; a process that needs longer than timeout to
// drain fails the test.
func (p *process) stop(timeout time.Duration) int {
	p.t.Helper()
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.wait(timeout)
}

func (p *process) output() string { return p.out.String() }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// runTool runs a short-lived command to completion and returns its output and exit code.
func runTool(t *testing.T, timeout time.Duration, bin string, args ...string) (string, int) {
	t.Helper()
	p := startProcess(t, filepath.Base(bin), bin, args...)
	code := p.wait(timeout)
	return p.output(), code
}

// runTelemetrygen runs telemetrygen and fails the test unless it exits 0.
func runTelemetrygen(t *testing.T, args ...string) {
	t.Helper()
	start := time.Now()
	out, code := runTool(t, 2*time.Minute, binary(t, "TELEMETRYGEN_BIN"), args...)
	if code != 0 {
		t.Fatalf("telemetrygen %s: exit %d\n%s", strings.Join(args, " "), code, tail(out, 8<<10))
	}
	t.Logf("telemetrygen %s: done in %s", args[0], time.Since(start).Round(time.Millisecond))
}

// vigil is a running `vigil run`.
type vigil struct {
	*process
	telemetry string // host:port of /metrics, /healthz, /readyz
}

// startVigil writes config to a file, runs vigil on it and waits until /readyz answers 200.
func startVigil(t *testing.T, name, config, telemetry string) *vigil {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &vigil{process: startProcess(t, name, binary(t, "VIGIL_BIN"), "run", "--config", path), telemetry: telemetry}
	waitHTTP(t, v.process, "http://"+telemetry+"/readyz", 30*time.Second)
	return v
}

// stopClean sends SIGTERM and checks the exit code and that nothing was logged at ERROR.
func (v *vigil) stopClean(t *testing.T) {
	t.Helper()
	if code := v.stop(30 * time.Second); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0", v.name, code)
	}
	for line := range strings.SplitSeq(v.output(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("%s logged an error: %s", v.name, line)
		}
	}
}

// waitHTTP polls url until it answers 200; it fails early if p (may be nil) exits.
func waitHTTP(t *testing.T, p *process, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited (code %d) before %s answered", p.name, p.cmd.ProcessState.ExitCode(), url)
		}
		resp, err := httpClient.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not 200 within %s: %s", url, timeout, last)
}

// waitTCP waits until something accepts connections on addr.
func waitTCP(t *testing.T, p *process, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before listening on %s", p.name, addr)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s after %s", addr, timeout)
}

// eventually polls cond every 100ms until it returns nil or timeout passes; the last error fails
// the test.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %s: %v", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sample is one Prometheus text-format sample.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the Prometheus text exposition from addr/metrics.
func scrape(t *testing.T, addr string) []sample {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			t.Fatalf("scrape %s: %v", addr, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return out
}

// parseSample parses `name{a="x",b="y"} value [timestamp]`.
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("bad sample line %q", line)
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			k, rest, ok := strings.Cut(line, `="`)
			if !ok {
				return s, fmt.Errorf("bad labels in %q", line)
			}
			var v strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
					if rest[j] == 'n' {
						v.WriteByte('\n')
						continue
					}
				}
				v.WriteByte(rest[j])
			}
			if j == len(rest) {
				return s, fmt.Errorf("unterminated label value in %q", line)
			}
			s.labels[k] = v.String()
			line = rest[j+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("sample without value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.value = v
	return s, err
}

// sum adds the samples named name whose labels include match.
func sum(samples []sample, name string, match map[string]string) float64 {
	total := 0.0
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// completeLines returns the newline-terminated lines of a file that is still being written.
func completeLines(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	} else {
		return nil, nil
	}
	var lines [][]byte
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// runID is unique per test run so that data from an earlier run can never satisfy a check.
func runID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
}
