package otlp

import (
	"bytes"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

// testConfig is the default config on ports chosen by the system.
func testConfig() *Config {
	cfg := NewConfig()
	cfg.Protocols.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Protocols.HTTP.Endpoint = "127.0.0.1:0"
	return cfg
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckReceiver(t, NewFactory(), testConfig())
	cfg := testConfig()
	cfg.Protocols.HTTP = nil
	componenttest.CheckReceiver(t, NewFactory(), cfg)
	cfg = testConfig()
	cfg.Protocols.GRPC = nil
	componenttest.CheckReceiver(t, NewFactory(), cfg)
}

// sinks is one Sink per signal.
type sinks [batch.Logs + 1]*componenttest.Sink

func newSinks(signals ...batch.Signal) (*sinks, map[batch.Signal]component.Consumer) {
	var s sinks
	next := map[batch.Signal]component.Consumer{}
	for _, sig := range signals {
		s[sig] = &componenttest.Sink{}
		next[sig] = s[sig]
	}
	return &s, next
}

// start creates and starts a receiver and stops it when the test ends.
func start(t testing.TB, cfg *Config, next map[batch.Signal]component.Consumer) *otlp {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	c, err := NewFactory().Create(set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	r := c.(*otlp)
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Test payloads: independent pdata values per signal, their protobuf and JSON encodings.
type payload struct {
	sig   batch.Signal
	items int
	proto []byte // the Export…ServiceRequest as pdata encodes it
	json  []byte
}

func payloadFor(t testing.TB, sig batch.Signal, first int) payload {
	t.Helper()
	var (
		p   = payload{sig: sig}
		err error
	)
	switch sig {
	case batch.Traces:
		req := ptraceotlp.NewExportRequestFromTraces(testdata.Traces(2, 5, first))
		p.items = req.Traces().SpanCount()
		p.proto, err = req.MarshalProto()
		if err == nil {
			p.json, err = req.MarshalJSON()
		}
	case batch.Metrics:
		req := pmetricotlp.NewExportRequestFromMetrics(testdata.Metrics(2, 5, first))
		p.items = req.Metrics().DataPointCount()
		p.proto, err = req.MarshalProto()
		if err == nil {
			p.json, err = req.MarshalJSON()
		}
	case batch.Logs:
		req := plogotlp.NewExportRequestFromLogs(testdata.Logs(2, 5, first))
		p.items = req.Logs().LogRecordCount()
		p.proto, err = req.MarshalProto()
		if err == nil {
			p.json, err = req.MarshalJSON()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// exportGRPC sends p with pdata's own gRPC client, an encoder independent of the receiver.
func exportGRPC(ctx context.Context, conn *grpc.ClientConn, p payload, opts ...grpc.CallOption) error {
	switch p.sig {
	case batch.Traces:
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(p.proto); err != nil {
			return err
		}
		_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, req, opts...)
		return err
	case batch.Metrics:
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(p.proto); err != nil {
			return err
		}
		_, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, req, opts...)
		return err
	default:
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(p.proto); err != nil {
			return err
		}
		_, err := plogotlp.NewGRPCClient(conn).Export(ctx, req, opts...)
		return err
	}
}

// decoded re-encodes what the batch holds after decoding it, to compare with the payload.
func decoded(t testing.TB, b *batch.Batch) []byte {
	t.Helper()
	var (
		out []byte
		err error
	)
	switch b.Signal() {
	case batch.Traces:
		var td ptrace.Traces
		if td, err = b.Traces(); err == nil {
			out, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		}
	case batch.Metrics:
		var md pmetric.Metrics
		if md, err = b.Metrics(); err == nil {
			out, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		}
	case batch.Logs:
		var ld plog.Logs
		if ld, err = b.Logs(); err == nil {
			out, err = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		}
	}
	if err != nil {
		t.Fatalf("decode the received %s: %v", b.Signal(), err)
	}
	return out
}

// checkLast asserts that the sink got exactly n batches and the last one carries p; passThrough
// asks that it is still the encoded request, never decoded.
func checkLast(t *testing.T, s *componenttest.Sink, n int, p payload, passThrough bool) {
	t.Helper()
	bs := s.Batches()
	if len(bs) != n {
		t.Fatalf("sink has %d batches, want %d", len(bs), n)
	}
	b := bs[n-1]
	if b.Signal() != p.sig || b.Items() != p.items {
		t.Fatalf("got %s with %d items, want %s with %d", b.Signal(), b.Items(), p.sig, p.items)
	}
	if passThrough && (!b.IsEncoded() || b.IsDecoded()) {
		t.Fatalf("protobuf request: batch encoded %v decoded %v, want the bytes as received and nothing decoded",
			b.IsEncoded(), b.IsDecoded())
	}
	if got := decoded(t, b); !bytes.Equal(got, p.proto) {
		t.Fatalf("received %s differ from what was sent", p.sig)
	}
}

func TestGRPCRoundTrip(t *testing.T) {
	s, next := newSinks(batch.Signals...)
	r := start(t, testConfig(), next)
	conn := dial(t, r.GRPCAddr())
	for _, sig := range batch.Signals {
		for i, compressor := range []string{"", "gzip", otlpgrpc.ZstdName} {
			t.Run(fmt.Sprintf("%s/%s", sig, compressor), func(t *testing.T) {
				p := payloadFor(t, sig, 100*i)
				var opts []grpc.CallOption
				if compressor != "" {
					opts = append(opts, grpc.UseCompressor(compressor))
				}
				if err := exportGRPC(t.Context(), conn, p, opts...); err != nil {
					t.Fatal(err)
				}
				checkLast(t, s[sig], i+1, p, true)
			})
		}
	}
}

// compress encodes body with an encoder independent of the receiver's decoders.
func compress(t testing.TB, encoding string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch encoding {
	case "", "identity":
		return body
	case "gzip":
		w = stdgzip.NewWriter(&buf)
	case "deflate":
		w = stdzlib.NewWriter(&buf)
	case "zstd":
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = enc
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

type httpReq struct {
	method, path, contentType, encoding, auth string
	body                                      io.Reader
}

func do(t testing.TB, addr string, hr httpReq) (*http.Response, []byte) {
	t.Helper()
	if hr.method == "" {
		hr.method = http.MethodPost
	}
	req, err := http.NewRequest(hr.method, "http://"+addr+hr.path, hr.body)
	if err != nil {
		t.Fatal(err)
	}
	if hr.contentType != "" {
		req.Header.Set("Content-Type", hr.contentType)
	}
	if hr.encoding != "" {
		req.Header.Set("Content-Encoding", hr.encoding)
	}
	if hr.auth != "" {
		req.Header.Set("Authorization", hr.auth)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

var paths = map[batch.Signal]string{batch.Traces: "/v1/traces", batch.Metrics: "/v1/metrics", batch.Logs: "/v1/logs"}

func TestHTTPRoundTrip(t *testing.T) {
	s, next := newSinks(batch.Signals...)
	r := start(t, testConfig(), next)
	type sent struct {
		b *batch.Batch
		p payload
	}
	var all []sent
	for _, sig := range batch.Signals {
		n := 0
		for _, ct := range []string{contentTypeProto, contentTypeJSON} {
			for _, encoding := range []string{"", "identity", "gzip", "zstd", "deflate"} {
				n++
				t.Run(fmt.Sprintf("%s/%s/%s", sig, ct, encoding), func(t *testing.T) {
					p := payloadFor(t, sig, 1000*n)
					body := p.proto
					if ct == contentTypeJSON {
						body = p.json
					}
					resp, out := do(t, r.HTTPAddr(), httpReq{
						path: paths[sig], contentType: ct, encoding: encoding,
						body: bytes.NewReader(compress(t, encoding, body)),
					})
					if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
						t.Fatalf("got %s (%s): %s", resp.Status, resp.Header.Get("Content-Type"), out)
					}
					if rejected, msg := partialOf(t, sig, ct, out); rejected != 0 || msg != "" {
						t.Fatalf("response body %q, want a plain success", out)
					}
					checkLast(t, s[sig], n, p, ct == contentTypeProto)
					all = append(all, sent{s[sig].Batches()[n-1], p})
				})
			}
		}
	}
	// Read buffers are pooled and reused; what reached the pipeline must not have changed since.
	for _, x := range all {
		if !bytes.Equal(decoded(t, x.b), x.p.proto) {
			t.Fatalf("a %s batch changed after later requests reused the read buffer", x.p.sig)
		}
	}
}

func TestHTTPChunkedBody(t *testing.T) {
	s, next := newSinks(batch.Traces)
	r := start(t, testConfig(), next)
	p := payloadFor(t, batch.Traces, 0)
	// io.MultiReader hides the length, so the client sends the body chunked.
	resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: "application/x-protobuf; charset=binary",
		body: io.MultiReader(bytes.NewReader(p.proto))})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %s: %s", resp.Status, out)
	}
	checkLast(t, s[batch.Traces], 1, p, true)
}

func rejected(r *otlp, protocol, reason string) int {
	return int(testutil.ToFloat64(r.rejected.WithLabelValues(protocol, reason)))
}

// rpcStatus decodes a google.rpc.Status response body.
func rpcStatus(t *testing.T, contentType string, body []byte) *spb.Status {
	t.Helper()
	st := &spb.Status{}
	var err error
	if contentType == contentTypeJSON {
		err = protojson.Unmarshal(body, st)
	} else {
		err = proto.Unmarshal(body, st)
	}
	if err != nil {
		t.Fatalf("response body %q is not a %s google.rpc.Status: %v", body, contentType, err)
	}
	return st
}

func TestMalformed(t *testing.T) {
	s, next := newSinks(batch.Signals...)
	r := start(t, testConfig(), next)
	garbage := []byte{0x0a, 0xff, 0xff, 0x01} // field 1, length far beyond the end

	conn := dial(t, r.GRPCAddr())
	for i, sig := range batch.Signals {
		err := conn.Invoke(t.Context(), otlpgrpc.Method(sig), &otlpgrpc.Raw{Bytes: garbage}, &otlpgrpc.Raw{},
			grpc.ForceCodecV2(otlpgrpc.Codec{}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("%s: got %v, want InvalidArgument", sig, err)
		}
		if got := rejected(r, "grpc", reasonMalformed); got != i+1 {
			t.Fatalf("grpc malformed count %d, want %d", got, i+1)
		}
	}

	f := func(ct, encoding string, body []byte) {
		t.Helper()
		before := rejected(r, "http", reasonMalformed)
		resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/metrics", contentType: ct, encoding: encoding, body: bytes.NewReader(body)})
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != ct {
			t.Fatalf("%s %s %q: got %s (%s), want 400", ct, encoding, body, resp.Status, resp.Header.Get("Content-Type"))
		}
		if st := rpcStatus(t, ct, out); st.Code != int32(codes.InvalidArgument) || st.Message == "" {
			t.Fatalf("status %v, want code 3 with a message", st)
		}
		if got := rejected(r, "http", reasonMalformed); got != before+1 {
			t.Fatalf("http malformed count %d, want %d", got, before+1)
		}
	}
	f(contentTypeProto, "", garbage)
	f(contentTypeProto, "gzip", compress(t, "gzip", garbage))
	f(contentTypeProto, "gzip", garbage) // not gzip at all
	f(contentTypeProto, "zstd", garbage)
	f(contentTypeProto, "deflate", garbage)
	f(contentTypeJSON, "", []byte(`{"resourceMetrics": [`))
	f(contentTypeJSON, "", []byte(`not json`))
	f(contentTypeJSON, "zstd", compress(t, "zstd", []byte(`{"resourceMetrics": 7}`)))

	// The JSON error body is what OTLP clients parse: {"code":3,"message":"…"}.
	_, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/logs", contentType: contentTypeJSON, body: strings.NewReader("[")})
	if !bytes.Contains(out, []byte(`"code":3`)) && !bytes.Contains(out, []byte(`"code": 3`)) {
		t.Fatalf("JSON status body %s", out)
	}

	for _, sig := range batch.Signals {
		if n := len(s[sig].Batches()); n != 0 {
			t.Fatalf("%s sink got %d batches from malformed requests", sig, n)
		}
	}
}

// TestAttributesPerItem: a span with max_attributes_per_item attributes goes through over gRPC,
// OTLP/HTTP protobuf and JSON; one more is refused as invalid, counted as over_limit, with a
// message naming the span, and nothing reaches the pipeline.
func TestAttributesPerItem(t *testing.T) {
	s, next := newSinks(batch.Traces)
	cfg := testConfig()
	cfg.MaxAttributesPerItem = 4
	r := start(t, cfg, next)
	traces := func(n int) ptraceotlp.ExportRequest {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("checkout")
		for i := range n {
			sp.Attributes().PutInt(fmt.Sprint("attr.", i), int64(i))
		}
		return ptraceotlp.NewExportRequestFromTraces(td)
	}
	const want = "resource 0: span 0: more than 4 attributes (max_attributes_per_item)"
	conn := dial(t, r.GRPCAddr())
	client := ptraceotlp.NewGRPCClient(conn)
	if _, err := client.Export(t.Context(), traces(4)); err != nil {
		t.Fatalf("gRPC at the limit: %v", err)
	}
	_, err := client.Export(t.Context(), traces(5))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) {
		t.Fatalf("gRPC over the limit: %v, want InvalidArgument with %q", err, want)
	}
	for _, ct := range []string{contentTypeProto, contentTypeJSON} {
		body := func(n int) []byte {
			req := traces(n)
			b, err := req.MarshalProto()
			if ct == contentTypeJSON {
				b, err = req.MarshalJSON()
			}
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: ct, body: bytes.NewReader(body(4))}); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s at the limit: %s %q", ct, resp.Status, out)
		}
		resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: ct, body: bytes.NewReader(body(5))})
		if st := rpcStatus(t, ct, out); resp.StatusCode != http.StatusBadRequest || st.Code != int32(codes.InvalidArgument) || !strings.Contains(st.Message, want) {
			t.Fatalf("%s over the limit: %s %v, want 400 with %q", ct, resp.Status, st, want)
		}
	}
	if got := len(s[batch.Traces].Batches()); got != 3 {
		t.Errorf("%d batches reached the pipeline, want the 3 at the limit", got)
	}
	if g, h := rejected(r, "grpc", reasonOverLimit), rejected(r, "http", reasonOverLimit); g != 1 || h != 2 {
		t.Errorf("over_limit counted %d (grpc) and %d (http), want 1 and 2", g, h)
	}
	if rejected(r, "grpc", reasonMalformed)+rejected(r, "http", reasonMalformed) != 0 {
		t.Error("an over-limit request was counted as malformed")
	}
	bad := testConfig()
	bad.MaxAttributesPerItem = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "max_attributes_per_item: must be > 0") {
		t.Errorf("validate: %v", err)
	}
}

