package tlsconfig

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	f((&Server{}).Validate(), "cert_file: required")
	f((&Server{Common: Common{CertFile: "c", KeyFile: "k"}}).Validate(), "")
	f((&Client{Common: Common{CertFile: "c"}}).Validate(), "set both or neither")
	f((&Client{Common: Common{MinVersion: "1.1"}}).Validate(), `min_version: must be "1.2" or "1.3"`)
	f((&Client{Common: Common{MinVersion: "1.3"}}).Validate(), "")
}

func TestLoad(t *testing.T) {
	c := &Client{Insecure: true}
	if cfg, err := c.Load(); cfg != nil || err != nil {
		t.Errorf("insecure client must load to nil, got %v %v", cfg, err)
	}
	c = &Client{Common: Common{MinVersion: "1.3"}, ServerNameOverride: "example"}
	cfg, err := c.Load()
	if err != nil || cfg.MinVersion != 0x0304 || cfg.ServerName != "example" {
		t.Errorf("client tls = %+v, %v", cfg, err)
	}
	if cfg, err := (&Client{}).Load(); err != nil || cfg.MinVersion != 0x0303 {
		t.Errorf("default minimum must be TLS 1.2: %+v %v", cfg, err)
	}
	if _, err := (&Client{Common: Common{CAFile: "/nonexistent/ca.pem"}}).Load(); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
	if _, err := (&Server{Common: Common{CertFile: "/nonexistent", KeyFile: "/nonexistent"}}).Load(); err == nil {
		t.Error("missing cert must fail")
	}
}
