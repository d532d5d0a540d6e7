package selftelemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerHealthAndMetrics(t *testing.T) {
	tel := New(Build{Version: "1.2.3", Revision: "abc"})
	h := NewHealth()
	s, err := Listen(Endpoint{Address: "127.0.0.1:0"}, tel, h, slog.New(slog.NewTextHandler(io.Discard, nil)), func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	base := "http://" + s.Addr()

	f := func(path string, wantCode int, wantBody string) {
		t.Helper()
		code, body := get(t, base+path)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("GET %s = %d %q; want %d containing %q", path, code, body, wantCode, wantBody)
		}
	}
	f("/healthz", 200, `"ok"`)
	f("/readyz", 503, `"starting"`)
	h.SetReady(true)
	f("/readyz", 200, `"ready"`)
	h.Report("exporter otlp", errors.New("listener died"))
	f("/healthz", 503, `"exporter otlp":"listener died"`)
	f("/readyz", 503, `"unhealthy"`)
	h.Report("exporter otlp", nil)
	h.Degrade("exporter otlp/2", errors.New("sending queue is full"))
	f("/healthz", 200, `"degraded":{"exporter otlp/2":"sending queue is full"}`)
	f("/readyz", 503, `"status":"degraded"`)
	h.Degrade("exporter otlp/2", nil)
	f("/readyz", 200, `"ready"`)
	h.SetStopping()
	f("/healthz", 200, `"ok"`)
	f("/readyz", 503, `"stopping"`)

	c := tel.Counters(component.KindExporter, component.ID{Type: "otlp", Name: "a"}, "", []batch.Signal{batch.Traces})
	c.Add(component.Sent, batch.Traces, 7)
	c.Add(component.Sent, batch.Logs, 5) // not a signal of this component: ignored, no series
	f("/metrics", 200, `vigil_component_sent_items_total{component="otlp/a",kind="exporter",pipeline="",signal="traces"} 7`)
	f("/metrics", 200, `vigil_build_info{goversion=`)
	if _, body := get(t, base+"/metrics"); strings.Contains(body, `signal="logs"`) {
		t.Error("a signal the component does not handle got a series")
	}
}

func TestListenFailsOnBusyPort(t *testing.T) {
	tel, h := New(Build{}), NewHealth()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Listen(Endpoint{Address: "127.0.0.1:0"}, tel, h, logger, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if _, err := Listen(Endpoint{Address: s.Addr()}, New(Build{}), h, logger, func(error) {}); err == nil {
		t.Fatal("second listener on the same port must fail")
	}
}
