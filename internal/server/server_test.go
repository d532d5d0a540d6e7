package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate(t *testing.T) {
	f := func(v interface{ Validate() error }, want ...string) {
		t.Helper()
		err := v.Validate()
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("want errors %q, got none", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("want %q in error, got:\n%v", w, err)
			}
		}
	}
	h := NewHTTP("127.0.0.1:4318")
	f(&h)
	h = NewHTTP("127.0.0.1:0")
	f(&h)
	f(&HTTP{Endpoint: ":4318"}) // zero limits and timeouts mean the defaults
	f(&HTTP{}, "endpoint: required")
	f(&HTTP{Endpoint: "localhost"}, "endpoint: must be host:port")
	f(&HTTP{Endpoint: "localhost:http"}, "endpoint: port must be a number")
	f(&HTTP{Endpoint: "localhost:70000"}, "endpoint: port must be a number")
	f(&HTTP{Endpoint: "localhost:1", MaxRequestBodySize: -1, ReadHeaderTimeout: -time.Second},
		"max_request_body_size: must be >= 0", "read_header_timeout: must be >= 0")
	f(&HTTP{Endpoint: "localhost:1", TLS: &tlsconfig.Server{}, Auth: &Auth{}},
		"tls.cert_file: required", "auth.bearer_token, tokens, basic or client_certs: one at least is required")

	g := NewGRPC("127.0.0.1:4317")
	f(&g)
	f(&GRPC{Endpoint: "[::1]:0"})
	f(&GRPC{Endpoint: "127.0.0.1:4317", Transport: "unix"}, `transport: only "tcp"`)
	f(&GRPC{Endpoint: "127.0.0.1:4317", MaxRecvMsgSizeMiB: -1}, "max_recv_msg_size_mib")
	f(&GRPC{Endpoint: "127.0.0.1:4317", Keepalive: Keepalive{ServerParameters: KeepaliveServerParameters{Time: -1}}},
		"keepalive.server_parameters.time: must be >= 0")
	f(&GRPC{Endpoint: "x", TLS: &tlsconfig.Server{Common: tlsconfig.Common{MinVersion: "1.0"}}},
		"endpoint: must be host:port", "tls.min_version", "tls.cert_file: required")
}

func TestAddr(t *testing.T) {
	f := func(endpoint, wantHost string) {
		t.Helper()
		l, err := net.Listen("tcp", endpoint)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", endpoint, err)
		}
		defer l.Close()
		host, port, err := net.SplitHostPort(Addr(l))
		if err != nil || host != wantHost || port == "0" {
			t.Fatalf("Addr(%s) = %s, want host %s and a real port", endpoint, Addr(l), wantHost)
		}
		c, err := net.Dial("tcp", Addr(l))
		if err != nil {
			t.Fatalf("dial %s: %v", Addr(l), err)
		}
		c.Close()
	}
	f("127.0.0.1:0", "127.0.0.1")
	f("0.0.0.0:0", "127.0.0.1")
	f(":0", "127.0.0.1")
}

func TestListenPortTaken(t *testing.T) {
	h := NewHTTP("127.0.0.1:0")
	l, err := h.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h2 := NewHTTP(Addr(l))
	if l2, err := h2.Listen(); err == nil {
		l2.Close()
		t.Fatal("second listen on the same port succeeded")
	}
	g := NewGRPC(Addr(l))
	if l2, err := g.Listen(); err == nil {
		l2.Close()
		t.Fatal("grpc listen on a taken port succeeded")
	}
}

type rejects struct {
	mu  sync.Mutex
	got []string
}

func (r *rejects) add(reason string) { r.mu.Lock(); r.got = append(r.got, reason); r.mu.Unlock() }
func (r *rejects) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, ",")
}

// serveHTTP starts h with handler and returns the base URL.
func serveHTTP(t *testing.T, h HTTP, handler http.Handler, opts ...Option) string {
	t.Helper()
	l, err := h.Listen()
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{ErrorLog(slog.New(slog.DiscardHandler))}, opts...)
	srv := h.NewServer(handler, opts...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	scheme := "http"
	if h.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + Addr(l)
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "ok")
})

