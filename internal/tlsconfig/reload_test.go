package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// issue makes a certificate with the given serial, signed by parent (self-signed when nil), and
// returns it with its key, both as PEM, and the parsed certificate.
func issue(t *testing.T, serial int64, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, []byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return issueUntil(t, serial, ca, parent, parentKey, time.Now().Add(time.Hour))
}

func issueUntil(t *testing.T, serial int64, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notAfter time.Time) ([]byte, []byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "vigil reload test"},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), c, key
}

// replace writes data to path the way Kubernetes updates a mounted Secret: a new file renamed
// over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// serve accepts TLS connections with cfg until the test ends, completing each handshake.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Read(make([]byte, 1)) // until the client closes
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestServerReloads: a listener serves a renewed certificate once its files change, without a
// restart; files that do not load keep the last good certificate; a new client CA takes effect
// the same way.
func TestServerReloads(t *testing.T) {
	reloadCheck = 0
	t.Cleanup(func() { reloadCheck = ReloadCheck })
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	c1, k1, _, _ := issue(t, 1, false, nil, nil)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	cfg, err := (&Server{Common: Common{CertFile: certFile, KeyFile: keyFile}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	c2, k2, _, _ := issue(t, 2, false, nil, nil)
	replace(t, keyFile, k2)
	replace(t, certFile, c2)
	if s := serial(); s != 2 {
		t.Errorf("after the renewal: serial %d, want 2", s)
	}
	replace(t, certFile, []byte("half-written"))
	if s := serial(); s != 2 {
		t.Errorf("after a bad write: serial %d, want the last good one, 2", s)
	}

	// Mutual TLS: a client of a CA the listener does not trust yet is refused, then taken
	// once the CA file holds its CA.
	replace(t, certFile, c2)
	caA, _, _, _ := issue(t, 10, true, nil, nil)
	caB, _, caBCert, caBKey := issue(t, 20, true, nil, nil)
	replace(t, caFile, caA)
	mcfg, err := (&Server{Common: Common{CertFile: certFile, KeyFile: keyFile}, ClientCAFile: caFile}).Load()
	if err != nil {
		t.Fatal(err)
	}
	maddr := serve(t, mcfg)
	cc, ck, _, _ := issue(t, 21, false, caBCert, caBKey)
	clientCert, err := tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	handshake := func() error {
		c, err := tls.Dial("tcp", maddr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}})
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server's verdict on the client certificate arrives with the first read.
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil // accepted: the server waits for data
		}
		return err
	}
	if err := handshake(); err == nil {
		t.Error("a client of an untrusted CA was accepted")
	}
	replace(t, caFile, caB)
	if err := handshake(); err != nil {
		t.Errorf("after the CA file changed: %v", err)
	}
}

// TestClientReloads: a client presents its renewed certificate at the next handshake.
func TestClientReloads(t *testing.T) {
	reloadCheck = 0
	t.Cleanup(func() { reloadCheck = ReloadCheck })
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	c1, k1, _, _ := issue(t, 1, false, nil, nil)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	cfg, err := (&Client{Common: Common{CertFile: certFile, KeyFile: keyFile}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	presented := func() int64 {
		c, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		x, _ := x509.ParseCertificate(c.Certificate[0])
		return x.SerialNumber.Int64()
	}
	if s := presented(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	c2, k2, _, _ := issue(t, 2, false, nil, nil)
	replace(t, keyFile, k2)
	replace(t, certFile, c2)
	if s := presented(); s != 2 {
		t.Errorf("after the renewal: serial %d, want 2", s)
	}
}

// TestExpiredCertificateReplaced: a listener serving an expired certificate fails verifying
// clients; once a valid one replaces it on disk, the next handshake verifies, with no restart.
func TestExpiredCertificateReplaced(t *testing.T) {
	reloadCheck = 0
	t.Cleanup(func() { reloadCheck = ReloadCheck })
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_, _, ca, caKey := issue(t, 100, true, nil, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	old, oldKey, _, _ := issueUntil(t, 101, false, ca, caKey, time.Now().Add(-time.Hour))
	replace(t, certFile, old)
	replace(t, keyFile, oldKey)
	cfg, err := (&Server{Common: Common{CertFile: certFile, KeyFile: keyFile}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	dial := func() error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
		if err == nil {
			c.Close()
		}
		return err
	}
	var invalid x509.CertificateInvalidError
	if err := dial(); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Fatalf("expired certificate: %v, want an expiry error", err)
	}
	renewed, renewedKey, _, _ := issue(t, 102, false, ca, caKey)
	replace(t, keyFile, renewedKey)
	replace(t, certFile, renewed)
	if err := dial(); err != nil {
		t.Errorf("after the renewal: %v", err)
	}
}
