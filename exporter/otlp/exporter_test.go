package otlp

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/testdata"
)

// unusedAddr returns a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	cfg.Client.Endpoint = unusedAddr(t)
	cfg.Client.TLS.Insecure = true
	componenttest.CheckExporter(t, NewFactory(), cfg)
}

func TestConfig(t *testing.T) {
	if err := NewConfig().Validate(); err == nil || !strings.Contains(err.Error(), "endpoint: must be set") {
		t.Fatalf("default config without endpoint: %v", err)
	}
	decode := func(file string) (*Config, error) {
		t.Helper()
		raw := readFile(t, file)
		var doc struct {
			Exporters map[string]yaml.Node `yaml:"exporters"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		node := doc.Exporters["otlp"]
		cfg := NewConfig()
		// Re-encode the node and decode strictly, as the config loader does.
		b, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, componenttest.DecodeConfig(b, cfg)
	}
	cfg, err := decode("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Client.Endpoint != "jaeger-collector:4317" || cfg.Client.Compression != client.Zstd ||
		cfg.Client.Headers["authorization"].Value() != "Bearer abc" || cfg.Sender.Timeout != 10*time.Second ||
		cfg.Sender.Retry.InitialInterval != time.Second || cfg.Sender.Retry.MaxElapsedTime != 0 ||
		cfg.Sender.Queue.NumConsumers != 4 || cfg.Sender.Queue.QueueSize != 5000 ||
		!cfg.Sender.Queue.Persistent || cfg.Sender.Queue.Directory != "/var/lib/vigil/queue" ||
		!cfg.Sender.Retry.Enabled || cfg.Sender.Retry.Multiplier != 1.5 || cfg.Client.TLS.CAFile != "/etc/vigil/ca.pem" {
		t.Fatalf("decoded %+v", cfg)
	}
	_, err = decode("testdata/bad.yaml")
	for _, want := range []string{
		`compression: must be one of none, gzip, zstd; got "brotli"`,
		"sending_queue.queue_size: must be > 0, got 0",
		`sending_queue.when_full: must be block, drop_oldest or drop_newest; got "wait"`,
		"sending_queue.directory: must be set when persistent is true",
		"retry_on_failure.multiplier: must be >= 1",
		"tls.cert_file and key_file",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad.yaml: error %v does not mention %q", err, want)
		}
	}
}

// items returns a batch of n items of sig, decoded or encoded, and its encoded bytes.
func items(t testing.TB, sig batch.Signal, n, first int, encoded bool) (*batch.Batch, []byte) {
	t.Helper()
	var (
		b   *batch.Batch
		err error
	)
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

// TestRoundTrip sends every signal, decoded and encoded, with every compression, to a backend
// built on pdata, and checks items, attributes, bytes, compression and headers.
func TestRoundTrip(t *testing.T) {
	be := &backend{}
	addr := startBackend(t, be)
	for _, comp := range []client.Compression{client.None, client.Gzip, client.Zstd} {
		set, cnt, _ := settings()
		cfg := testConfig(addr)
		cfg.Client.Compression = comp
		cfg.Client.Headers = map[string]secret.String{"X-Tenant": "acme"}
		exp := startExporter(t, set, cfg)
		for _, sig := range batch.Signals {
			for _, encoded := range []bool{false, true} {
				be.mu.Lock()
				be.reqs = nil
				be.mu.Unlock()
				b, wire := items(t, sig, 10, 100, encoded)
				if err := exp.Consume(context.Background(), b); err != nil {
					t.Fatalf("%s %s encoded=%v: %v", comp, sig, encoded, err)
				}
				reqs := be.requests()
				if len(reqs) != 1 {
					t.Fatalf("%s %s: backend got %d requests", comp, sig, len(reqs))
				}
				r := reqs[0]
				if r.sig != sig || !slices.Equal(r.seqs, seqRange(100, 10)) {
					t.Errorf("%s %s: backend got %s items %v", comp, sig, r.sig, r.seqs)
				}
				if !slices.Equal(r.wire, wire) {
					t.Errorf("%s %s encoded=%v: the request differs from the input", comp, sig, encoded)
				}
				wantComp := string(comp)
				if comp == client.None {
					wantComp = ""
				}
				if r.compression != wantComp {
					t.Errorf("%s %s: backend saw grpc-encoding %q", comp, sig, r.compression)
				}
				if got := r.md.Get("x-tenant"); len(got) != 1 || got[0] != "acme" {
					t.Errorf("%s %s: backend saw x-tenant %v", comp, sig, got)
				}
				if ua := r.md.Get("user-agent"); len(ua) == 0 || !strings.HasPrefix(ua[0], client.UserAgent) {
					t.Errorf("%s %s: user-agent %v", comp, sig, ua)
				}
			}
		}
		if cnt.Get(component.Sent) != 60 || cnt.Get(component.Failed)+cnt.Get(component.Dropped) != 0 {
			t.Errorf("%s: counted sent %d, failed %d, dropped %d", comp, cnt.Get(component.Sent),
				cnt.Get(component.Failed), cnt.Get(component.Dropped))
		}
	}
}

// TestPassThrough proves the encoded request goes out byte for byte: the input carries a field
// pdata does not know, which any decode and re-encode would lose.
func TestPassThrough(t *testing.T) {
	sink := &rawSink{keep: true}
	addr := startRawSink(t, sink)
	set, _, _ := settings()
	cfg := testConfig(addr)
	exp := startExporter(t, set, cfg)
	for _, sig := range batch.Signals {
		_, wire := items(t, sig, 4, 0, true)
		in := protowire.AppendVarint(protowire.AppendTag(slices.Clone(wire), 99, protowire.VarintType), 42)
		b, err := batch.FromEncoded(sig, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Consume(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if b.IsDecoded() {
			t.Errorf("%s: the exporter decoded a pass-through batch", sig)
		}
		sink.mu.Lock()
		got := sink.bodies[len(sink.bodies)-1]
		sink.mu.Unlock()
		if !slices.Equal(got, in) {
			t.Errorf("%s: wire bytes differ from the input (%d vs %d bytes)", sig, len(got), len(in))
		}
	}
}

// TestPassThroughPieces sends a batch made of several requests (as the batch processor hands
// them on, unjoined) with each compression: the backend sees the requests laid end to end.
func TestPassThroughPieces(t *testing.T) {
	for _, comp := range []client.Compression{client.None, client.Gzip, client.Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			sink := &rawSink{keep: true}
			addr := startRawSink(t, sink)
			set, _, _ := settings()
			cfg := testConfig(addr)
			cfg.Client.Compression = comp
			exp := startExporter(t, set, cfg)
			for _, sig := range batch.Signals {
				var (
					parts []*batch.Batch
					want  []byte
				)
				for i := range 3 {
					b, wire := items(t, sig, 4, 10*i, true)
					parts = append(parts, b)
					want = append(want, wire...)
				}
				b, err := batch.Concat(parts)
				if err != nil {
					t.Fatal(err)
				}
				if p, _ := b.EncodedParts(); len(p) != 3 {
					t.Fatalf("%s: the concat is in %d pieces, want 3", sig, len(p))
				}
				if err := exp.Consume(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				sink.mu.Lock()
				got := sink.bodies[len(sink.bodies)-1]
				sink.mu.Unlock()
				if !slices.Equal(got, want) {
					t.Errorf("%s: wire bytes differ from the requests laid end to end (%d vs %d bytes)", sig, len(got), len(want))
				}
			}
		})
	}
}

func retryInfoErr(t testing.TB, code codes.Code, delay time.Duration) error {
	st, err := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// TestBackendErrors runs the OTLP/gRPC error table against a real server.
func TestBackendErrors(t *testing.T) {
	type answer struct {
		rejected int64
		msg      string
		err      error
	}
	f := func(name string, answers []answer, wantAttempts int, wantSent, wantFailed, wantDropped int,
		wantErr func(error) bool, minGap time.Duration) {
		t.Helper()
		be := &backend{answer: func(n int) (int64, string, error) {
			a := answers[min(n, len(answers)-1)]
			return a.rejected, a.msg, a.err
		}}
		addr := startBackend(t, be)
		set, cnt, logs := settings()
		cfg := testConfig(addr)
		cfg.Sender.Retry.MaxElapsedTime = time.Second
		exp := startExporter(t, set, cfg)
		b, _ := items(t, batch.Traces, 10, 0, true)
		err := exp.Consume(context.Background(), b)
		if !wantErr(err) {
			t.Errorf("%s: Consume returned %v", name, err)
		}
		reqs := be.requests()
		if len(reqs) != wantAttempts {
			t.Errorf("%s: %d attempts, want %d", name, len(reqs), wantAttempts)
		}
		if len(reqs) >= 2 {
			if gap := reqs[1].at.Sub(reqs[0].at); gap < minGap {
				t.Errorf("%s: retried after %v, want at least %v", name, gap, minGap)
			}
		}
		if s, f, d := cnt.Get(component.Sent), cnt.Get(component.Failed), cnt.Get(component.Dropped); s != wantSent || f != wantFailed || d != wantDropped {
			t.Errorf("%s: sent %d failed %d dropped %d; want %d %d %d\nlogs: %s", name, s, f, d, wantSent, wantFailed, wantDropped, logs)
		}
	}
	ok := answer{}
	isNil := func(err error) bool { return err == nil }
	isPermanent := consumererror.IsPermanent
	isRetryable := func(err error) bool { _, ok := consumererror.RetryAfter(err); return ok }
	isPartial := func(err error) bool { p, ok := consumererror.AsPartial(err); return ok && p.Rejected == 3 }

	f("unavailable then success", []answer{{err: status.Error(codes.Unavailable, "down")}, ok}, 2, 10, 0, 0, isNil, 0)
	f("invalid argument is permanent", []answer{{err: status.Error(codes.InvalidArgument, "bad")}}, 1, 0, 0, 10, isPermanent, 0)
	f("unauthenticated is permanent", []answer{{err: status.Error(codes.Unauthenticated, "who")}}, 1, 0, 0, 10, isPermanent, 0)
	f("resource exhausted with RetryInfo waits then retries",
		[]answer{{err: retryInfoErr(t, codes.ResourceExhausted, 50*time.Millisecond)}, ok}, 2, 10, 0, 0, isNil, 50*time.Millisecond)
	f("resource exhausted without RetryInfo is permanent",
		[]answer{{err: status.Error(codes.ResourceExhausted, "quota")}}, 1, 0, 0, 10, isPermanent, 0)
	f("retries exhausted", []answer{{err: retryInfoErr(t, codes.Unavailable, 400*time.Millisecond)}}, 3, 0, 10, 0, isRetryable, 400*time.Millisecond)
	f("partial success", []answer{{rejected: 3, msg: "spans too old"}}, 1, 7, 0, 3, isPartial, 0)
	f("partial warning", []answer{{msg: "deprecated"}}, 1, 10, 0, 0, func(err error) bool { _, ok := consumererror.AsPartial(err); return ok }, 0)
}

func TestClassify(t *testing.T) {
	f := func(err error, wantRetry bool, wantAfter time.Duration) {
		t.Helper()
		got := classify(err)
		after, retry := consumererror.RetryAfter(got)
		if retry != wantRetry || after != wantAfter || (!retry && !consumererror.IsPermanent(got)) {
			t.Errorf("classify(%v) = %v (retry %v after %v); want retry %v after %v", err, got, retry, after, wantRetry, wantAfter)
		}
		if !errors.Is(got, err) {
			t.Errorf("classify(%v) lost the cause", err)
		}
	}
	for _, c := range []codes.Code{codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss} {
		f(status.Error(c, "x"), true, 0)
		f(retryInfoErr(t, c, 3*time.Second), true, 3*time.Second)
	}
	for _, c := range []codes.Code{codes.Unknown, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.FailedPrecondition, codes.Unimplemented, codes.Internal, codes.Unauthenticated, codes.ResourceExhausted} {
		f(status.Error(c, "x"), false, 0)
	}
	f(retryInfoErr(t, codes.ResourceExhausted, 2*time.Second), true, 2*time.Second)
	f(retryInfoErr(t, codes.ResourceExhausted, -time.Second), true, 0)
	f(errors.New("not a status"), true, 0)
}

func TestPartialSuccess(t *testing.T) {
	tr := ptraceotlp.NewExportResponse()
	tr.PartialSuccess().SetRejectedSpans(4)
	tr.PartialSuccess().SetErrorMessage("too old")
	pb, _ := tr.MarshalProto()
	js, _ := tr.MarshalJSON()
	for _, c := range []struct {
		body []byte
		json bool
	}{{pb, false}, {js, true}} {
		p, err := PartialSuccess(batch.Traces, c.body, c.json)
		if err != nil || p == nil || p.Rejected != 4 || p.Message != "too old" {
			t.Errorf("json=%v: %+v, %v", c.json, p, err)
		}
	}
	mr := pmetricotlp.NewExportResponse()
	mr.PartialSuccess().SetRejectedDataPoints(2)
	mb, _ := mr.MarshalProto()
	if p, _ := PartialSuccess(batch.Metrics, mb, false); p == nil || p.Rejected != 2 {
		t.Errorf("metrics: %+v", p)
	}
	lr := plogotlp.NewExportResponse()
	lr.PartialSuccess().SetRejectedLogRecords(1)
	lb, _ := lr.MarshalJSON()
	if p, _ := PartialSuccess(batch.Logs, lb, true); p == nil || p.Rejected != 1 {
		t.Errorf("logs: %+v", p)
	}
	empty, _ := ptraceotlp.NewExportResponse().MarshalProto()
	if p, err := PartialSuccess(batch.Traces, empty, false); p != nil || err != nil {
		t.Errorf("empty response: %+v, %v", p, err)
	}
	if _, err := PartialSuccess(batch.Traces, []byte{0xff}, false); err == nil {
		t.Error("garbage response accepted")
	}
}

// TestSecretHeader: the header reaches the backend and never the logs, even when sends fail.
func TestSecretHeader(t *testing.T) {
	const token = "Bearer s3cr3t-t0ken"
	be := &backend{answer: func(n int) (int64, string, error) {
		if n%2 == 0 {
			return 0, "", status.Error(codes.Unavailable, "down")
		}
		return 0, "", status.Error(codes.PermissionDenied, "no")
	}}
	addr := startBackend(t, be)
	set, _, logs := settings()
	cfg := testConfig(addr)
	cfg.Client.Headers = map[string]secret.String{"authorization": token}
	exp := startExporter(t, set, cfg)
	b, _ := items(t, batch.Logs, 2, 0, false)
	_ = exp.Consume(context.Background(), b)
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := be.requests()
	if len(reqs) == 0 || reqs[0].md.Get("authorization")[0] != token {
		t.Fatal("the backend did not get the header")
	}
	out := logs.String()
	if !strings.Contains(out, "authorization") || !strings.Contains(out, "PermissionDenied") {
		t.Fatalf("expected start and failure lines in the log:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("secret in logs:\n%s", out)
	}
}

// TestQueued runs with the default queue: Consume returns at once, Shutdown delivers the rest.
func TestQueued(t *testing.T) {
	be := &backend{}
	addr := startBackend(t, be)
	set, cnt, _ := settings()
	cfg := testConfig(addr)
	cfg.Sender.Queue.Enabled = true
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b, _ := items(t, batch.Metrics, 4, i*4, i%2 == 0)
		if err := exp.Consume(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range be.requests() {
		seqs = append(seqs, r.seqs...)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, seqRange(0, 80)) || cnt.Get(component.Sent) != 80 {
		t.Fatalf("backend got %d items, counted %d", len(seqs), cnt.Get(component.Sent))
	}
}

// TestUnreachable: a backend that is not there costs retries, then counts as failed.
func TestUnreachable(t *testing.T) {
	set, cnt, _ := settings()
	cfg := testConfig(unusedAddr(t))
	cfg.Sender.Retry.MaxElapsedTime = 50 * time.Millisecond
	exp := startExporter(t, set, cfg)
	b, _ := items(t, batch.Traces, 2, 0, true)
	err := exp.Consume(context.Background(), b)
	if _, ok := consumererror.RetryAfter(err); !ok || cnt.Get(component.Failed) != 2 {
		t.Fatalf("err %v, failed %d", err, cnt.Get(component.Failed))
	}
}