func client(t *testing.T, tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestHTTPTLS(t *testing.T) {
	pki := newTestPKI(t)
	h := NewHTTP("127.0.0.1:0")
	h.TLS = &tlsconfig.Server{Common: tlsconfig.Common{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}}
	url := serveHTTP(t, h, okHandler)

	resp, err := client(t, &tls.Config{RootCAs: pki.Pool}).Post(url, "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Fatalf("got %s over %s (tls %v), want 200 over HTTP/2 with TLS", resp.Status, resp.Proto, resp.TLS != nil)
	}
	// A client that does not trust the CA, and a plaintext client, get nothing.
	if _, err := client(t, &tls.Config{}).Get(url); err == nil {
		t.Fatal("client without the CA connected")
	}
	if resp, err := client(t, nil).Get(strings.Replace(url, "https", "http", 1)); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plaintext request got %s", resp.Status)
		}
	}
}

func TestHTTPMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	h := NewHTTP("127.0.0.1:0")
	h.TLS = &tlsconfig.Server{
		Common:       tlsconfig.Common{CertFile: pki.ServerCert, KeyFile: pki.ServerKey},
		ClientCAFile: pki.CAFile,
	}
	url := serveHTTP(t, h, okHandler)

	if resp, err := client(t, &tls.Config{RootCAs: pki.Pool}).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("client without a certificate got %s", resp.Status)
	}
	resp, err := client(t, &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("client with a certificate got %s", resp.Status)
	}
}

func TestHTTPBearer(t *testing.T) {
	h := NewHTTP("127.0.0.1:0")
	h.Auth = &Auth{BearerToken: "s3cret"}
	var rej rejects
	url := serveHTTP(t, h, okHandler, OnReject(rej.add))
	c := client(t, nil)

	f := func(header string, want int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("Authorization %q: got %s, want %d", header, resp.Status, want)
		}
		if want == http.StatusUnauthorized {
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: Bearer: %v", resp.Header)
			}
			if bytes.Contains(body, []byte("s3cret")) {
				t.Fatal("the token leaked into the response")
			}
		}
	}
	f("", 401)
	f("Bearer wrong", 401)
	f("Bearer s3cret2", 401)
	f("Basic s3cret", 401)
	f("Bearer ", 401)
	f("s3cret", 401)
	f("Bearer s3cret", 200)
	f("bearer s3cret", 200)
	if got := rej.String(); got != "unauthenticated,unauthenticated,unauthenticated,unauthenticated,unauthenticated,unauthenticated" {
		t.Fatalf("rejects: %s", got)
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	h := NewHTTP("127.0.0.1:0")
	h.MaxRequestBodySize = 1000
	var rej rejects
	var calls, customBody atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		okHandler(w, r)
	})
	url := serveHTTP(t, h, handler, OnReject(rej.add),
		WriteError(func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
			customBody.Add(1)
			w.WriteHeader(status)
			io.WriteString(w, msg)
		}))
	c := client(t, nil)

	f := func(body io.Reader, want int) {
		t.Helper()
		resp, err := c.Post(url, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("got %s, want %d", resp.Status, want)
		}
	}
	f(bytes.NewReader(make([]byte, 1000)), 200)
	// Declared too large: refused before the handler runs.
	f(bytes.NewReader(make([]byte, 1001)), 413)
	if calls.Load() != 1 || rej.String() != "too_large" || customBody.Load() != 1 {
		t.Fatalf("handler calls %d, rejects %q, custom error bodies %d; want 1, too_large, 1",
			calls.Load(), rej.String(), customBody.Load())
	}
	// Chunked (no Content-Length): cut off at the limit while the handler reads.
	f(io.MultiReader(bytes.NewReader(make([]byte, 1001))), 413)
	if calls.Load() != 2 {
		t.Fatalf("handler calls %d, want 2", calls.Load())
	}
}

// echoDesc is a unary service that sends back what it got, as raw bytes.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "vigil.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(otlpgrpc.Raw)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}, {
		MethodName: "Who",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(otlpgrpc.Raw)); err != nil {
				return nil, err
			}
			return &otlpgrpc.Raw{Bytes: []byte(whoami(ctx))}, nil
		},
	}},
}

