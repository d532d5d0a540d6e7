package server

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// testPKI is a throw-away CA with a server certificate for 127.0.0.1/localhost and a client
// certificate, written as PEM files into a test's temporary directory.
type testPKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	Pool                                                 *x509.CertPool
	Client                                               tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	later := time.Now().Add(time.Hour)
	caPEM, _, ca, caKey := tlstest.IssueNamed(t, 1, "vigil test CA", true, nil, nil, later)
	p := testPKI{CAFile: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	tlstest.Replace(t, p.CAFile, caPEM)
	leaf := func(serial int64, name string) (certFile, keyFile string, pair tls.Certificate) {
		crt, key, _, _ := tlstest.IssueNamed(t, serial, name, false, ca, caKey, later)
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		tlstest.Replace(t, certFile, crt)
		tlstest.Replace(t, keyFile, key)
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, pair
	}
	p.ServerCert, p.ServerKey, _ = leaf(2, "server")
	p.ClientCert, p.ClientKey, p.Client = leaf(3, "client")
	return p
}
