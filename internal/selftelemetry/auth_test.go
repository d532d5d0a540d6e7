package selftelemetry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths and a pool
// that trusts it.
func selfSigned(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	cert, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	_ = os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return cert, keyFile, pool
}

// TestListenerTLSAndAuth: with tls and auth, /metrics and the other paths need a token over
// TLS, while /healthz and /readyz answer probes without one.
func TestListenerTLSAndAuth(t *testing.T) {
	cert, key, pool := selfSigned(t)
	h := NewHealth()
	h.SetReady(true)
	s, err := Listen(Endpoint{Address: "127.0.0.1:0",
		TLS:  &tlsconfig.Server{Common: tlsconfig.Common{CertFile: cert, KeyFile: key}},
		Auth: &server.Auth{BearerToken: "scrape-token"}},
		New(Build{}), h, slog.New(slog.DiscardHandler), func(error) {},
		func(m *http.ServeMux) {
			m.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "reloaded") })
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	f := func(method, path, token string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+s.Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s with %q: %d, want %d", method, path, token, resp.StatusCode, want)
		}
	}
	f("GET", "/healthz", "", 200)
	f("GET", "/readyz", "", 200)
	f("GET", "/metrics", "", 401)
	f("GET", "/metrics", "wrong", 401)
	f("GET", "/metrics", "scrape-token", 200)
	f("POST", "/-/reload", "", 401)
	f("POST", "/-/reload", "scrape-token", 200)
	// Plain HTTP to the TLS listener gets nothing.
	if resp, err := http.Get("http://" + s.Addr() + "/metrics"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
		resp.Body.Close()
	}
}