func serveGRPC(t *testing.T, g GRPC, opts ...Option) string {
	t.Helper()
	sopts, err := g.ServerOptions(opts...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(sopts, grpc.ForceServerCodecV2(otlpgrpc.Codec{}))...)
	srv.RegisterService(&echoDesc, struct{}{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return Addr(l)
}

func echo(t *testing.T, addr string, creds credentials.TransportCredentials, ctx context.Context, size int) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	in, out := &otlpgrpc.Raw{Bytes: bytes.Repeat([]byte{'x'}, size)}, &otlpgrpc.Raw{}
	err = conn.Invoke(ctx, "/vigil.test.Echo/Echo", in, out, grpc.ForceCodecV2(otlpgrpc.Codec{}))
	if err == nil && !bytes.Equal(in.Bytes, out.Bytes) {
		t.Fatalf("echo returned %d bytes, want %d", len(out.Bytes), size)
	}
	return err
}

func TestGRPCTLS(t *testing.T) {
	pki := newTestPKI(t)
	g := NewGRPC("127.0.0.1:0")
	g.TLS = &tlsconfig.Server{
		Common:       tlsconfig.Common{CertFile: pki.ServerCert, KeyFile: pki.ServerKey},
		ClientCAFile: pki.CAFile,
	}
	addr := serveGRPC(t, g)
	ctx := context.Background()
	withCert := credentials.NewTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}})
	if err := echo(t, addr, withCert, ctx, 10); err != nil {
		t.Fatalf("mTLS client: %v", err)
	}
	if err := echo(t, addr, credentials.NewTLS(&tls.Config{RootCAs: pki.Pool}), ctx, 10); status.Code(err) != codes.Unavailable {
		t.Fatalf("client without a certificate: got %v, want Unavailable", err)
	}
	if err := echo(t, addr, insecure.NewCredentials(), ctx, 10); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: got %v, want Unavailable", err)
	}
}

func TestGRPCBearer(t *testing.T) {
	g := NewGRPC("127.0.0.1:0")
	g.Auth = &Auth{BearerToken: "s3cret"}
	var rej rejects
	addr := serveGRPC(t, g, OnReject(rej.add))
	f := func(header string, want codes.Code) {
		t.Helper()
		ctx := context.Background()
		if header != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", header)
		}
		err := echo(t, addr, insecure.NewCredentials(), ctx, 10)
		if status.Code(err) != want {
			t.Fatalf("authorization %q: got %v, want %v", header, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Fatal("the token leaked into the status")
		}
	}
	f("", codes.Unauthenticated)
	f("Bearer nope", codes.Unauthenticated)
	f("Bearer s3cret", codes.OK)
	f("BEARER s3cret", codes.OK)
	if got := rej.String(); got != "unauthenticated,unauthenticated" {
		t.Fatalf("rejects: %s", got)
	}
}

func TestGRPCMaxRecvMsgSize(t *testing.T) {
	g := NewGRPC("127.0.0.1:0")
	g.MaxRecvMsgSizeMiB = 1
	addr := serveGRPC(t, g)
	if err := echo(t, addr, insecure.NewCredentials(), context.Background(), 1<<20-100); err != nil {
		t.Fatalf("message under the limit: %v", err)
	}
	err := echo(t, addr, insecure.NewCredentials(), context.Background(), 1<<20+1)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("message over the limit: got %v, want ResourceExhausted", err)
	}
}

func TestPrefix(t *testing.T) {
	err := Prefix("protocols.grpc", errors.Join(errors.New("endpoint: bad"), Prefix("tls", errors.New("cert_file: required"))))
	want := "protocols.grpc.endpoint: bad\nprotocols.grpc.tls.cert_file: required"
	if err == nil || err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if Prefix("x", nil) != nil {
		t.Fatal("Prefix of nil is not nil")
	}
}

// TestClientAddr: handlers (and the processors they call) see the address the request came from,
// over HTTP and gRPC, for the k8s_attributes processor's connection association.
func TestClientAddr(t *testing.T) {
	got := make(chan string, 1)
	url := serveHTTP(t, NewHTTP("127.0.0.1:0"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := ClientAddr(r.Context())
		got <- fmt.Sprint(a, ok)
	}))
	resp, err := client(t, nil).Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g := <-got; g != "127.0.0.1 true" {
		t.Errorf("HTTP client address %q, want 127.0.0.1 true", g)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 5}})
	if a, ok := ClientAddr(ctx); !ok || a.String() != "10.1.2.3" {
		t.Errorf("gRPC peer address %v %v, want 10.1.2.3 (unmapped)", a, ok)
	}
	if _, ok := ClientAddr(context.Background()); ok {
		t.Error("an address without a request")
	}
}