// TestAttributeBytesLimit: the receiver holds requests to max_attribute_bytes (the counting
// itself is batch.TestAttributeBytes): a span whose attribute is one byte over is refused as
// invalid, naming it.
func TestAttributeBytesLimit(t *testing.T) {
	_, next := newSinks(batch.Traces)
	cfg := testConfig()
	cfg.MaxAttributeBytes = 64
	r := start(t, cfg, next)
	client := ptraceotlp.NewGRPCClient(dial(t, r.GRPCAddr()))
	span := func(valueBytes int) ptraceotlp.ExportRequest {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.Attributes().PutStr("exception.stacktrace", strings.Repeat("x", valueBytes)) // a 20-byte key
		return ptraceotlp.NewExportRequestFromTraces(td)
	}
	if _, err := client.Export(t.Context(), span(44)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	const want = `resource 0: span 0: attribute "exception.stacktrace" of 65 bytes, over 64 (max_attribute_bytes)`
	if _, err := client.Export(t.Context(), span(45)); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) {
		t.Fatalf("one byte over: %v, want InvalidArgument with %q", err, want)
	}
	if got := rejected(r, "grpc", reasonOverLimit); got != 1 {
		t.Errorf("over_limit counted %d, want 1", got)
	}
}

func TestTooLarge(t *testing.T) {
	s, next := newSinks(batch.Traces)
	cfg := testConfig()
	cfg.Protocols.GRPC.MaxRecvMsgSizeMiB = 1
	cfg.Protocols.HTTP.MaxRequestBodySize = 1 << 20
	r := start(t, cfg, next)

	// A valid request just over 1 MiB: an unknown field 99 of 1 MiB. Protobuf skips unknown
	// fields, so only the size makes it fail.
	big := protowireBytesField(99, bytes.Repeat([]byte{'a'}, 1<<20))
	conn := dial(t, r.GRPCAddr())
	for i, compressor := range []string{"", "gzip", otlpgrpc.ZstdName} {
		opts := []grpc.CallOption{grpc.ForceCodecV2(otlpgrpc.Codec{})}
		if compressor != "" {
			// Compressed, the message is tiny: the limit must hold after decompression too.
			opts = append(opts, grpc.UseCompressor(compressor))
		}
		err := conn.Invoke(t.Context(), otlpgrpc.TracesMethod, &otlpgrpc.Raw{Bytes: big}, &otlpgrpc.Raw{}, opts...)
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("grpc %q: got %v, want ResourceExhausted", compressor, err)
		}
		// gRPC may answer the client before the handler has seen the error (the transport refuses
		// the oversized frame itself), so the count can trail the answer: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		for rejected(r, "grpc", reasonTooLarge) < i+1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := rejected(r, "grpc", reasonTooLarge); got != i+1 {
			t.Fatalf("grpc too_large count %d, want %d (err %v)", got, i+1, err)
		}
	}

	f := func(encoding string, body io.Reader) {
		t.Helper()
		before := rejected(r, "http", reasonTooLarge)
		resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, encoding: encoding, body: body})
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: got %s, want 413", encoding, resp.Status)
		}
		if st := rpcStatus(t, contentTypeProto, out); st.Message == "" {
			t.Fatalf("413 without a status message")
		}
		if got := rejected(r, "http", reasonTooLarge); got != before+1 {
			t.Fatalf("http too_large count %d, want %d", got, before+1)
		}
	}
	f("", bytes.NewReader(big))                 // declared too large: refused before reading
	f("", io.MultiReader(bytes.NewReader(big))) // chunked: cut off while reading
	// Zip bombs: 16 MiB of zeros is a few KiB compressed, well under the body limit.
	bomb := make([]byte, 16<<20)
	f("gzip", bytes.NewReader(compress(t, "gzip", bomb)))
	f("zstd", bytes.NewReader(compress(t, "zstd", bomb)))
	f("deflate", bytes.NewReader(compress(t, "deflate", bomb)))
	if n := len(s[batch.Traces].Batches()); n != 0 {
		t.Fatalf("sink got %d batches from oversized requests", n)
	}

	// Just under the limit passes.
	ok := protowireBytesField(99, bytes.Repeat([]byte{'a'}, 1<<20-10))
	if resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, encoding: "gzip",
		body: bytes.NewReader(compress(t, "gzip", ok))}); resp.StatusCode != http.StatusOK {
		t.Fatalf("request under the limit: %s %s", resp.Status, out)
	}
	if err := conn.Invoke(t.Context(), otlpgrpc.TracesMethod, &otlpgrpc.Raw{Bytes: ok}, &otlpgrpc.Raw{},
		grpc.ForceCodecV2(otlpgrpc.Codec{})); err != nil {
		t.Fatalf("grpc request under the limit: %v", err)
	}
}

