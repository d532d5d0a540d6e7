//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// faultSink is a running test/e2e/faultsink.
type faultSink struct {
	*process
	grpc, http, control string
}

func startFaultSink(t *testing.T) *faultSink {
	t.Helper()
	s := &faultSink{grpc: freeAddr(t), http: freeAddr(t), control: freeAddr(t)}
	s.process = startProcess(t, "faultsink", binary(t, "FAULTSINK_BIN"),
		"-grpc", s.grpc, "-http", s.http, "-control", s.control)
	waitHTTP(t, s.process, "http://"+s.control+"/stats", 10*time.Second)
	return s
}

// sinkStats is the faultsink's GET /stats.
type sinkStats struct {
	Unique           int64            `json:"unique"`
	Duplicates       int64            `json:"duplicates"`
	Requests         int64            `json:"requests"`
	Accepted         int64            `json:"accepted"`
	Spans            int64            `json:"spans"`
	NoSeq            int64            `json:"no_seq"`
	DecodeErrors     int64            `json:"decode_errors"`
	FailuresInjected int64            `json:"failures_injected"`
	Injected         map[string]int64 `json:"injected"`
	Refusing         bool             `json:"refusing"`
	Refusals         int64            `json:"refusals"`
	Seqs             [][2]int64       `json:"seqs"`
}

// setMode replaces the sink's fault plan, e.g. `{"fail_percent": 30}`; `{}` heals it.
func (s *faultSink) setMode(t *testing.T, mode string) {
	t.Helper()
	resp, err := httpClient.Post("http://"+s.control+"/mode", "application/json", strings.NewReader(mode))
	if err != nil {
		t.Fatalf("faultsink mode %s: %v", mode, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("faultsink mode %s: %s %s", mode, resp.Status, b)
	}
}

func (s *faultSink) stats(t *testing.T, withSeqs bool) sinkStats {
	t.Helper()
	url := "http://" + s.control + "/stats"
	if withSeqs {
		url += "?seqs=1"
	}
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("faultsink stats: %v", err)
	}
	defer resp.Body.Close()
	var st sinkStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("faultsink stats: %v", err)
	}
	return st
}

// has reports whether the sorted runs contain seq.
func has(runs [][2]int64, seq int64) bool {
	i, found := slices.BinarySearchFunc(runs, seq, func(r [2]int64, q int64) int {
		switch {
		case r[1] < q:
			return -1
		case r[0] > q:
			return 1
		}
		return 0
	})
	return found && i < len(runs)
}

// missing returns the acknowledged seqs the sink does not hold, as runs.
func missing(acked []bool, runs [][2]int64) (n int, gaps [][2]int64) {
	for q, ok := range acked {
		if !ok || has(runs, int64(q)) {
			continue
		}
		n++
		if k := len(gaps); k > 0 && gaps[k-1][1] == int64(q)-1 {
			gaps[k-1][1]++
		} else {
			gaps = append(gaps, [2]int64{int64(q), int64(q)})
		}
	}
	return n, gaps
}

func fmtRuns(runs [][2]int64, max int) string {
	var parts []string
	for i, r := range runs {
		if i == max {
			parts = append(parts, fmt.Sprintf("… (%d runs)", len(runs)))
			break
		}
		parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
	}
	return strings.Join(parts, " ")
}

// awaitDelivered polls the sink until it holds every acknowledged seq, or timeout passes; it
// returns how many acknowledged seqs are missing (0 on success), their runs, and the sink's
// final stats.
func awaitDelivered(t *testing.T, s *faultSink, acked []bool, timeout time.Duration) (int, [][2]int64, sinkStats) {
	t.Helper()
	return awaitMissingAtMost(t, s, acked, 0, timeout)
}

// awaitMissingAtMost is awaitDelivered for a scenario that loses up to allow spans by design:
// it returns once at most allow acknowledged seqs are missing and the sink has taken nothing
// for a second (so that a late delivery still counts), or when timeout passes.
func awaitMissingAtMost(t *testing.T, s *faultSink, acked []bool, allow int, timeout time.Duration) (int, [][2]int64, sinkStats) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var quietSince time.Time
	var lastRequests int64 = -1
	for {
		st := s.stats(t, true)
		n, gaps := missing(acked, st.Seqs)
		if st.Requests != lastRequests {
			lastRequests, quietSince = st.Requests, time.Now()
		}
		if n == 0 || n <= allow && time.Since(quietSince) >= time.Second || time.Now().After(deadline) {
			return n, gaps, st
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireDelivered fails the test unless every acknowledged seq reached the sink within
// timeout; it returns the sink's stats.
func requireDelivered(t *testing.T, s *faultSink, r loadResult, timeout time.Duration) sinkStats {
	t.Helper()
	if r.ackedSpans == 0 {
		t.Fatalf("nothing was acknowledged: %s%s", r, r.errorSummary())
	}
	n, gaps, st := awaitDelivered(t, s, r.acked, timeout)
	if n > 0 {
		t.Errorf("LOST: %d of %d acknowledged spans never reached the sink (after %s); missing seqs: %s",
			n, r.ackedSpans, timeout, fmtRuns(gaps, 10))
	}
	return st
}

// vmRSS is a process's resident set size from /proc/PID/status, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v)) // "12345 kB"
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssSampler records a process's peak RSS every interval until stopped.
type rssSampler struct {
	stopc   chan struct{}
	done    chan struct{}
	peak    int64
	samples int
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	r := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, err := vmRSS(pid); err == nil {
				r.peak = max(r.peak, v)
				r.samples++
			}
			select {
			case <-r.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// stop ends sampling and returns the peak RSS in bytes and the number of samples.
func (r *rssSampler) stop() (int64, int) {
	select {
	case <-r.stopc:
	default:
		close(r.stopc)
	}
	<-r.done
	return r.peak, r.samples
}

// httpStatus returns the status code and body of GET url ("" and 0 if it failed).
func httpStatus(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
