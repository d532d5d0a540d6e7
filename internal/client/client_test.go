package client

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func checkErr(t *testing.T, name string, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s: unexpected error: %v", name, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want %q", name, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", name, err, w)
		}
	}
}

func TestGRPCValidate(t *testing.T) {
	f := func(name string, mutate func(*GRPC), want ...string) {
		t.Helper()
		g := NewGRPC()
		g.Endpoint = "collector:4317"
		mutate(&g)
		checkErr(t, name, g.Validate(), want)
	}
	ep := func(s string) func(*GRPC) { return func(g *GRPC) { g.Endpoint = s } }
	f("host:port", ep("collector:4317"))
	f("ipv6", ep("[::1]:4317"))
	f("http scheme", ep("http://collector:4317"))
	f("https scheme", ep("https://collector:443"))
	f("dns target", ep("dns:///collector:4317"))
	f("unix socket", ep("unix:///run/otlp.sock"))
	f("empty", ep(""), "endpoint: must be set")
	f("no port", ep("collector"), "endpoint: must be host:port")
	f("port zero", ep("collector:0"), "endpoint: port must be a number from 1 to 65535")
	f("named port", ep("collector:otlp"), "endpoint: port must be a number")
	f("no host", ep(":4317"), "endpoint: host must not be empty")
	f("path", ep("http://collector:4317/v1/traces"), "without a path")
	f("https with insecure", func(g *GRPC) { g.Endpoint = "https://c:443"; g.TLS.Insecure = true }, "tls.insecure: true contradicts")
	f("http with ca_file", func(g *GRPC) { g.Endpoint = "http://c:80"; g.TLS.CAFile = "/ca.pem" }, "http:// scheme of endpoint means plaintext")
	f("tls path prefix", func(g *GRPC) { g.TLS.MinVersion = "1.0"; g.TLS.CertFile = "c.pem" },
		"tls.min_version: must be", "tls.cert_file and key_file")
	f("compression", func(g *GRPC) { g.Compression = "snappy" }, `compression: must be one of none, gzip, zstd; got "snappy"`)
	f("no compression", func(g *GRPC) { g.Compression = "none" })
	f("balancer", func(g *GRPC) { g.BalancerName = "random" }, "balancer_name")
	f("keepalive", func(g *GRPC) { g.Keepalive = &Keepalive{Time: -1, Timeout: -1} }, "keepalive.time", "keepalive.timeout")
	f("buffers", func(g *GRPC) { g.WriteBufferSize, g.ReadBufferSize = -1, -1 }, "write_buffer_size", "read_buffer_size")
	f("header ok", func(g *GRPC) { g.Headers = map[string]secret.String{"Authorization": "Bearer x", "x-bin": "\x00\x01"} })
	f("header reserved", func(g *GRPC) { g.Headers = map[string]secret.String{"grpc-timeout": "1"} }, "headers.grpc-timeout: header names starting with grpc-")
	f("header name", func(g *GRPC) { g.Headers = map[string]secret.String{"x y": "1"} }, "headers.x y: header name may hold only")
	f("several at once", func(g *GRPC) { g.Endpoint = ""; g.Compression = "lz4" }, "endpoint:", "compression:")

	// A bad header value must not be echoed: it is likely a secret.
	g := NewGRPC()
	g.Endpoint = "c:1"
	g.Headers = map[string]secret.String{"authorization": "hunter2\n"}
	if err := g.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad header value: error %v", err)
	}
}

func TestGRPCTarget(t *testing.T) {
	f := func(endpoint string, insecure bool, wantTarget string, wantTLS bool) {
		t.Helper()
		g := GRPC{Endpoint: endpoint, TLS: tlsconfig.Client{Insecure: insecure}}
		target, useTLS := g.Target()
		if target != wantTarget || useTLS != wantTLS {
			t.Errorf("Target(%q, insecure=%v) = %q, %v; want %q, %v", endpoint, insecure, target, useTLS, wantTarget, wantTLS)
		}
	}
	f("c:4317", false, "c:4317", true) // TLS by default
	f("c:4317", true, "c:4317", false)
	f("http://c:4317", false, "c:4317", false)
	f("https://c:4317", false, "c:4317", true)
	f("unix:///s", true, "unix:///s", false)
}

func TestGRPCConn(t *testing.T) {
	g := NewGRPC()
	g.Endpoint = "127.0.0.1:1"
	g.Headers = map[string]secret.String{"X-Tenant": "acme", "Authorization": "Bearer t"}
	g.Keepalive = &Keepalive{Time: 30 * time.Second, Timeout: 5 * time.Second}
	conn, err := g.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	md := g.Metadata()
	if md.Get("x-tenant")[0] != "acme" || md.Get("authorization")[0] != "Bearer t" {
		t.Fatalf("metadata %v", md)
	}
	if len(g.CallOptions()) != 1 {
		t.Fatal("gzip should give one call option")
	}
	g.Compression = None
	if len(g.CallOptions()) != 0 {
		t.Fatal("no compression should give no call option")
	}

	g.TLS.CAFile = "/does/not/exist.pem"
	if _, err := g.NewConn(); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing ca_file: %v", err)
	}
}

