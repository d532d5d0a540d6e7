package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeRecv struct {
	fail bool
}

func (r *fakeRecv) Start(_ context.Context, h component.Host) error {
	if r.fail {
		go h.ReportFatal(errors.New("listener died"))
	}
	return nil
}
func (r *fakeRecv) Shutdown(context.Context) error { return nil }

type nopExp struct{ component.Consumer }

func (nopExp) Start(context.Context, component.Host) error { return nil }
func (nopExp) Shutdown(context.Context) error              { return nil }

type recvCfg struct {
	Fail bool `yaml:"fail"`
}

func factories(t *testing.T) component.Factories {
	f, err := component.MakeFactories(
		[]component.ReceiverFactory{{Type: "fake", Signals: batch.Signals,
			NewConfig: func() component.Config { return &recvCfg{} },
			Create: func(_ component.Settings, cfg component.Config, _ map[batch.Signal]component.Consumer) (component.Component, error) {
				return &fakeRecv{fail: cfg.(*recvCfg).Fail}, nil
			}}},
		nil,
		[]component.ExporterFactory{{Type: "nop", Signals: batch.Signals,
			NewConfig: func() component.Config { return &struct{}{} },
			Create: func(component.Settings, component.Config) (component.Exporter, error) {
				return nopExp{component.Discard}, nil
			}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newAgent(t *testing.T, fail bool, logs *syncBuf) *Agent {
	t.Helper()
	yaml := `
receivers: {fake: {fail: ` + map[bool]string{true: "true", false: "false"}[fail] + `}}
exporters: {nop: {}}
service:
  pipelines: {traces: {receivers: [fake], exporters: [nop]}}
  telemetry: {metrics: {address: "127.0.0.1:0"}, logs: {level: debug}}
`
	f := factories(t)
	cfg, err := config.Load("agent.yaml", []byte(yaml), f)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, f, Options{LogOutput: logs, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRunReadyThenCleanShutdown(t *testing.T) {
	logs := &syncBuf{}
	a := newAgent(t, false, logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if addr := a.TelemetryAddr(); addr != "" {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("agent never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("signalled shutdown must return nil, got %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"vigil stopped"`) {
		t.Errorf("logs lack the stop line:\n%s", logs)
	}
}

func TestFatalComponentErrorStopsTheAgent(t *testing.T) {
	logs := &syncBuf{}
	a := newAgent(t, true, logs)
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listener died") {
		t.Fatalf("Run = %v, want the fatal error", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"fatal component error, shutting down"`) {
		t.Errorf("logs:\n%s", logs)
	}
}
