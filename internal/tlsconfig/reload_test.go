package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

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
	c1, k1, _, _ := tlstest.Issue(t, 1, false, nil, nil)
	tlstest.Replace(t, certFile, c1)
	tlstest.Replace(t, keyFile, k1)
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
	c2, k2, _, _ := tlstest.Issue(t, 2, false, nil, nil)
	tlstest.Replace(t, keyFile, k2)
	tlstest.Replace(t, certFile, c2)
	if s := serial(); s != 2 {
		t.Errorf("after the renewal: serial %d, want 2", s)
	}
	tlstest.Replace(t, certFile, []byte("half-written"))
	if s := serial(); s != 2 {
		t.Errorf("after a bad write: serial %d, want the last good one, 2", s)
	}

	// Mutual TLS: a client of a CA the listener does not trust yet is refused, then taken
	// once the CA file holds its CA.
	tlstest.Replace(t, certFile, c2)
	caA, _, _, _ := tlstest.Issue(t, 10, true, nil, nil)
	caB, _, caBCert, caBKey := tlstest.Issue(t, 20, true, nil, nil)
	tlstest.Replace(t, caFile, caA)
	mcfg, err := (&Server{Common: Common{CertFile: certFile, KeyFile: keyFile}, ClientCAFile: caFile}).Load()
	if err != nil {
		t.Fatal(err)
	}
	maddr := serve(t, mcfg)
	cc, ck, _, _ := tlstest.Issue(t, 21, false, caBCert, caBKey)
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
	tlstest.Replace(t, caFile, caB)
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
	c1, k1, _, _ := tlstest.Issue(t, 1, false, nil, nil)
	tlstest.Replace(t, certFile, c1)
	tlstest.Replace(t, keyFile, k1)
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
	c2, k2, _, _ := tlstest.Issue(t, 2, false, nil, nil)
	tlstest.Replace(t, keyFile, k2)
	tlstest.Replace(t, certFile, c2)
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
	_, _, ca, caKey := tlstest.Issue(t, 100, true, nil, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	old, oldKey, _, _ := tlstest.IssueUntil(t, 101, false, ca, caKey, time.Now().Add(-time.Hour))
	tlstest.Replace(t, certFile, old)
	tlstest.Replace(t, keyFile, oldKey)
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
	renewed, renewedKey, _, _ := tlstest.Issue(t, 102, false, ca, caKey)
	tlstest.Replace(t, keyFile, renewedKey)
	tlstest.Replace(t, certFile, renewed)
	if err := dial(); err != nil {
		t.Errorf("after the renewal: %v", err)
	}
}

// TestVerifyingChecksNameAndChain: the config that verifies with ca_file at each handshake
// still does what the standard verification does: the chain must lead to the file's CA and the
// certificate must name the host (or server_name_override); insecure_skip_verify skips both.
func TestVerifyingChecksNameAndChain(t *testing.T) {
	dir := t.TempDir()
	caPEM, _, ca, caKey := tlstest.Issue(t, 1, true, nil, nil)
	crt, key, _, _ := tlstest.Issue(t, 2, false, ca, caKey) // for 127.0.0.1, ::1 and localhost
	otherCA, _, _, _ := tlstest.Issue(t, 3, true, nil, nil)
	caFile, otherFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "other.crt")
	tlstest.Replace(t, caFile, caPEM)
	tlstest.Replace(t, otherFile, otherCA)
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{pair}})
	for _, tc := range []struct {
		name   string
		client Client
		host   string
		ok     bool
	}{
		{"the CA, the IP", Client{Common: Common{CAFile: caFile}}, "127.0.0.1", true},
		{"a name the certificate lacks", Client{Common: Common{CAFile: caFile}}, "vigil.example", false},
		{"server_name_override it has", Client{Common: Common{CAFile: caFile}, ServerNameOverride: "localhost"}, "vigil.example", true},
		{"another CA", Client{Common: Common{CAFile: otherFile}}, "127.0.0.1", false},
		{"insecure_skip_verify", Client{Common: Common{CAFile: otherFile}, InsecureSkipVerify: true}, "vigil.example", true},
	} {
		d, err := tc.client.Dynamic()
		if err != nil {
			t.Fatal(err)
		}
		cfg := d.Verifying(tc.host).Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = tc.host // as net/http's transport sets it
		}
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake error %v, want success %v", tc.name, err, tc.ok)
		}
	}
}
