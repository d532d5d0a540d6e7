// Package tlsconfig turns the tls: blocks of listeners and clients into *tls.Config, with the key
// names the OpenTelemetry Collector uses so that existing configs carry over.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Common holds the settings listeners and clients share.
type Common struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	MinVersion string `yaml:"min_version"` // "1.2" (default) or "1.3"
	MaxVersion string `yaml:"max_version"`
}

// Server is a listener's tls: block. Present (non-nil) means TLS is on.
type Server struct {
	Common `yaml:",inline"`
	// ClientCAFile turns on mutual TLS: clients must present a certificate signed by this CA.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Client is an exporter's tls: block.
type Client struct {
	Common `yaml:",inline"`
	// Insecure sends plaintext (gRPC: no TLS at all). Off by default: TLS is the default.
	Insecure           bool   `yaml:"insecure"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerNameOverride string `yaml:"server_name_override"`
}

var versions = map[string]uint16{"": 0, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// Validate checks the block without reading files.
func (c *Common) Validate() error {
	var errs []error
	if _, ok := versions[c.MinVersion]; !ok {
		errs = append(errs, fmt.Errorf("min_version: must be \"1.2\" or \"1.3\", got %q", c.MinVersion))
	}
	if _, ok := versions[c.MaxVersion]; !ok {
		errs = append(errs, fmt.Errorf("max_version: must be \"1.2\" or \"1.3\", got %q", c.MaxVersion))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file: set both or neither"))
	}
	return errors.Join(errs...)
}

// Validate checks a server block: a listener needs a certificate.
func (s *Server) Validate() error {
	err := s.Common.Validate()
	if s.CertFile == "" {
		err = errors.Join(err, errors.New("cert_file: required when tls is set on a listener"))
	}
	return err
}

func (c *Common) base() (*tls.Config, *reloading[*tls.Certificate], error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if v := versions[c.MinVersion]; v != 0 {
		cfg.MinVersion = v
	}
	cfg.MaxVersion = versions[c.MaxVersion]
	if c.CertFile == "" {
		return cfg, nil, nil
	}
	kp, err := keyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	return cfg, kp, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Load builds the server's *tls.Config. The certificate and the client CA are read again when
// their files change (ReloadCheck), so that renewed ones are used without a restart.
func (s *Server) Load() (*tls.Config, error) {
	cfg, kp, err := s.base()
	if err != nil {
		return nil, err
	}
	if kp != nil {
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(), nil }
	}
	if s.ClientCAFile == "" {
		return cfg, nil
	}
	cas, err := pool(s.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("client_ca_file: %w", err)
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = cas.get()
	// The CA pool lives in the config, so a new pool needs a config of its own: one per pool,
	// made when the pool changes.
	var mu sync.Mutex
	byPool := cfg.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		p := cas.get()
		mu.Lock()
		defer mu.Unlock()
		if byPool.ClientCAs != p {
			byPool = byPool.Clone()
			byPool.ClientCAs = p
		}
		return byPool, nil
	}
	return cfg, nil
}

// Load builds the client's *tls.Config, or nil when Insecure asks for plaintext. The client
// certificate is asked for at each handshake, so a renewed one is used without a restart; the
// CA is read once (Dynamic follows it too).
func (c *Client) Load() (*tls.Config, error) {
	d, err := c.Dynamic()
	if err != nil || d == nil {
		return nil, err
	}
	return d.Config(), nil
}

// Dynamic is a client's TLS settings with the CA of ca_file followed: Config is the config for
// the next connection, made again when the CA file changed (ReloadCheck). A connection is only
// verified at its handshake, so a renewed CA applies to connections made after it.
type Dynamic struct {
	base *tls.Config
	cas  *reloading[*x509.CertPool] // nil without ca_file

	mu   sync.Mutex
	pool *x509.CertPool
	cfg  *tls.Config
}

// Dynamic loads the block's files; it returns nil when Insecure asks for plaintext.
func (c *Client) Dynamic() (*Dynamic, error) {
	if c.Insecure {
		return nil, nil
	}
	cfg, kp, err := c.base()
	if err != nil {
		return nil, err
	}
	if kp != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(), nil }
	}
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	cfg.ServerName = c.ServerNameOverride
	d := &Dynamic{base: cfg, cfg: cfg}
	if c.CAFile != "" {
		if d.cas, err = pool(c.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		d.pool = d.cas.get()
		d.cfg = cfg.Clone()
		d.cfg.RootCAs = d.pool
	}
	return d, nil
}

// Reloads reports whether Config can change (ca_file is set).
func (d *Dynamic) Reloads() bool { return d.cas != nil }

// Verifying is one config for every connection to host (the endpoint's host name or IP, or
// server_name_override when set) that verifies the server with the CA of ca_file as it is at
// each handshake. It suits a client that keeps one config for all its connections (net/http's
// transport, also through a proxy). Without ca_file it is Config.
func (d *Dynamic) Verifying(host string) *tls.Config {
	if d.cas == nil || d.base.InsecureSkipVerify {
		return d.cfg
	}
	name := d.base.ServerName
	if name == "" {
		name = host
	}
	cfg := d.base.Clone()
	// The standard verification, done here against the pool of the moment: chain to a root
	// of ca_file, for a server certificate, naming host.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: d.Config().RootCAs, DNSName: name, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		if err != nil {
			return fmt.Errorf("tls: failed to verify certificate: %w", err)
		}
		return nil
	}
	return cfg
}

// Config is the config to make a connection with; do not modify it (Clone it first).
func (d *Dynamic) Config() *tls.Config {
	if d.cas == nil {
		return d.cfg
	}
	p := d.cas.get()
	d.mu.Lock()
	defer d.mu.Unlock()
	if p != d.pool {
		d.pool = p
		d.cfg = d.base.Clone()
		d.cfg.RootCAs = p
	}
	return d.cfg
}
