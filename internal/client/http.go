package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// HTTP is an HTTP client block, embedded inline by exporters. As with GRPC, the per-attempt
// timeout lives in the sender block beside it.
type HTTP struct {
	// Endpoint is a base URL, "https://host:4318" (exporters append their paths). The scheme
	// decides TLS: tls settings apply to https:// only.
	Endpoint    string                   `yaml:"endpoint"`
	TLS         tlsconfig.Client         `yaml:"tls"`
	Headers     map[string]secret.String `yaml:"headers"`
	Compression Compression              `yaml:"compression"`
	// ProxyURL overrides the HTTP(S)_PROXY environment variables.
	ProxyURL        string `yaml:"proxy_url"`
	ReadBufferSize  int    `yaml:"read_buffer_size"`
	WriteBufferSize int    `yaml:"write_buffer_size"`
	MaxIdleConns    int    `yaml:"max_idle_conns"`
	// MaxIdleConnsPerHost: 0 means max_idle_conns. Go's own default of 2 would make an exporter
	// with many consumers, all talking to one host, open and close connections all the time.
	MaxIdleConnsPerHost int           `yaml:"max_idle_conns_per_host"`
	MaxConnsPerHost     int           `yaml:"max_conns_per_host"`
	IdleConnTimeout     time.Duration `yaml:"idle_conn_timeout"`
	DisableKeepAlives   bool          `yaml:"disable_keep_alives"`
}

// NewHTTP returns otelcol's confighttp defaults: 100 idle connections kept for 90s, gzip.
func NewHTTP() HTTP {
	return HTTP{
		Compression:     Gzip,
		MaxIdleConns:    100,
		IdleConnTimeout: 90 * time.Second,
	}
}

// ValidateURL checks that s is an absolute http:// or https:// URL with a host. The error does
// not repeat the URL's user info, which may hold a password.
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("must be a URL such as https://host:4318")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must start with http:// or https://, got %q", redactURL(u))
	}
	if u.Host == "" {
		return fmt.Errorf("must name a host, got %q", redactURL(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not hold a query or fragment, got %q", redactURL(u))
	}
	return nil
}

func redactURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("redacted")
	return c.String()
}

// Validate checks the block. An empty endpoint is accepted: exporters that need one (most) say
// so in their own Validate, and some (otlphttp) accept per-signal URLs instead.
func (h *HTTP) Validate() error {
	var errs []error
	if h.Endpoint != "" {
		if err := ValidateURL(h.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoint: %w", err))
		}
	}
	if err := h.TLS.Validate(); err != nil {
		errs = append(errs, prefix("tls.", err))
	}
	for k, v := range h.Headers {
		if err := checkHTTPHeader(k, v.Value()); err != nil {
			errs = append(errs, fmt.Errorf("headers.%s: %w", k, err))
		}
	}
	if err := h.Compression.validate(); err != nil {
		errs = append(errs, err)
	}
	if h.ProxyURL != "" {
		if err := ValidateURL(h.ProxyURL); err != nil {
			errs = append(errs, fmt.Errorf("proxy_url: %w", err))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"read_buffer_size", h.ReadBufferSize},
		{"write_buffer_size", h.WriteBufferSize},
		{"max_idle_conns", h.MaxIdleConns},
		{"max_idle_conns_per_host", h.MaxIdleConnsPerHost},
		{"max_conns_per_host", h.MaxConnsPerHost},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %d", f.name, f.v))
		}
	}
	if h.IdleConnTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_conn_timeout: must be >= 0, got %s", h.IdleConnTimeout))
	}
	return errors.Join(errs...)
}

// checkHTTPHeader applies RFC 9110: a token name, a value without control characters other than
// tab. The value is never quoted: it may be a secret.
func checkHTTPHeader(k, v string) error {
	if k == "" {
		return errors.New("header name must not be empty")
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return fmt.Errorf("header name holds %q, which is not allowed in a header name", k[i])
		}
	}
	switch http.CanonicalHeaderKey(k) {
	case "Content-Type", "Content-Encoding", "Content-Length", "Host", "Transfer-Encoding":
		return errors.New("this header is set by the exporter and cannot be configured")
	}
	for i := 0; i < len(v); i++ {
		if (v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f {
			return errors.New("value must not hold control characters")
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// SetHeaders writes the configured headers into h, revealing the secret values: use it only on
// an outgoing request.
func (h *HTTP) SetHeaders(dst http.Header) {
	for k, v := range h.Headers {
		dst.Set(k, v.Value())
	}
}

// NewClient builds the *http.Client. It has no overall timeout: the sender bounds each attempt
// with a context. TLS files are read here.
func (h *HTTP) NewClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc := h.TLS
	tc.Insecure = false // the URL scheme decides between plaintext and TLS
	dyn, err := tc.Dynamic()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	host := ""
	if u, err := url.Parse(h.Endpoint); err == nil {
		host = u.Hostname()
	}
	// One config for every connection, direct or through a proxy: with ca_file, it verifies
	// the server with the CA file as it is at each handshake.
	tr.TLSClientConfig = dyn.Verifying(host)
	tr.ForceAttemptHTTP2 = true
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if h.ProxyURL != "" {
		u, err := url.Parse(h.ProxyURL)
		if err != nil {
			return nil, errors.New("proxy_url: not a URL")
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tr.MaxIdleConns = h.MaxIdleConns
	tr.MaxIdleConnsPerHost = h.MaxIdleConnsPerHost
	if tr.MaxIdleConnsPerHost == 0 {
		tr.MaxIdleConnsPerHost = h.MaxIdleConns
	}
	tr.MaxConnsPerHost = h.MaxConnsPerHost
	tr.IdleConnTimeout = h.IdleConnTimeout
	tr.DisableKeepAlives = h.DisableKeepAlives
	if h.ReadBufferSize > 0 {
		tr.ReadBufferSize = h.ReadBufferSize
	}
	if h.WriteBufferSize > 0 {
		tr.WriteBufferSize = h.WriteBufferSize
	}
	return &http.Client{Transport: tr}, nil
}

// MaxRetryAfter keeps an absurd Retry-After from overflowing a Duration; senders cap the wait
// far lower anyway.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
// Zero means none was given, or it named the past.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// Redact hides the password of a URL for logs.
func Redact(u string) string {
	if u == "" {
		return ""
	}
	if p, err := url.Parse(u); err == nil && p.User != nil {
		p.User = nil
		return p.String()
	}
	return u
}
