package otlphttp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.yaml.in/yaml/v3"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/secret"
)

func TestLifecycle(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	cfg := NewConfig()
	cfg.Client.Endpoint = "http://" + addr
	cfg.Client.TLS.Insecure = true
	componenttest.CheckExporter(t, NewFactory(), cfg)
}

func decodeConfig(t *testing.T, file string) (*Config, error) {
	t.Helper()
	var doc struct {
		Exporters map[string]yaml.Node `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(readFile(t, file), &doc); err != nil {
		t.Fatal(err)
	}
	node := doc.Exporters["otlphttp"]
	out, err := yaml.Marshal(&node)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	return cfg, componenttest.DecodeConfig(out, cfg)
}

func TestConfig(t *testing.T) {
	if err := NewConfig().Validate(); err == nil || !strings.Contains(err.Error(), "endpoint: must be set") {
		t.Fatalf("default config without endpoint: %v", err)
	}
	cfg, err := decodeConfig(t, "testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Client.Endpoint != "https://otlp.example.com:4318" || cfg.Encoding != EncodingJSON ||
		cfg.Client.Compression != client.Zstd || cfg.Sender.Timeout != 10*time.Second ||
		cfg.Client.Headers["x-api-key"].Value() != "k" || cfg.Sender.Queue.QueueSize != 200 {
		t.Fatalf("decoded %+v", cfg)
	}
	if got := cfg.URL(batch.Logs); got != "https://logs.example.com/loki/otlp/v1/logs" {
		t.Errorf("logs URL %q", got)
	}
	if got := cfg.URL(batch.Traces); got != "https://otlp.example.com:4318/v1/traces" {
		t.Errorf("traces URL %q", got)
	}
	_, err = decodeConfig(t, "testdata/bad.yaml")
	for _, want := range []string{
		`encoding: must be proto or json, got "xml"`,
		"metrics_endpoint: must start with http:// or https://",
		"sending_queue.num_consumers: must be > 0",
		"headers.Content-Type: this header is set by the exporter",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad.yaml: error %v does not mention %q", err, want)
		}
	}
}

func TestURL(t *testing.T) {
	f := func(endpoint, traces string, sig batch.Signal, want string) {
		t.Helper()
		c := NewConfig()
		c.Client.Endpoint, c.TracesEndpoint = endpoint, traces
		if got := c.URL(sig); got != want {
			t.Errorf("URL(%q, traces %q, %s) = %q, want %q", endpoint, traces, sig, got, want)
		}
	}
	f("http://c:4318", "", batch.Traces, "http://c:4318/v1/traces")
	f("http://c:4318/", "", batch.Metrics, "http://c:4318/v1/metrics")
	f("https://gw/otlp", "", batch.Logs, "https://gw/otlp/v1/logs")
	f("http://c:4318", "http://t/exact", batch.Traces, "http://t/exact")
	f("", "http://t/exact", batch.Logs, "")
}

// TestRoundTrip sends every signal, decoded and encoded, in both encodings and every
// compression, to a server that decodes with pdata.
func TestRoundTrip(t *testing.T) {
	be := &backend{}
	url := startBackend(t, be)
	for _, enc := range []string{EncodingProto, EncodingJSON} {
		for _, comp := range []client.Compression{client.None, client.Gzip, client.Zstd} {
			set, cnt, _ := settings()
			cfg := testConfig(url + "/")
			cfg.Encoding = enc
			cfg.Client.Compression = comp
			cfg.Client.Headers = map[string]secret.String{"X-Scope-OrgID": "acme"}
			exp := startExporter(t, set, cfg)
			for _, sig := range batch.Signals {
				for _, encoded := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/%s/encoded=%v", enc, comp, sig, encoded)
					be.mu.Lock()
					be.reqs = nil
					be.mu.Unlock()
					b, wire := items(t, sig, 10, 50, encoded)
					if encoded && enc == EncodingProto {
						// A field pdata does not know: it survives only if the bytes pass through.
						wire = protowire.AppendVarint(protowire.AppendTag(wire, 99, protowire.VarintType), 7)
						var err error
						if b, err = batch.FromEncoded(sig, wire); err != nil {
							t.Fatal(err)
						}
					}
					if err := exp.Consume(context.Background(), b); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					reqs := be.requests()
					if len(reqs) != 1 {
						t.Fatalf("%s: %d requests", name, len(reqs))
					}
					r := reqs[0]
					if r.path != "/v1/"+sig.String() || !r.decoded || !slices.Equal(r.seqs, seqRange(50, 10)) {
						t.Errorf("%s: path %s decoded %v seqs %v", name, r.path, r.decoded, r.seqs)
					}
					wantCT := map[string]string{EncodingProto: "application/x-protobuf", EncodingJSON: "application/json"}[enc]
					if r.header.Get("Content-Type") != wantCT {
						t.Errorf("%s: Content-Type %q", name, r.header.Get("Content-Type"))
					}
					wantCE := string(comp)
					if comp.IsNone() {
						wantCE = ""
					}
					if r.header.Get("Content-Encoding") != wantCE {
						t.Errorf("%s: Content-Encoding %q", name, r.header.Get("Content-Encoding"))
					}
					if r.header.Get("X-Scope-OrgID") != "acme" || r.header.Get("User-Agent") != client.UserAgent {
						t.Errorf("%s: headers %v", name, r.header)
					}
					if enc == EncodingProto && !bytes.Equal(r.body, wire) {
						t.Errorf("%s: body differs from the input", name)
					}
					if enc == EncodingProto && encoded && b.IsDecoded() {
						t.Errorf("%s: the exporter decoded a pass-through batch", name)
					}
				}
			}
			if cnt.Get(component.Sent) != 60 {
				t.Errorf("%s/%s: counted %d sent", enc, comp, cnt.Get(component.Sent))
			}
		}
	}
}

func statusBody(t *testing.T, msg string, json bool) []byte {
	t.Helper()
	st := &spb.Status{Code: 3, Message: msg}
	var (
		b   []byte
		err error
	)
	if json {
		b, err = protojson.Marshal(st)
	} else {
		b, err = proto.Marshal(st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOutcome is the OTLP/HTTP response table.
func TestOutcome(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	partialProto, _ := func() ([]byte, error) {
		r := ptraceotlp.NewExportResponse()
		r.PartialSuccess().SetRejectedSpans(2)
		r.PartialSuccess().SetErrorMessage("too old")
		return r.MarshalProto()
	}()
	partialJSON, _ := func() ([]byte, error) {
		r := ptraceotlp.NewExportResponse()
		r.PartialSuccess().SetRejectedSpans(5)
		return r.MarshalJSON()
	}()
	const (
		ok = iota
		partial
		retry
		permanent
	)
	f := func(name string, code int, hdr map[string]string, body []byte, sentJSON bool, want int, after time.Duration, msg string) {
		t.Helper()
		resp := &http.Response{StatusCode: code, Header: http.Header{}}
		for k, v := range hdr {
			resp.Header.Set(k, v)
		}
		err := outcome(batch.Traces, resp, body, sentJSON, now)
		got := ok
		if _, isPartial := consumererror.AsPartial(err); isPartial {
			got = partial
		} else if consumererror.IsPermanent(err) {
			got = permanent
		} else if d, isRetry := consumererror.RetryAfter(err); isRetry {
			got = retry
			if d != after {
				t.Errorf("%s: retry after %v, want %v", name, d, after)
			}
		} else if err != nil {
			t.Errorf("%s: unclassified error %v", name, err)
		}
		if got != want {
			t.Errorf("%s: outcome %d (%v), want %d", name, got, err, want)
		}
		if msg != "" && (err == nil || !strings.Contains(err.Error(), msg)) {
			t.Errorf("%s: error %v does not carry %q", name, err, msg)
		}
	}
	pb := map[string]string{"Content-Type": "application/x-protobuf"}
	js := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	f("200 empty", 200, nil, nil, false, ok, 0, "")
	f("202 empty", 202, nil, nil, false, ok, 0, "")
	f("200 partial proto", 200, pb, partialProto, false, partial, 0, "too old")
	f("200 partial json", 200, js, partialJSON, false, partial, 0, "5 items")
	f("200 partial, no content type, as sent", 200, nil, partialJSON, true, partial, 0, "")
	f("200 garbage body still ok", 200, pb, []byte{0xff, 0xff}, false, ok, 0, "")
	f("429 seconds", 429, map[string]string{"Retry-After": "7"}, nil, false, retry, 7*time.Second, "HTTP 429")
	f("503 http-date", 503, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, nil, false, retry, 90*time.Second, "")
	f("502 no header", 502, nil, nil, false, retry, 0, "")
	f("504 past date", 504, map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, nil, false, retry, 0, "")
	f("429 nonsense header", 429, map[string]string{"Retry-After": "soon"}, nil, false, retry, 0, "")
	f("429 huge header", 429, map[string]string{"Retry-After": "99999999999999999"}, nil, false, retry, client.MaxRetryAfter, "")
	f("400 status proto", 400, pb, statusBody(t, "span id is empty", false), false, permanent, 0, "span id is empty")
	f("400 status json", 400, js, statusBody(t, "bad json", true), true, permanent, 0, "bad json")
	f("401", 401, map[string]string{"Content-Type": "text/plain"}, []byte("token expired\n"), false, permanent, 0, "token expired")
	f("404", 404, nil, nil, false, permanent, 0, "HTTP 404")
	f("413", 413, nil, nil, false, permanent, 0, "")
	f("500 is permanent per spec", 500, nil, []byte("oops"), false, permanent, 0, "oops")
	f("301 unfollowed", 301, nil, nil, false, permanent, 0, "")
}

func TestCleanMessage(t *testing.T) {
	long := strings.Repeat("é", 400)
	got := clean(long)
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("long message cut badly: %d bytes", len(got))
	}
	if got := clean("line one\nline two\x00\xff"); got != "line one line two ?" {
		t.Errorf("clean = %q", got)
	}
}

// TestRetryAfterTiming checks on a fake clock that the exporter waits as long as the server asks.
func TestRetryAfterTiming(t *testing.T) {
	f := func(name string, header func() string, want time.Duration) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			be := &backend{answer: func(n int) reply {
				if n == 0 {
					return reply{status: 429, header: map[string]string{"Retry-After": header()}}
				}
				return reply{status: 200}
			}}
			set, cnt, _ := settings()
			exp := startExporter(t, set, testConfig("http://backend.invalid"))
			exp.client.Store(&http.Client{Transport: handlerTransport{be}})
			b, _ := items(t, batch.Logs, 2, 0, true)
			if err := exp.Consume(context.Background(), b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			reqs := be.requests()
			if len(reqs) != 2 || reqs[1].at.Sub(reqs[0].at) != want {
				t.Fatalf("%s: %d requests; gap %v, want %v", name, len(reqs), reqs[len(reqs)-1].at.Sub(reqs[0].at), want)
			}
			if cnt.Get(component.Sent) != 2 {
				t.Fatalf("%s: sent %d", name, cnt.Get(component.Sent))
			}
		})
	}
	f("seconds", func() string { return "3" }, 3*time.Second)
	f("http-date", func() string { return time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat) }, 5*time.Second)
}

// TestBackendErrors runs the response table against a real server.
func TestBackendErrors(t *testing.T) {
	const many = -1 // retried until max_elapsed_time: at least three attempts
	f := func(name string, replies []reply, encoding string, wantAttempts, wantSent, wantFailed, wantDropped int, wantErr string) {
		t.Helper()
		be := &backend{answer: func(n int) reply { return replies[min(n, len(replies)-1)] }}
		url := startBackend(t, be)
		set, cnt, logs := settings()
		cfg := testConfig(url)
		cfg.Encoding = encoding
		cfg.Sender.Retry.MaxElapsedTime = 200 * time.Millisecond
		exp := startExporter(t, set, cfg)
		b, _ := items(t, batch.Traces, 10, 0, true)
		err := exp.Consume(context.Background(), b)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: Consume returned %v, want %q", name, err, wantErr)
		}
		if n := len(be.requests()); n != wantAttempts && (wantAttempts != many || n < 3) {
			t.Errorf("%s: %d attempts, want %d", name, n, wantAttempts)
		}
		if s, f, d := cnt.Get(component.Sent), cnt.Get(component.Failed), cnt.Get(component.Dropped); s != wantSent || f != wantFailed || d != wantDropped {
			t.Errorf("%s: sent %d failed %d dropped %d; want %d %d %d\n%s", name, s, f, d, wantSent, wantFailed, wantDropped, logs)
		}
	}
	partial := ptraceotlp.NewExportResponse()
	partial.PartialSuccess().SetRejectedSpans(4)
	partial.PartialSuccess().SetErrorMessage("invalid trace id")
	partialJSON, _ := partial.MarshalJSON()
	ok := reply{status: 200}
	f("503 then ok", []reply{{status: 503}, ok}, EncodingProto, 2, 10, 0, 0, "")
	f("429 without Retry-After then ok", []reply{{status: 429}, {status: 429}, ok}, EncodingProto, 3, 10, 0, 0, "")
	f("400 is permanent", []reply{{status: 400, header: map[string]string{"Content-Type": "application/x-protobuf"},
		body: statusBody(t, "unknown resource", false)}}, EncodingProto, 1, 0, 0, 10, "unknown resource")
	f("503 for ever", []reply{{status: 503, body: []byte("maintenance")}}, EncodingProto, many, 0, 10, 0, "maintenance")
	f("partial success in JSON", []reply{{status: 200, header: map[string]string{"Content-Type": "application/json"},
		body: partialJSON}}, EncodingJSON, 1, 6, 0, 4, "invalid trace id")
}

func TestBoundedBody(t *testing.T) {
	huge := bytes.Repeat([]byte("x"), 4<<20)
	be := &backend{answer: func(int) reply { return reply{status: 400, body: huge} }}
	url := startBackend(t, be)
	set, _, _ := settings()
	exp := startExporter(t, set, testConfig(url))
	b, _ := items(t, batch.Traces, 2, 0, true)
	err := exp.Consume(context.Background(), b)
	if !consumererror.IsPermanent(err) || len(err.Error()) > 512 {
		t.Fatalf("error of %d bytes: %.100v", len(err.Error()), err)
	}
}

func TestNoURLForSignal(t *testing.T) {
	be := &backend{}
	url := startBackend(t, be)
	set, cnt, _ := settings()
	cfg := testConfig("")
	cfg.TracesEndpoint = url + "/custom/traces"
	exp := startExporter(t, set, cfg)
	tr, _ := items(t, batch.Traces, 2, 0, false)
	if err := exp.Consume(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	lg, _ := items(t, batch.Logs, 2, 0, false)
	if err := exp.Consume(context.Background(), lg); !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "logs_endpoint") {
		t.Fatalf("logs without a URL: %v", err)
	}
	if reqs := be.requests(); len(reqs) != 1 || reqs[0].path != "/custom/traces" || cnt.Get(component.Dropped) != 2 {
		t.Fatalf("requests %v, dropped %d", reqs, cnt.Get(component.Dropped))
	}
}

// TestSecretHeader: the header reaches the backend and never the logs.
func TestSecretHeader(t *testing.T) {
	const token = "Bearer s3cr3t-t0ken"
	be := &backend{answer: func(n int) reply {
		if n == 0 {
			return reply{status: 503}
		}
		return reply{status: 403, body: []byte("forbidden")}
	}}
	url := startBackend(t, be)
	set, _, logs := settings()
	cfg := testConfig(strings.Replace(url, "http://", "http://user:s3cr3t-pw@", 1))
	cfg.Client.Headers = map[string]secret.String{"Authorization": token}
	exp := startExporter(t, set, cfg)
	b, _ := items(t, batch.Metrics, 2, 0, false)
	_ = exp.Consume(context.Background(), b)
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reqs := be.requests(); len(reqs) != 2 || reqs[0].header.Get("Authorization") != token {
		t.Fatal("the backend did not get the header")
	}
	out := logs.String()
	if !strings.Contains(out, "Authorization") || !strings.Contains(out, "forbidden") {
		t.Fatalf("expected start and failure lines in the log:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("secret in logs:\n%s", out)
	}
}

// TestQueued runs with the default queue: Consume returns at once and Shutdown delivers the rest.
func TestQueued(t *testing.T) {
	be := &backend{}
	url := startBackend(t, be)
	set, cnt, _ := settings()
	cfg := testConfig(url)
	cfg.Sender.Queue.Enabled = true
	exp, err := NewFactory().Create(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b, _ := items(t, batch.Logs, 4, i*4, i%2 == 0)
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

// TestTooLargeIsSplit: a backend that answers 413 to bodies over 64 KiB (as a proxy's body
// limit does) gets the batch in parts small enough, every item once; the split is counted.
func TestTooLargeIsSplit(t *testing.T) {
	for _, encoding := range []string{EncodingProto, EncodingJSON} {
		t.Run(encoding, func(t *testing.T) {
			const limit = 64 << 10
			be := &backend{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ContentLength > limit {
					http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
					return
				}
				be.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			set, cnt, logs := settings()
			cfg := testConfig(srv.URL)
			cfg.Encoding = encoding
			cfg.Client.Compression = "none"
			exp := startExporter(t, set, cfg)
			b, wire := items(t, batch.Traces, 2000, 0, true)
			if len(wire) < 4*limit {
				t.Fatalf("batch is %d bytes, want several times the limit", len(wire))
			}
			if err := exp.Consume(context.Background(), b); err != nil {
				t.Fatalf("Consume: %v\nlogs: %s", err, logs)
			}
			var seqs []int64
			for _, r := range be.requests() {
				if len(r.body) > limit {
					t.Errorf("the backend took a %d-byte body, over its limit", len(r.body))
				}
				seqs = append(seqs, r.seqs...)
			}
			slices.Sort(seqs)
			if !slices.Equal(seqs, seqRange(0, 2000)) {
				t.Errorf("backend got %d spans, want each of 2000 once", len(seqs))
			}
			if s, d := cnt.Get(component.Sent), cnt.Get(component.Dropped); s != 2000 || d != 0 {
				t.Errorf("sent %d dropped %d, want 2000 0", s, d)
			}
			mfs, _ := set.Registerer.(*prometheus.Registry).Gather()
			var n float64
			for _, mf := range mfs {
				if mf.GetName() == "vigil_exporter_otlphttp_split_requests_total" {
					for _, m := range mf.GetMetric() {
						for _, l := range m.GetLabel() {
							if l.GetName() == "reason" && l.GetValue() == "too_large" {
								n += m.GetCounter().GetValue()
							}
						}
					}
				}
			}
			if n < 1 {
				t.Errorf("split_requests_total{reason=too_large} = %v, want ≥ 1", n)
			}
		})
	}
}