// protowireBytesField encodes one length-delimited field.
func protowireBytesField(num int, v []byte) []byte {
	out := []byte{byte(num<<3 | 2)}
	if num >= 16 {
		out = []byte{byte(num<<3|2) | 0x80, byte(num >> 4)}
	}
	n := len(v)
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(append(out, byte(n)), v...)
}

func TestUnsupported(t *testing.T) {
	// Only traces have a pipeline.
	s, next := newSinks(batch.Traces)
	r := start(t, testConfig(), next)
	p := payloadFor(t, batch.Traces, 0)
	f := func(hr httpReq, want int, reason string) {
		t.Helper()
		before := 0
		if reason != "" {
			before = rejected(r, "http", reason)
		}
		if hr.body == nil {
			hr.body = bytes.NewReader(p.proto)
		}
		resp, out := do(t, r.HTTPAddr(), hr)
		if resp.StatusCode != want {
			t.Fatalf("%+v: got %s %s, want %d", hr, resp.Status, out, want)
		}
		if reason != "" && rejected(r, "http", reason) != before+1 {
			t.Fatalf("%+v: %s not counted", hr, reason)
		}
	}
	f(httpReq{path: "/v1/traces", contentType: "text/plain"}, 415, reasonUnsupportedMedia)
	f(httpReq{path: "/v1/traces"}, 415, reasonUnsupportedMedia)
	f(httpReq{path: "/v1/traces", contentType: "application/protobuf;;"}, 415, reasonUnsupportedMedia)
	f(httpReq{path: "/v1/traces", contentType: contentTypeProto, encoding: "br"}, 415, reasonUnsupportedMedia)
	f(httpReq{path: "/v1/traces", contentType: contentTypeProto, method: http.MethodGet}, 405, reasonMethod)
	f(httpReq{path: "/v1/traces", contentType: contentTypeProto, method: http.MethodPut}, 405, reasonMethod)
	f(httpReq{path: "/v1/metrics", contentType: contentTypeProto}, 404, "")
	f(httpReq{path: "/v1/traces/", contentType: contentTypeProto}, 404, "")
	f(httpReq{path: "/", contentType: contentTypeProto}, 404, "")
	if n := len(s[batch.Traces].Batches()); n != 0 {
		t.Fatalf("sink got %d batches", n)
	}

	conn := dial(t, r.GRPCAddr())
	if err := exportGRPC(t.Context(), conn, payloadFor(t, batch.Logs, 0)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("logs without a pipeline: got %v, want Unimplemented", err)
	}
}

