package syslog

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/tlsconfig"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// selfSigned writes a self-signed certificate and key for 127.0.0.1 and returns their paths and
// a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	crt, key, cert, _ := tlstest.IssueNamed(t, 1, "syslog-test", true, nil, nil, time.Now().Add(time.Hour))
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	tlstest.Replace(t, certFile, crt)
	tlstest.Replace(t, keyFile, key)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: RFC 5425, syslog over TLS with octet counting; a plaintext client is refused by the
// handshake and nothing of it arrives.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := NewConfig()
	cfg.TCP = &Listener{Endpoint: "127.0.0.1:0", TLS: &tlsconfig.Server{Common: tlsconfig.Common{CertFile: certFile, KeyFile: keyFile}}}
	snk := &componenttest.Sink{}
	r := startWith(t, cfg, snk)

	plain, err := net.Dial("tcp", r.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(plain, "<14>1 - - - - - - plaintext\n")
	plain.Close()

	c, err := tls.Dial("tcp", r.TCPAddr(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	msg := "<14>1 2026-12-03T10:00:00Z host app - - - over TLS"
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	c.Close()
	recs := records(t, snk, 1)
	if recs[0].Body().Str() != "over TLS" {
		t.Errorf("body %q", recs[0].Body().Str())
	}
}

// TestCertAuth: with tcp.auth, only the clients a client_certs entry names are read, their
// tenant is stamped on what they send, and the others are closed and counted: one without a
// certificate, one whose certificate no entry names, and one whose grant leaves out logs.
func TestCertAuth(t *testing.T) {
	dir := t.TempDir()
	later := time.Now().Add(time.Hour)
	caPEM, _, ca, caKey := tlstest.IssueNamed(t, 1, "syslog test CA", true, nil, nil, later)
	srvCert, srvKey, _, _ := tlstest.IssueNamed(t, 2, "syslog server", false, ca, caKey, later)
	caFile, certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.Replace(t, caFile, caPEM)
	tlstest.Replace(t, certFile, srvCert)
	tlstest.Replace(t, keyFile, srvKey)
	client := func(serial int64, cn string) []tls.Certificate {
		c, k, _, _ := tlstest.IssueNamed(t, serial, cn, false, ca, caKey, later)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{pair}
	}
	cfg := NewConfig()
	cfg.TCP = &Listener{Endpoint: "127.0.0.1:0",
		TLS: &tlsconfig.Server{Common: tlsconfig.Common{CertFile: certFile, KeyFile: keyFile}, ClientCAFile: caFile},
		Auth: &server.Auth{ClientCerts: []server.CertAuth{
			{CommonName: "relay-a", Grant: server.Grant{Signals: []string{"logs"}, Tenant: "team-a"}},
			{CommonName: "tracer", Grant: server.Grant{Signals: []string{"traces"}}},
		}}}
	snk := &componenttest.Sink{}
	r := startWith(t, cfg, snk)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	send := func(certs []tls.Certificate, body string) {
		c, err := tls.Dial("tcp", r.TCPAddr(), &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		if err != nil {
			return // refused in the handshake (TLS 1.2, or no certificate)
		}
		msg := "<14>1 2026-12-03T10:00:00Z host app - - [origin tenant=\"team-b\"] " + body
		fmt.Fprintf(c, "%d %s", len(msg), msg)
		// Until the receiver closes it; one it read stays open, so a wrongly admitted client
		// moves on after a while and its message counts against the one expected below.
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Read(make([]byte, 1))
		c.Close()
	}
	send(nil, "no certificate")
	send(client(3, "stranger"), "not named")
	send(client(4, "tracer"), "traces only")
	send(client(5, "relay-a"), "admitted")
	recs := records(t, snk, 1)
	if recs[0].Body().Str() != "admitted" {
		t.Fatalf("body %q, want only the admitted client's message", recs[0].Body().Str())
	}
	batches := snk.Batches()
	ld, err := batches[len(batches)-1].Logs()
	if err != nil {
		t.Fatal(err)
	}
	res := ld.ResourceLogs().At(0).Resource().Attributes()
	if v, ok := res.Get(server.DefaultTenantAttribute); !ok || v.Str() != "team-a" {
		t.Errorf("tenant attribute %v, want team-a", res.AsRaw())
	}
	for reason, want := range map[string]float64{"unauthenticated": 2, "forbidden": 1} {
		if got := testutil.ToFloat64(r.refused.WithLabelValues(reason)); got != want {
			t.Errorf("refused{reason=%q} = %v, want %v", reason, got, want)
		}
	}

	bad := NewConfig()
	bad.TCP = &Listener{Auth: &server.Auth{BearerToken: "x"}}
	bad.UDP = &Listener{Auth: &server.Auth{ClientCerts: []server.CertAuth{{CommonName: "a"}}}}
	err = bad.Validate()
	for _, want := range []string{"tcp.auth.bearer_token: not on this listener", "tcp.auth.client_certs: needs tls.client_ca_file", "udp.auth: a datagram carries no credential"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error %v, want %q", err, want)
		}
	}
}
