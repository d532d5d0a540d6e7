package otlphttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is one request as the backend saw it.
type request struct {
	path    string
	header  http.Header
	body    []byte // decompressed
	seqs    []int64
	decoded bool
	at      time.Time
}

type reply struct {
	status int
	header map[string]string
	body   []byte
}

// backend is an OTLP/HTTP server that decodes with pdata; answer picks the reply to the n-th
// request (from 0), the zero reply being an empty 200.
type backend struct {
	mu     sync.Mutex
	reqs   []request
	answer func(n int) reply
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := decompress(r.Header.Get("Content-Encoding"), raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	seqs, decodeErr := decode(r.URL.Path, r.Header.Get("Content-Type") == "application/json", body)
	b.mu.Lock()
	n := len(b.reqs)
	b.reqs = append(b.reqs, request{path: r.URL.Path, header: r.Header.Clone(), body: body, seqs: seqs,
		decoded: decodeErr == nil, at: time.Now()})
	answer := b.answer
	b.mu.Unlock()
	rep := reply{status: http.StatusOK}
	if answer != nil {
		rep = answer(n)
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

func (b *backend) requests() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]request(nil), b.reqs...)
}

func decompress(encoding string, b []byte) ([]byte, error) {
	switch encoding {
	case "":
		return b, nil
	case "gzip":
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(b, nil)
	}
	return nil, io.ErrUnexpectedEOF
}

func seqOf(attrs pcommon.Map) int64 {
	v, _ := attrs.Get("seq")
	return v.Int()
}

// decode reads a request with pdata and returns the seq attribute of every item.
func decode(path string, isJSON bool, body []byte) ([]int64, error) {
	var seqs []int64
	unmarshal := func(p, j func([]byte) error) error {
		if isJSON {
			return j(body)
		}
		return p(body)
	}
	switch path {
	case "/v1/traces", "/custom/traces":
		req := ptraceotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return nil, err
		}
		for _, rs := range req.Traces().ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					seqs = append(seqs, seqOf(sp.Attributes()))
				}
			}
		}
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return nil, err
		}
		for _, rm := range req.Metrics().ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						seqs = append(seqs, seqOf(dp.Attributes()))
					}
				}
			}
		}
	case "/v1/logs":
		req := plogotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return nil, err
		}
		for _, rl := range req.Logs().ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					seqs = append(seqs, seqOf(lr.Attributes()))
				}
			}
		}
	}
	return seqs, nil
}

func startBackend(t testing.TB, b *backend) string {
	t.Helper()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return srv.URL
}

// handlerTransport serves requests in-process, without a network, for synctest bubbles.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	_ = req.Body.Close()
	return rec.Result(), nil
}

type counters = componenttest.Counters

type logBuffer = componenttest.LogBuffer

func settings() (component.Settings, *counters, *logBuffer) {
	cnt, logs := &counters{}, &logBuffer{}
	return component.Settings{
		ID:         component.ID{Type: Type},
		Kind:       component.KindExporter,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Counters:   cnt,
		Registerer: prometheus.NewRegistry(),
	}, cnt, logs
}

// testConfig sends to endpoint without a queue (Consume returns the outcome), with
// millisecond retries.
func testConfig(endpoint string) *Config {
	c := NewConfig()
	c.Client.Endpoint = endpoint
	c.Sender.Queue.Enabled = false
	c.Sender.Retry.InitialInterval = time.Millisecond
	c.Sender.Retry.MaxInterval = 5 * time.Millisecond
	c.Sender.Retry.RandomizationFactor = 0
	c.Sender.Retry.MaxElapsedTime = 10 * time.Second
	return c
}

func startExporter(t testing.TB, set component.Settings, cfg *Config) *exporter {
	t.Helper()
	exp, err := newExporter(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// items returns a batch of n items of sig, decoded or encoded, and its encoded bytes.
func items(t testing.TB, sig batch.Signal, n, first int, encoded bool) (*batch.Batch, []byte) {
	t.Helper()
	var b *batch.Batch
	switch sig {
	case batch.Traces:
		b = batch.FromTraces(testdata.Traces(2, n/2, first))
	case batch.Metrics:
		b = batch.FromMetrics(testdata.Metrics(2, n/2, first))
	default:
		b = batch.FromLogs(testdata.Logs(2, n/2, first))
	}
	wire, err := b.Clone().Encoded()
	if err != nil {
		t.Fatal(err)
	}
	if encoded {
		if b, err = batch.FromEncoded(sig, wire); err != nil {
			t.Fatal(err)
		}
	}
	return b, wire
}

func seqRange(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