func TestErrorMapping(t *testing.T) {
	s, next := newSinks(batch.Traces, batch.Metrics, batch.Logs)
	r := start(t, testConfig(), next)
	conn := dial(t, r.GRPCAddr())
	type want struct {
		code       codes.Code
		http       int
		retryAfter string        // HTTP Retry-After header
		retryInfo  time.Duration // gRPC RetryInfo detail
		rejected   int64         // partial success
	}
	f := func(consumeErr error, w want) {
		t.Helper()
		for _, sig := range batch.Signals {
			s[sig].Err = consumeErr
			p := payloadFor(t, sig, 0)

			// gRPC, through pdata's client to see how it reads the response.
			var (
				err      error
				rejected int64
				msg      string
			)
			switch sig {
			case batch.Traces:
				req := ptraceotlp.NewExportRequest()
				_ = req.UnmarshalProto(p.proto)
				var resp ptraceotlp.ExportResponse
				if resp, err = ptraceotlp.NewGRPCClient(conn).Export(t.Context(), req); err == nil {
					rejected, msg = resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage()
				}
			case batch.Metrics:
				req := pmetricotlp.NewExportRequest()
				_ = req.UnmarshalProto(p.proto)
				var resp pmetricotlp.ExportResponse
				if resp, err = pmetricotlp.NewGRPCClient(conn).Export(t.Context(), req); err == nil {
					rejected, msg = resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage()
				}
			case batch.Logs:
				req := plogotlp.NewExportRequest()
				_ = req.UnmarshalProto(p.proto)
				var resp plogotlp.ExportResponse
				if resp, err = plogotlp.NewGRPCClient(conn).Export(t.Context(), req); err == nil {
					rejected, msg = resp.PartialSuccess().RejectedLogRecords(), resp.PartialSuccess().ErrorMessage()
				}
			}
			st := status.Convert(err)
			if st.Code() != w.code || rejected != w.rejected || (w.rejected > 0) != (msg != "") {
				t.Fatalf("%v, %s over gRPC: got %v, rejected %d %q; want %v, rejected %d", consumeErr, sig, err, rejected, msg, w.code, w.rejected)
			}
			var info time.Duration
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					info = ri.RetryDelay.AsDuration()
				}
			}
			if info != w.retryInfo {
				t.Fatalf("%v, %s over gRPC: RetryInfo %s, want %s", consumeErr, sig, info, w.retryInfo)
			}

			// HTTP, in both encodings.
			for _, ct := range []string{contentTypeProto, contentTypeJSON} {
				body := p.proto
				if ct == contentTypeJSON {
					body = p.json
				}
				resp, out := do(t, r.HTTPAddr(), httpReq{path: paths[sig], contentType: ct, body: bytes.NewReader(body)})
				if resp.StatusCode != w.http || resp.Header.Get("Retry-After") != w.retryAfter || resp.Header.Get("Content-Type") != ct {
					t.Fatalf("%v, %s over HTTP %s: got %s, Retry-After %q, type %q; want %d, %q", consumeErr, sig, ct,
						resp.Status, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), w.http, w.retryAfter)
				}
				if w.http != http.StatusOK {
					if st := rpcStatus(t, ct, out); st.Code != int32(w.code) || st.Message == "" {
						t.Fatalf("%v, %s over HTTP %s: status %v, want code %d", consumeErr, sig, ct, st, w.code)
					}
					continue
				}
				rejected, msg = partialOf(t, sig, ct, out)
				if rejected != w.rejected || (w.rejected > 0) != (msg != "") {
					t.Fatalf("%v, %s over HTTP %s: rejected %d %q, want %d", consumeErr, sig, ct, rejected, msg, w.rejected)
				}
			}
		}
	}
	f(nil, want{code: codes.OK, http: 200})
	f(&consumererror.Partial{Rejected: 3, Message: "3 spans too old"}, want{code: codes.OK, http: 200, rejected: 3})
	f(fmt.Errorf("wrapped: %w", &consumererror.Partial{Rejected: 1, Message: "x"}), want{code: codes.OK, http: 200, rejected: 1})
	f(consumererror.NewPermanent(errors.New("bad data")), want{code: codes.InvalidArgument, http: 400})
	f(consumererror.NewRetryable(errors.New("queue full"), 1500*time.Millisecond),
		want{code: codes.Unavailable, http: 503, retryAfter: "2", retryInfo: 1500 * time.Millisecond})
	f(consumererror.NewRetryable(errors.New("busy"), 0), want{code: codes.Unavailable, http: 503})
	f(fmt.Errorf("exporter otlp: %w", consumererror.NewBackpressure(errors.New("sending queue is full"), time.Second)),
		want{code: codes.ResourceExhausted, http: 429, retryAfter: "1", retryInfo: time.Second})
	f(errors.New("something broke"), want{code: codes.Unavailable, http: 503})
}

