// Package tlstest makes throw-away certificates for tests: CAs and leaves for 127.0.0.1, as
// PEM, and writes files the way Kubernetes updates a mounted Secret.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// Issue makes a certificate with the given serial, signed by parent (self-signed when nil), and
// returns it with its key, both as PEM, and the parsed certificate. It is for 127.0.0.1, ::1
// and localhost, for servers and clients.
func Issue(t *testing.T, serial int64, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, []byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return IssueUntil(t, serial, ca, parent, parentKey, time.Now().Add(time.Hour))
}

// IssueUntil is Issue with the certificate's end of validity.
func IssueUntil(t *testing.T, serial int64, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notAfter time.Time) ([]byte, []byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return IssueNamed(t, serial, "vigil reload test", ca, parent, parentKey, notAfter)
}

// IssueNamed is IssueUntil with the certificate's common name.
func IssueNamed(t *testing.T, serial int64, commonName string, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notAfter time.Time) ([]byte, []byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
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

// Replace writes data to path the way Kubernetes updates a mounted Secret: a new file renamed
// over the old one.
func Replace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}
