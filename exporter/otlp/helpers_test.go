package otlp

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is one request as a backend saw it.
type received struct {
	sig         batch.Signal
	wire        []byte  // the request re-encoded by pdata (pdata server) or as received (raw sink)
	seqs        []int64 // the "seq" attribute of every item, in order
	md          metadata.MD
	compression string
	at          time.Time
}

// backend is a test OTLP server built on pdata's own gRPC services, an implementation
// independent of the exporter's raw codec. answer decides the fate of the n-th request (from 0).
type backend struct {
	mu       sync.Mutex
	reqs     []received
	attempts int
	answer   func(n int) (rejected int64, msg string, err error)
}

func (b *backend) handle(ctx context.Context, sig batch.Signal, wire []byte, seqs []int64) (int64, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.attempts
	b.attempts++
	md, _ := metadata.FromIncomingContext(ctx)
	b.reqs = append(b.reqs, received{sig: sig, wire: wire, seqs: seqs, md: md, compression: compressionOf(ctx), at: time.Now()})
	if b.answer == nil {
		return 0, "", nil
	}
	return b.answer(n)
}

func (b *backend) requests() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.reqs...)
}

type compressionKey struct{}

// stats handler: grpc-encoding is a reserved header that never reaches the metadata, but the
// stats API reports it.
type statsHandler struct{}

func (statsHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, compressionKey{}, new(string))
}
func (statsHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		*ctx.Value(compressionKey{}).(*string) = h.Compression
	}
}
func (statsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (statsHandler) HandleConn(context.Context, stats.ConnStats)                       {}

func compressionOf(ctx context.Context) string {
	if p, ok := ctx.Value(compressionKey{}).(*string); ok {
		return *p
	}
	return ""
}

func seqOf(attrs pcommon.Map) int64 {
	v, _ := attrs.Get("seq")
	return v.Int()
}

type traceService struct {
	ptraceotlp.UnimplementedGRPCServer
	b *backend
}

func (s *traceService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	wire, _ := req.MarshalProto()
	var seqs []int64
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		for _, ss := range rss.At(i).ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				seqs = append(seqs, seqOf(sp.Attributes()))
			}
		}
	}
	rejected, msg, err := s.b.handle(ctx, batch.Traces, wire, seqs)
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	return resp, err
}

type metricService struct {
	pmetricotlp.UnimplementedGRPCServer
	b *backend
}

func (s *metricService) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	wire, _ := req.MarshalProto()
	var seqs []int64
	for _, rm := range req.Metrics().ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Gauge().DataPoints().All() {
					seqs = append(seqs, seqOf(dp.Attributes()))
				}
			}
		}
	}
	rejected, msg, err := s.b.handle(ctx, batch.Metrics, wire, seqs)
	resp := pmetricotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedDataPoints(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	return resp, err
}

type logService struct {
	plogotlp.UnimplementedGRPCServer
	b *backend
}

func (s *logService) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	wire, _ := req.MarshalProto()
	var seqs []int64
	for _, rl := range req.Logs().ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				seqs = append(seqs, seqOf(lr.Attributes()))
			}
		}
	}
	rejected, msg, err := s.b.handle(ctx, batch.Logs, wire, seqs)
	resp := plogotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedLogRecords(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	return resp, err
}

// startBackend serves the three OTLP services on a loopback port and returns the address.
func startBackend(t testing.TB, b *backend) string {
	t.Helper()
	return startBackendAt(t, b, "127.0.0.1:0")
}

// startBackendAt serves the three OTLP services on addr and returns the address.
func startBackendAt(t testing.TB, b *backend, addr string) string {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.StatsHandler(statsHandler{}))
	ptraceotlp.RegisterGRPCServer(srv, &traceService{b: b})
	pmetricotlp.RegisterGRPCServer(srv, &metricService{b: b})
	plogotlp.RegisterGRPCServer(srv, &logService{b: b})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// rawSink accepts any method and keeps the request bytes exactly as they arrived, using the
// same raw codec the exporter uses; it answers with an empty response.
type rawSink struct {
	mu     sync.Mutex
	bodies [][]byte
	keep   bool
	count  int
}

func startRawSink(t testing.TB, s *rawSink) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(otlpgrpc.Codec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var m otlpgrpc.Raw
			if err := stream.RecvMsg(&m); err != nil {
				return err
			}
			s.mu.Lock()
			s.count++
			if s.keep {
				s.bodies = append(s.bodies, m.Bytes)
			}
			s.mu.Unlock()
			return stream.SendMsg(&otlpgrpc.Raw{})
		}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
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

// testConfig talks plaintext to endpoint, without a queue (Consume returns the outcome) and with
// millisecond retries.
func testConfig(endpoint string) *Config {
	c := NewConfig()
	c.Client.Endpoint = endpoint
	c.Client.TLS.Insecure = true
	c.Sender.Queue.Enabled = false
	c.Sender.Retry.InitialInterval = time.Millisecond
	c.Sender.Retry.MaxInterval = 5 * time.Millisecond
	c.Sender.Retry.RandomizationFactor = 0
	c.Sender.Retry.MaxElapsedTime = 10 * time.Second
	return c
}

func startExporter(t testing.TB, set component.Settings, cfg *Config) component.Exporter {
	t.Helper()
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