// partialOf decodes an HTTP Export…ServiceResponse body and returns its partial_success.
func partialOf(t *testing.T, sig batch.Signal, ct string, body []byte) (int64, string) {
	t.Helper()
	unmarshal := func(r interface {
		UnmarshalProto([]byte) error
		UnmarshalJSON([]byte) error
	}) {
		t.Helper()
		var err error
		if ct == contentTypeJSON {
			err = r.UnmarshalJSON(body)
		} else {
			err = r.UnmarshalProto(body)
		}
		if err != nil {
			t.Fatalf("response body %q is not an Export…ServiceResponse: %v", body, err)
		}
	}
	switch sig {
	case batch.Traces:
		r := ptraceotlp.NewExportResponse()
		unmarshal(r)
		return r.PartialSuccess().RejectedSpans(), r.PartialSuccess().ErrorMessage()
	case batch.Metrics:
		r := pmetricotlp.NewExportResponse()
		unmarshal(r)
		return r.PartialSuccess().RejectedDataPoints(), r.PartialSuccess().ErrorMessage()
	default:
		r := plogotlp.NewExportResponse()
		unmarshal(r)
		return r.PartialSuccess().RejectedLogRecords(), r.PartialSuccess().ErrorMessage()
	}
}

func TestBearerAuth(t *testing.T) {
	s, next := newSinks(batch.Traces)
	cfg := testConfig()
	cfg.Protocols.GRPC.Auth = &server.Auth{BearerToken: "t0ken"}
	cfg.Protocols.HTTP.Auth = &server.Auth{BearerToken: "t0ken"}
	r := start(t, cfg, next)
	p := payloadFor(t, batch.Traces, 0)

	conn := dial(t, r.GRPCAddr())
	if err := exportGRPC(t.Context(), conn, p); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without a token: got %v, want Unauthenticated", err)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer wrong")
	if err := exportGRPC(ctx, conn, p); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with a wrong token: got %v, want Unauthenticated", err)
	}
	ctx = metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer t0ken")
	if err := exportGRPC(ctx, conn, p); err != nil {
		t.Fatalf("gRPC with the token: %v", err)
	}
	if got := rejected(r, "grpc", reasonUnauthenticated); got != 2 {
		t.Fatalf("grpc unauthenticated count %d, want 2", got)
	}

	resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, body: bytes.NewReader(p.proto)})
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("HTTP without a token: got %s %v", resp.Status, resp.Header)
	}
	if st := rpcStatus(t, contentTypeProto, out); st.Code != int32(codes.Unauthenticated) {
		t.Fatalf("401 status %v", st)
	}
	resp, out = do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeJSON, auth: "Bearer nope", body: bytes.NewReader(p.json)})
	if resp.StatusCode != http.StatusUnauthorized || bytes.Contains(out, []byte("t0ken")) {
		t.Fatalf("HTTP with a wrong token: got %s %s", resp.Status, out)
	}
	resp, out = do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, auth: "Bearer t0ken", body: bytes.NewReader(p.proto)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP with the token: got %s %s", resp.Status, out)
	}
	if got := rejected(r, "http", reasonUnauthenticated); got != 2 {
		t.Fatalf("http unauthenticated count %d, want 2", got)
	}
	if got := len(s[batch.Traces].Batches()); got != 2 {
		t.Fatalf("sink got %d batches, want the 2 authenticated ones", got)
	}
}

