package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths and a pool
// that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
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
	cfg.FlushInterval = 20 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	snk := &componenttest.Sink{}
	r, err := newReceiver(component.Settings{ID: component.ID{Type: Type}, Registerer: prometheus.NewRegistry()}, cfg,
		map[batch.Signal]component.Consumer{batch.Logs: snk})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()

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
