package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// whoami describes the identity on ctx: name/tenant/signals allowed.
func whoami(ctx context.Context) string {
	id, ok := IdentityFrom(ctx)
	if !ok {
		return "anonymous"
	}
	var sigs []string
	for _, s := range batch.Signals {
		if id.Allows(s) {
			sigs = append(sigs, s.String())
		}
	}
	return id.Name + "/" + id.Tenant + "/" + strings.Join(sigs, ",")
}

var whoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if !Authorize(r.Context(), batch.Traces) {
		http.Error(w, errForbiddenText, http.StatusForbidden)
		return
	}
	io.WriteString(w, whoami(r.Context()))
})

func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestValidateAuth(t *testing.T) {
	f := func(a *Auth, want ...string) {
		t.Helper()
		err := a.Validate()
		if len(want) == 0 {
			if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			return
		}
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("want %q in %v", w, err)
			}
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("a secret in the error: %v", err)
		}
	}
	f(&Auth{Tokens: []TokenAuth{{Token: "hunter2", Grant: Grant{Signals: []string{"traces"}, Tenant: "a"}}}})
	f(&Auth{Tokens: []TokenAuth{{Token: "hunter2"}, {Token: "hunter2"}}}, "tokens[1].token: the same token is listed twice")
	f(&Auth{Tokens: []TokenAuth{{}}}, "tokens[0].token: required")
	f(&Auth{Tokens: []TokenAuth{{Token: "x", Grant: Grant{Signals: []string{"spans"}}}}}, `tokens[0].signals: "spans" is not traces, metrics or logs`)
	f(&Auth{Basic: []BasicAuth{{Username: "alice", PasswordHash: "hunter2"}}}, "basic[0].password_hash: not a bcrypt hash")
	f(&Auth{Basic: []BasicAuth{{Username: "a:b", PasswordHash: "x"}}}, "basic[0].username: required, without a colon")
	f(&Auth{ClientCerts: []CertAuth{{Grant: Grant{Tenant: "x"}}}}, "client_certs[0]: common_name, dns_name or uri")
	h := HTTP{Endpoint: "127.0.0.1:1", Auth: &Auth{ClientCerts: []CertAuth{{CommonName: "c"}}}}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "auth.client_certs: needs tls.client_ca_file") {
		t.Errorf("client_certs without client_ca_file: %v", err)
	}
}

// TestHTTPIdentities: tokens, basic users (bcrypt) and client certificates each authenticate
// as their identity, with their grant; wrong credentials get 401 that names no credential, and
// an identity without the signal gets 403.
func TestHTTPIdentities(t *testing.T) {
	pki := newTestPKI(t)
	h := NewHTTP("127.0.0.1:0")
	h.TLS = &tlsconfig.Server{Common: tlsconfig.Common{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, ClientCAFile: pki.CAFile}
	h.Auth = &Auth{
		Tokens: []TokenAuth{
			{Name: "team-a", Token: "token-a", Grant: Grant{Tenant: "a"}},
			{Name: "metrics-only", Token: "token-m", Grant: Grant{Signals: []string{"metrics"}}},
		},
		Basic:       []BasicAuth{{Username: "alice", PasswordHash: secret.String(hash(t, "wonderland")), Grant: Grant{Tenant: "b", Signals: []string{"traces", "logs"}}}},
		ClientCerts: []CertAuth{{CommonName: "client", Grant: Grant{Tenant: "c"}}},
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	var rej rejects
	url := serveHTTP(t, h, whoHandler, OnReject(rej.add))
	withCert := client(t, &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}})
	f := func(c *http.Client, authorization string, wantStatus int, wantBody string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus || !strings.Contains(string(b), wantBody) {
			t.Errorf("Authorization %q: %s %q, want %d %q", authorization, resp.Status, b, wantStatus, wantBody)
		}
		for _, secret := range []string{"token-a", "token-m", "wonderland", "alice"} {
			if wantStatus >= 400 && strings.Contains(string(b)+strings.Join(resp.Header.Values("WWW-Authenticate"), " "), secret) {
				t.Errorf("%q in a refusal", secret)
			}
		}
		if wantStatus == http.StatusUnauthorized && len(resp.Header.Values("WWW-Authenticate")) != 2 {
			t.Errorf("401 with WWW-Authenticate %q, want Bearer and Basic", resp.Header.Values("WWW-Authenticate"))
		}
	}
	f(withCert, "Bearer token-a", 200, "team-a/a/traces,metrics,logs")
	f(withCert, "Bearer token-m", 403, errForbiddenText)
	f(withCert, basic("alice", "wonderland"), 200, "alice/b/traces,logs")
	f(withCert, basic("alice", "wonderland"), 200, "alice/b/traces,logs") // from the cache
	f(withCert, basic("alice", "looking-glass"), 401, errUnauthenticatedText)
	f(withCert, basic("bob", "wonderland"), 401, errUnauthenticatedText)
	f(withCert, "Bearer token-x", 401, errUnauthenticatedText)
	f(withCert, "Digest x", 401, errUnauthenticatedText)
	// No Authorization header: the client certificate is the credential.
	f(withCert, "", 200, "client/c/traces,metrics,logs")
	if got := rej.String(); got != strings.Repeat("unauthenticated,", 3)+"unauthenticated" {
		t.Errorf("rejects %s", got)
	}
}