// TestAuthorisation: a token allowed metrics only is refused traces with 403 / PermissionDenied
// (nothing reaches the pipeline); a token with a tenant has it stamped on every resource,
// over whatever the sender wrote.
func TestAuthorisation(t *testing.T) {
	s, next := newSinks(batch.Traces)
	cfg := testConfig()
	a := &server.Auth{Tokens: []server.TokenAuth{
		{Name: "metrics", Token: "m-token", Grant: server.Grant{Signals: []string{"metrics"}}},
		{Name: "team-a", Token: "a-token", Grant: server.Grant{Tenant: "team-a"}},
	}}
	cfg.Protocols.GRPC.Auth, cfg.Protocols.HTTP.Auth = a, a
	r := start(t, cfg, next)
	p := payloadFor(t, batch.Traces, 0)

	conn := dial(t, r.GRPCAddr())
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer m-token")
	if err := exportGRPC(ctx, conn, p); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("gRPC traces with a metrics token: got %v, want PermissionDenied", err)
	}
	resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, auth: "Bearer m-token", body: bytes.NewReader(p.proto)})
	if resp.StatusCode != http.StatusForbidden || rpcStatus(t, contentTypeProto, out).Code != int32(codes.PermissionDenied) || bytes.Contains(out, []byte("m-token")) {
		t.Fatalf("HTTP traces with a metrics token: got %s %s", resp.Status, out)
	}
	if got := rejected(r, "grpc", reasonForbidden) + rejected(r, "http", reasonForbidden); got != 2 {
		t.Fatalf("forbidden count %v, want 2", got)
	}
	if got := len(s[batch.Traces].Batches()); got != 0 {
		t.Fatalf("%d batches reached the pipeline from a forbidden sender", got)
	}

	ctx = metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer a-token")
	if err := exportGRPC(ctx, conn, p); err != nil {
		t.Fatalf("gRPC with the team-a token: %v", err)
	}
	resp, out = do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeJSON, auth: "Bearer a-token", body: bytes.NewReader(p.json)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP with the team-a token: %s %s", resp.Status, out)
	}
	bs := s[batch.Traces].Batches()
	if len(bs) != 2 {
		t.Fatalf("%d batches, want 2", len(bs))
	}
	for _, b := range bs {
		td, err := b.Traces()
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range td.ResourceSpans().All() {
			if v, ok := rs.Resource().Attributes().Get(server.DefaultTenantAttribute); !ok || v.Str() != "team-a" {
				t.Errorf("resource tenant %v, want team-a", rs.Resource().Attributes().AsRaw())
			}
		}
	}
}

func TestStartPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, proto := range []string{"grpc", "http"} {
		cfg := testConfig()
		if proto == "grpc" {
			cfg.Protocols.GRPC.Endpoint = l.Addr().String()
		} else {
			cfg.Protocols.HTTP.Endpoint = l.Addr().String()
		}
		_, next := newSinks(batch.Traces)
		set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
		c, err := NewFactory().Create(set, cfg, next)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Start(t.Context(), component.NopHost{})
		if err == nil || !strings.Contains(err.Error(), "protocols."+proto) || !strings.Contains(err.Error(), l.Addr().String()) {
			t.Fatalf("%s on a taken port: Start returned %v", proto, err)
		}
		// The other listener was released: nothing leaks (goleak) and Shutdown is a no-op.
		if err := c.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// blockingConsumer holds every batch until released, to observe shutdown with requests in flight.
type blockingConsumer struct {
	entered chan struct{}
	release chan struct{}
}

func (c *blockingConsumer) Consume(ctx context.Context, _ *batch.Batch) error {
	c.entered <- struct{}{}
	<-c.release
	return nil
}

func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	c := &blockingConsumer{entered: make(chan struct{}, 2), release: make(chan struct{})}
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	comp, err := NewFactory().Create(set, testConfig(), map[batch.Signal]component.Consumer{batch.Traces: c})
	if err != nil {
		t.Fatal(err)
	}
	r := comp.(*otlp)
	if err := r.Start(t.Context(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	p := payloadFor(t, batch.Traces, 0)
	conn := dial(t, r.GRPCAddr())
	var wg sync.WaitGroup
	results := make(chan string, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		results <- fmt.Sprint("grpc ", status.Code(exportGRPC(context.Background(), conn, p)))
	}()
	go func() {
		defer wg.Done()
		resp, err := http.Post("http://"+r.HTTPAddr()+"/v1/traces", contentTypeProto, bytes.NewReader(p.proto))
		if err != nil {
			results <- "http " + err.Error()
			return
		}
		resp.Body.Close()
		results <- "http " + strconv.Itoa(resp.StatusCode)
	}()
	<-c.entered
	<-c.entered

	stopped := make(chan error, 1)
	go func() { stopped <- r.Shutdown(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while requests were in the pipeline", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(c.release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	got := map[string]bool{}
	for res := range results {
		got[res] = true
	}
	if !got["grpc OK"] || !got["http 200"] {
		t.Fatalf("clients got %v, want both answered with success", got)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestShutdownDeadline(t *testing.T) {
	c := &blockingConsumer{entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(c.release)
	cfg := testConfig()
	cfg.Protocols.HTTP = nil
	set := component.NopSettings(component.KindReceiver, component.ID{Type: Type})
	comp, err := NewFactory().Create(set, cfg, map[batch.Signal]component.Consumer{batch.Traces: c})
	if err != nil {
		t.Fatal(err)
	}
	r := comp.(*otlp)
	if err := r.Start(t.Context(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	conn := dial(t, r.GRPCAddr())
	done := make(chan error, 1)
	go func() { done <- exportGRPC(context.Background(), conn, payloadFor(t, batch.Traces, 0)) }()
	<-c.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown past its deadline returned no error")
	}
	if err := <-done; status.Code(err) != codes.Unavailable {
		t.Fatalf("client of a request cut by Shutdown: got %v, want Unavailable", err)
	}
}

// TestReadmeTryIt posts the README's curl example, so that the documented command keeps working.
func TestReadmeTryIt(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(readme, []byte("-d '"))
	body, _, ok2 := bytes.Cut(rest, []byte("'\n```"))
	if !ok || !ok2 {
		t.Fatal("README.md has no curl -d '…' example")
	}
	s, next := newSinks(batch.Traces)
	r := start(t, testConfig(), next)
	resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeJSON, body: bytes.NewReader(body)})
	if resp.StatusCode != http.StatusOK || string(out) != `{"partialSuccess":{}}` || s[batch.Traces].Items() != 1 {
		t.Fatalf("got %s %s and %d spans; want 200, the README's answer and 1 span", resp.Status, out, s[batch.Traces].Items())
	}
}