func TestHTTPValidate(t *testing.T) {
	f := func(name string, mutate func(*HTTP), want ...string) {
		t.Helper()
		h := NewHTTP()
		h.Endpoint = "https://collector:4318"
		mutate(&h)
		checkErr(t, name, h.Validate(), want)
	}
	f("defaults", func(*HTTP) {})
	f("no endpoint is the exporter's business", func(h *HTTP) { h.Endpoint = "" })
	f("path is fine", func(h *HTTP) { h.Endpoint = "http://gw:8080/otlp" })
	f("no scheme", func(h *HTTP) { h.Endpoint = "collector:4318" }, "endpoint: must start with http:// or https://")
	f("ftp", func(h *HTTP) { h.Endpoint = "ftp://c" }, "endpoint: must start with http://")
	f("no host", func(h *HTTP) { h.Endpoint = "http:///x" }, "endpoint: must name a host")
	f("query", func(h *HTTP) { h.Endpoint = "http://c/?a=b" }, "endpoint: must not hold a query")
	f("proxy", func(h *HTTP) { h.ProxyURL = "socks" }, "proxy_url:")
	f("sizes", func(h *HTTP) { h.MaxIdleConns, h.MaxConnsPerHost, h.IdleConnTimeout = -1, -1, -1 },
		"max_idle_conns: must be >= 0", "max_conns_per_host", "idle_conn_timeout")
	f("content-type is ours", func(h *HTTP) { h.Headers = map[string]secret.String{"content-type": "text/plain"} },
		"headers.content-type: this header is set by the exporter")
	f("bad header name", func(h *HTTP) { h.Headers = map[string]secret.String{"a:b": "1"} }, "headers.a:b: header name holds")
	f("compression", func(h *HTTP) { h.Compression = "br" }, "compression:")
	f("tls", func(h *HTTP) { h.TLS.MaxVersion = "9" }, "tls.max_version")

	// The password in a URL must not be echoed.
	h := NewHTTP()
	h.Endpoint = "ftp://user:hunter2@c"
	if err := h.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("URL with password: error %v", err)
	}
	h.Endpoint = "https://c"
	h.Headers = map[string]secret.String{"Authorization": "hunter2\x01"}
	if err := h.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad header value: error %v", err)
	}
}

func TestHTTPClient(t *testing.T) {
	h := NewHTTP()
	h.Endpoint = "https://c"
	h.ProxyURL = "http://proxy:3128"
	h.Headers = map[string]secret.String{"x-scope-orgid": "acme"}
	c, err := h.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost != 100 || tr.IdleConnTimeout != 90*time.Second || tr.TLSClientConfig == nil || tr.Proxy == nil {
		t.Fatalf("transport %+v", tr)
	}
	if c.Timeout != 0 {
		t.Fatal("the sender bounds attempts; the client must not")
	}
	hdr := http.Header{}
	h.SetHeaders(hdr)
	if hdr.Get("X-Scope-Orgid") != "acme" {
		t.Fatalf("headers %v", hdr)
	}
	h.TLS.CAFile = "/does/not/exist.pem"
	if _, err := h.NewClient(); err == nil {
		t.Fatal("missing ca_file accepted")
	}
}

func TestCompress(t *testing.T) {
	src := bytes.Repeat([]byte("span GET /api/items 200 "), 1000)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	unzip := func(c Compression, b []byte) []byte {
		switch c {
		case Gzip:
			r, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return out
		case Zstd:
			out, err := dec.DecodeAll(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		return b
	}
	for _, c := range []Compression{Gzip, Zstd, None, ""} {
		var wg sync.WaitGroup
		for range 4 { // the pools and the shared encoder must be safe to share
			wg.Go(func() {
				prefix := []byte("keep")
				out, err := c.Compress(prefix, src)
				if err != nil {
					t.Error(err)
					return
				}
				if !c.IsNone() {
					if !bytes.HasPrefix(out, []byte("keep")) || len(out) >= len(src) {
						t.Errorf("%s: did not append compressed data (%d bytes)", c, len(out))
						return
					}
					out = out[4:]
				}
				if got := unzip(c, out); !bytes.Equal(got, src) {
					t.Errorf("%s: round trip differs", c)
				}
			})
		}
		wg.Wait()
	}
}

// TestYAML decodes full blocks strictly with otelcol's key names.
func TestYAML(t *testing.T) {
	decode := func(in string, v any) error {
		dec := yaml.NewDecoder(strings.NewReader(in))
		dec.KnownFields(true)
		return dec.Decode(v)
	}
	g := NewGRPC()
	err := decode(`
endpoint: https://collector:4317
tls: {ca_file: /ca.pem, server_name_override: c.example}
headers: {authorization: "Bearer abc"}
compression: zstd
keepalive: {time: 30s, timeout: 5s, permit_without_stream: true}
balancer_name: pick_first
write_buffer_size: 1024
read_buffer_size: 2048
authority: c.example
`, &g)
	if err != nil {
		t.Fatal(err)
	}
	if g.Compression != Zstd || g.Keepalive.Time != 30*time.Second || g.Headers["authorization"].Value() != "Bearer abc" ||
		g.TLS.CAFile != "/ca.pem" || g.BalancerName != "pick_first" || g.Validate() != nil {
		t.Fatalf("decoded %+v", g)
	}
	h := NewHTTP()
	err = decode(`
endpoint: https://collector:4318
tls: {insecure_skip_verify: true}
headers: {x-scope-orgid: acme}
compression: none
proxy_url: http://proxy:3128
max_idle_conns: 10
max_idle_conns_per_host: 5
max_conns_per_host: 20
idle_conn_timeout: 1m
disable_keep_alives: true
read_buffer_size: 1
write_buffer_size: 1
`, &h)
	if err != nil {
		t.Fatal(err)
	}
	if h.MaxConnsPerHost != 20 || h.IdleConnTimeout != time.Minute || !h.TLS.InsecureSkipVerify || h.Validate() != nil {
		t.Fatalf("decoded %+v", h)
	}
	if err := decode("timeout: 5s\n", &h); err == nil {
		t.Fatal("timeout belongs to the sender block; the client block must not take it")
	}
}
