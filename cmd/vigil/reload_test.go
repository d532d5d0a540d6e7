package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/agent"
	"github.com/vigilhq/vigil/internal/testdata"
)

// backend is an OTLP/HTTP trace backend that records the seq attribute of every span.
type backend struct {
	mu   sync.Mutex
	seen map[int64]int
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(20 * time.Millisecond) // a backend slower than the senders: the exporter's queue fills
	b.mu.Lock()
	td := req.Traces()
	for i := range td.ResourceSpans().Len() {
		ss := td.ResourceSpans().At(i).ScopeSpans()
		for j := range ss.Len() {
			spans := ss.At(j).Spans()
			for k := range spans.Len() {
				seq, _ := spans.At(k).Attributes().Get("seq")
				b.seen[seq.Int()]++
			}
		}
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	_, _ = w.Write(resp)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReloadUnderLoad runs the real OTLP receiver, batch processor and OTLP/HTTP exporter with a
// persistent queue, sends spans without pause from two clients, and reloads the config file
// again and again: the exporter's headers change (exporter replaced: its queue reopened), the
// batch timeout changes (pipeline replaced), the receiver's body limit changes (listener
// restarted on the same port), nothing changes, the file is broken, a section that needs a
// restart changes. Every span a client was answered 200 for reaches the backend.
//
// Run twice: with the persistent queue and durable acknowledgements, and with a memory queue
// and acknowledgements none, where a client is answered as soon as the pipeline took its data,
// so that anything a reload dropped from a processor's buffer or an exporter's queue is missed.
func TestReloadUnderLoad(t *testing.T) {
	t.Run("persistent", func(t *testing.T) { reloadUnderLoad(t, "persistent: true, directory: %s", "") })
	t.Run("memory-acks-none", func(t *testing.T) { reloadUnderLoad(t, "persistent: false%.0s", "acknowledgements: none, ") })
}

func reloadUnderLoad(t *testing.T, queue, acks string) {
	be := &backend{seen: map[int64]int{}}
	srv := httptest.NewServer(be)
	defer srv.Close()
	dir := t.TempDir()
	rcvAddr := freePort(t)
	path := filepath.Join(dir, "vigil.yaml")
	write := func(gen int, timeout string, bodyLimit int, extra string) {
		t.Helper()
		cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http: {endpoint: %q, max_request_body_size: %d}
processors:
  batch: {timeout: %s}
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    headers: {x-generation: "%d"}
    sending_queue: {num_consumers: 1, `+queue+`}
%s
service:
  pipelines:
    traces: {`+acks+`receivers: [otlp], processors: [batch], exporters: [otlphttp]}
  telemetry:
    metrics: {address: "127.0.0.1:0"}
    logs: {level: info}
`, rcvAddr, bodyLimit, timeout, srv.URL, gen, filepath.Join(dir, "queue"), extra)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(0, "50ms", 4<<20, "")
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path, f)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := agent.New(cfg, f, agent.Options{LogOutput: &syncWriter{w: &logs}, GracePeriod: 10 * time.Second,
		Load: func() (*config.Config, error) { return config.LoadFile(path, f) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = a.Shutdown(ctx)
		}
	}()

	var acked sync.Map
	var ackedN, retries atomic.Int64
	sendCtx, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; sendCtx.Err() == nil; i++ {
				first := (c*1_000_000 + i) * 20
				body, _ := ptraceotlp.NewExportRequestFromTraces(testdata.Traces(1, 20, first)).MarshalProto()
				for sendCtx.Err() == nil {
					resp, err := client.Post("http://"+rcvAddr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							acked.Store(first, true)
							ackedN.Add(20)
							break
						}
					}
					retries.Add(1) // refused (listener restarting) or 503: a client retries
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	reloadOK := func(wantChanges string) {
		t.Helper()
		time.Sleep(60 * time.Millisecond) // let load flow between reloads
		cs, err := a.Reload()
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.String())
		}
		if strings.Join(got, "; ") != wantChanges {
			t.Errorf("changes %q, want %q", strings.Join(got, "; "), wantChanges)
		}
	}
	for gen := 1; gen <= 3; gen++ {
		write(gen, "50ms", 4<<20+gen-1, "")
		reloadOK("exporter otlphttp: replaced")
		write(gen, "80ms", 4<<20+gen-1, "")
		reloadOK("pipeline traces: replaced")
		write(gen, "80ms", 4<<20+gen-1, "")
		reloadOK("")
		write(gen, "80ms", 4<<20+gen, "")
		reloadOK("receiver otlp: replaced")
		write(gen, "50ms", 4<<20+gen, "")
		reloadOK("pipeline traces: replaced")
	}
	// A broken file and a section that needs a restart change nothing and say why.
	write(9, "50ms", 4<<20, "  bogus: {}")
	var re *agent.ReloadError
	if _, err := a.Reload(); !errors.As(err, &re) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("broken config: %v, want a ReloadError naming it", err)
	}
	// The log level is applied by a reload; the rest of service.telemetry needs a restart.
	edit := func(from, to string) {
		t.Helper()
		write(3, "50ms", 4<<20+3, "") // as running, but for the edit
		if err := os.WriteFile(path, bytes.Replace(must(os.ReadFile(path)), []byte(from), []byte(to), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if a.Logger.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("debug logging on at level info")
	}
	edit("level: info", "level: debug")
	reloadOK("")
	if !a.Logger.Enabled(ctx, slog.LevelDebug) {
		t.Error("log level debug not applied by the reload")
	}
	edit("level: info", "level: info, encoding: console")
	if _, err := a.Reload(); !errors.As(err, &re) || !strings.Contains(err.Error(), "service.telemetry changed: a reload cannot apply that, restart vigil") {
		t.Errorf("a changed service.telemetry: %v, want a ReloadError naming it", err)
	}
	if !a.Logger.Enabled(ctx, slog.LevelDebug) {
		t.Error("a refused reload changed the log level")
	}
	// POST /-/reload answers with what changed, or 400 and why nothing did.
	post := func() (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+a.TelemetryAddr()+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	write(7, "50ms", 4<<20+3, "")
	if code, body := post(); code != http.StatusOK || body != "reloaded\nexporter otlphttp: replaced\n" {
		t.Errorf("POST /-/reload: %d %q", code, body)
	}
	write(8, "50ms", 4<<20+3, "  bogus: {}")
	if code, body := post(); code != http.StatusBadRequest || !strings.HasPrefix(body, "reload refused, the running config stays: ") || !strings.Contains(body, "bogus") {
		t.Errorf("POST /-/reload of a broken file: %d %q", code, body)
	}
	stopSending()
	wg.Wait()

	// Every acknowledged span reaches the backend (the persistent queue sends what it holds).
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing := 0
		be.mu.Lock()
		acked.Range(func(k, _ any) bool {
			for s := k.(int); s < k.(int)+20; s++ {
				if be.seen[int64(s)] == 0 {
					missing++
				}
			}
			return true
		})
		be.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged spans never reached the backend after 15 reloads", missing, ackedN.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ackedN.Load() == 0 {
		t.Fatal("no span was acknowledged")
	}
	stopped = true
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d spans acknowledged through the reloads (%d client retries), all delivered", ackedN.Load(), retries.Load())
	if !strings.Contains(logs.String(), `"msg":"reload failed"`) {
		t.Error("a failed reload is not logged")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
