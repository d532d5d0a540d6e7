package loki

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

// BenchmarkSend: one batch of 4000 file lines (what the batch processor hands on at 20k lines/s)
// converted, encoded, compressed and pushed to a server that reads and drops it.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := NewConfig()
	cfg.Client.Endpoint = srv.URL
	cfg.Sender.Queue.Enabled = false
	set := component.Settings{ID: component.ID{Type: Type}, Kind: component.KindExporter, Logger: slog.New(slog.DiscardHandler),
		Counters: &componenttest.Counters{}, Registerer: prometheus.NewRegistry()}
	e, err := newExporter(set, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background(), component.NopHost{}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = e.Shutdown(context.Background()) }()
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	line := "2026-12-07T00:00:00.000Z level=info msg=\"request served\" method=GET path=/api/v1/orders status=200 duration_ms=12 user=4711 trace=5b8aa5a2d2c872e8321cf37308d69df2 "
	const n = 4000
	for i := range n {
		lr := recs.AppendEmpty()
		lr.Body().SetStr(line + strconv.Itoa(i))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Microsecond)))
		lr.Attributes().PutStr("log.file.path", "/var/log/app/app.log")
		lr.Attributes().PutStr("log.file.name", "app.log")
	}
	bt := batch.FromLogs(ld)
	b.SetBytes(int64(n * len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.send(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
	}
}
