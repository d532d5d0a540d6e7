package otlp

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/server"
)

// decode decodes a receiver config the way the config loader does: strictly, into the defaults.
func decode(t *testing.T, src string) (*Config, error) {
	t.Helper()
	cfg := NewConfig()
	return cfg, componenttest.DecodeConfig([]byte(src), cfg)
}

func TestConfigDecode(t *testing.T) {
	defGRPC, defHTTP := defaultGRPC(), defaultHTTP()
	f := func(src string, wantGRPC *server.GRPC, wantHTTP *HTTPConfig) {
		t.Helper()
		cfg, err := decode(t, src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		p := cfg.Protocols
		if !reflect.DeepEqual(p.GRPC, wantGRPC) {
			t.Fatalf("%q: grpc = %+v, want %+v", src, p.GRPC, wantGRPC)
		}
		if !reflect.DeepEqual(p.HTTP, wantHTTP) {
			t.Fatalf("%q: http = %+v, want %+v", src, p.HTTP, wantHTTP)
		}
	}
	// No protocols block: the defaults, both on.
	f("", &defGRPC, &defHTTP)
	// A protocol named with no value is on with its defaults; one not named is off.
	f("protocols:\n  grpc:\n", &defGRPC, nil)
	f("protocols: {http: }", nil, &defHTTP)
	f("protocols: {http: {}}", nil, &defHTTP)
	f("protocols:\n  grpc:\n  http:\n", &defGRPC, &defHTTP)
	// Values override the defaults key by key.
	g := defaultGRPC()
	g.Endpoint, g.MaxRecvMsgSizeMiB = "0.0.0.0:4317", 32
	f("protocols:\n  grpc:\n    endpoint: 0.0.0.0:4317\n    max_recv_msg_size_mib: 32\n", &g, nil)
	h := defaultHTTP()
	h.Endpoint, h.TracesURLPath, h.WriteTimeout = "0.0.0.0:4318", "v1/t", 5*time.Second
	f("protocols:\n  http:\n    endpoint: 0.0.0.0:4318\n    traces_url_path: v1/t\n    write_timeout: 5s\n", nil, &h)
	h = defaultHTTP()
	h.Auth = &server.Auth{BearerToken: "tok"}
	f("protocols: {http: {auth: {bearer_token: tok}}}", nil, &h)
}

func TestConfigErrors(t *testing.T) {
	f := func(src string, want ...string) {
		t.Helper()
		_, err := decode(t, src)
		if err == nil {
			t.Fatalf("%q: want an error", src)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%q: want %q in the error, got:\n%v", src, w, err)
			}
		}
	}
	// Strict decoding holds inside the protocols block.
	f("protocols: {grpc: {endpiont: x}}", "field endpiont not found")
	f("protocols: {thrift: {}}", "field thrift not found")
	f("protocols: {http: {cors: {}}}", "field cors not found")
	f("protocols: grpc", "cannot unmarshal")
	f("protocols: {}", "protocols: enable at least one of grpc and http")
	f("protocols: {grpc: {endpoint: 4317}}", "protocols.grpc.endpoint: must be host:port")
	f("protocols: {grpc: {transport: unix, tls: {}}}", `protocols.grpc.transport: only "tcp"`, "protocols.grpc.tls.cert_file: required")
	f("protocols: {http: {max_request_body_size: -1, auth: {}}}",
		"protocols.http.max_request_body_size: must be >= 0", "protocols.http.auth.bearer_token, tokens, basic or client_certs: one at least is required")
	f("protocols: {http: {logs_url_path: /v1/traces}}", `protocols.http.logs_url_path: "/v1/traces" is also traces_url_path`)
	f("protocols: {http: {logs_url_path: v1/traces}}", `protocols.http.logs_url_path: "v1/traces" is also traces_url_path`)
	f("protocols: {http: {metrics_url_path: ''}}", "protocols.http.metrics_url_path: must not be empty")
	f("protocols: {http: {metrics_url_path: '/a b'}}", "protocols.http.metrics_url_path: must be a plain URL path")
	f("protocols: {grpc: {endpoint: ':4317'}, http: {endpoint: ':4317'}}", "protocols.http.endpoint")
}

func TestConfigPort0Twice(t *testing.T) {
	// Port 0 on both is fine: each listener gets its own port.
	if _, err := decode(t, "protocols: {grpc: {endpoint: '127.0.0.1:0'}, http: {endpoint: '127.0.0.1:0'}}"); err != nil {
		t.Fatal(err)
	}
}

func TestConfigExample(t *testing.T) {
	src, err := readTestdata("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := decode(t, string(src))
	if err != nil {
		t.Fatal(err)
	}
	g, h := cfg.Protocols.GRPC, cfg.Protocols.HTTP
	if g == nil || h == nil || g.TLS == nil || g.Keepalive.ServerParameters.MaxConnectionAge != 10*time.Minute ||
		h.Auth == nil || h.Auth.BearerToken.Value() != "change-me" || h.MaxRequestBodySize != 10<<20 || h.LogsURLPath != "/otlp/v1/logs" {
		t.Fatalf("decoded config does not match testdata/config.yaml: grpc %+v http %+v", g, h)
	}
}