// TestGRPCIdentities: the same over gRPC, from metadata and from the TLS peer.
func TestGRPCIdentities(t *testing.T) {
	pki := newTestPKI(t)
	g := NewGRPC("127.0.0.1:0")
	g.TLS = &tlsconfig.Server{Common: tlsconfig.Common{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, ClientCAFile: pki.CAFile}
	g.Auth = &Auth{
		Tokens:      []TokenAuth{{Name: "team-a", Token: "token-a", Grant: Grant{Tenant: "a", Signals: []string{"logs"}}}},
		Basic:       []BasicAuth{{Username: "alice", PasswordHash: secret.String(hash(t, "wonderland"))}},
		ClientCerts: []CertAuth{{CommonName: "client", DNSName: "localhost", Grant: Grant{Tenant: "c"}}},
	}
	addr := serveGRPC(t, g)
	creds := credentials.NewTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}})
	who := func(authorization string) (string, error) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := context.Background()
		if authorization != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authorization)
		}
		out := &otlpgrpc.Raw{}
		err = conn.Invoke(ctx, "/vigil.test.Echo/Who", &otlpgrpc.Raw{}, out, grpc.ForceCodecV2(otlpgrpc.Codec{}))
		return string(out.Bytes), err
	}
	for _, c := range []struct{ auth, want string }{
		{"Bearer token-a", "team-a/a/logs"},
		{basic("alice", "wonderland"), "alice//traces,metrics,logs"},
		{"", "localhost/c/traces,metrics,logs"},
	} {
		if got, err := who(c.auth); err != nil || got != c.want {
			t.Errorf("authorization %q: %q %v, want %q", c.auth, got, err, c.want)
		}
	}
	if _, err := who("Bearer nope"); status.Code(err) != codes.Unauthenticated || strings.Contains(err.Error(), "nope") {
		t.Errorf("a wrong token: %v", err)
	}
	// A certificate the entries do not name, and no token: refused.
	g2 := NewGRPC("127.0.0.1:0")
	g2.Auth = &Auth{Tokens: []TokenAuth{{Token: "t"}}}
	addr2 := serveGRPC(t, g2)
	conn, err := grpc.NewClient(addr2, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Invoke(context.Background(), "/vigil.test.Echo/Who", &otlpgrpc.Raw{}, &otlpgrpc.Raw{}, grpc.ForceCodecV2(otlpgrpc.Codec{})); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credentials: %v", err)
	}
}

// TestStampTenant: the identity's tenant replaces whatever the sender wrote, on every resource;
// without a tenant, or without auth, the data is left alone.
func TestStampTenant(t *testing.T) {
	td := ptrace.NewTraces()
	for range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("tenant.id", "forged")
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("s")
	}
	raw, err := batch.FromTraces(td).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := StampTenant(context.Background(), b); err != nil || !b.IsEncoded() {
		t.Fatalf("without auth: %v, encoded %v", err, b.IsEncoded())
	}
	ctx := WithIdentity(context.Background(), newIdentity("x", Grant{Tenant: "team-a"}, "tenant.id"))
	if err := StampTenant(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Traces()
	for _, rs := range got.ResourceSpans().All() {
		if v, _ := rs.Resource().Attributes().Get("tenant.id"); v.Str() != "team-a" {
			t.Errorf("tenant.id %q, want team-a", v.Str())
		}
	}
}
