package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// HTTP listener defaults.
const (
	DefaultMaxRequestBodySize = 20 << 20
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultWriteTimeout       = 30 * time.Second
	DefaultIdleTimeout        = time.Minute
)

// HTTP is an HTTP listener's settings, with the OpenTelemetry Collector's key names
// (confighttp). Embed it inline in a receiver's config and start from NewHTTP.
type HTTP struct {
	Endpoint string `yaml:"endpoint"`
	// TLS, when present, serves HTTPS (HTTP/2 offered through ALPN).
	TLS  *tlsconfig.Server `yaml:"tls"`
	Auth *Auth             `yaml:"auth"`
	// MaxRequestBodySize bounds the body as sent, and receivers bound the decompressed body by
	// it too. 0 means DefaultMaxRequestBodySize.
	MaxRequestBodySize int64 `yaml:"max_request_body_size"`
	// ReadHeaderTimeout bounds reading the request headers; 0 means DefaultReadHeaderTimeout, so
	// that a slow client can never hold a connection without sending anything.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request; 0 means no limit.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds the time from the end of the headers to the end of the response,
	// handling included; 0 means no limit.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxInFlightBytes bounds the bytes the listener holds for requests in flight: bodies as
	// received plus what decompressing them produces. A request that does not fit gets 429 with
	// Retry-After, before its body is read. 0 means the default (InFlightLimit).
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
}

// NewHTTP returns the default settings for a listener on endpoint.
func NewHTTP(endpoint string) HTTP {
	return HTTP{
		Endpoint:           endpoint,
		MaxRequestBodySize: DefaultMaxRequestBodySize,
		ReadHeaderTimeout:  DefaultReadHeaderTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		IdleTimeout:        DefaultIdleTimeout,
	}
}

// Validate checks the settings without touching the network or the file system.
func (h *HTTP) Validate() error {
	errs := []error{validateEndpoint(h.Endpoint)}
	if h.MaxRequestBodySize < 0 {
		errs = append(errs, fmt.Errorf("max_request_body_size: must be >= 0 (0: %d bytes), got %d",
			DefaultMaxRequestBodySize, h.MaxRequestBodySize))
	}
	errs = append(errs, validateInFlight(h.MaxInFlightBytes, h.MaxBodySize(), "max_request_body_size"))
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read_header_timeout", h.ReadHeaderTimeout},
		{"read_timeout", h.ReadTimeout},
		{"write_timeout", h.WriteTimeout},
		{"idle_timeout", h.IdleTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %s", d.name, d.v))
		}
	}
	if h.TLS != nil {
		errs = append(errs, Prefix("tls", h.TLS.Validate()))
	}
	if h.Auth != nil {
		errs = append(errs, Prefix("auth", h.Auth.Validate()), h.Auth.validateWithTLS(h.TLS != nil && h.TLS.ClientCAFile != ""))
	}
	return errors.Join(errs...)
}

// MaxBodySize is the effective body limit in bytes.
func (h *HTTP) MaxBodySize() int64 {
	if h.MaxRequestBodySize > 0 {
		return h.MaxRequestBodySize
	}
	return DefaultMaxRequestBodySize
}

// InFlightLimit is the effective max_in_flight_bytes: the configured value, or by default a
// quarter of the memory available to the process (its cgroup limit, GOMEMLIMIT or the machine's
// memory), at most 256 MiB and at least four times max_request_body_size (and MinInFlight).
func (h *HTTP) InFlightLimit() int64 {
	if h.MaxInFlightBytes > 0 {
		return h.MaxInFlightBytes
	}
	return defaultInFlight(h.MaxBodySize())
}

// Listen opens the listener, wrapped in TLS when configured. Certificates are read here, so a
// bad file fails start-up rather than the first handshake.
func (h *HTTP) Listen() (net.Listener, error) {
	var cfg *tls.Config
	if h.TLS != nil {
		var err error
		if cfg, err = h.TLS.Load(); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		// http.Server.Serve speaks HTTP/2 on TLS connections that negotiated it.
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	l, err := net.Listen("tcp", h.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	return l, nil
}

// NewServer returns a server for handler, to Serve on the listener from Listen. Requests without
// valid credentials get 401 with WWW-Authenticate; requests declaring a body over the limit get
// 413 before anything is read; other bodies are cut off at the limit (reads then fail with
// *http.MaxBytesError, which the handler should answer with 413).
//
// With WithBudget, each request's body is reserved in the budget before the handler runs (see
// Lease); a request that does not fit gets 429 with Retry-After and its body is not read. Reads
// beyond the reservation of a body of undeclared length fail with ErrInFlightLimit, which the
// handler should answer with 429 as well.
func (h *HTTP) NewServer(handler http.Handler, opts ...Option) *http.Server {
	o := makeOptions(opts)
	srv := &http.Server{
		Handler:           h.wrap(handler, o),
		ReadHeaderTimeout: orDefault(h.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       orDefault(h.IdleTimeout, DefaultIdleTimeout),
	}
	if o.logger != nil {
		srv.ErrorLog = slog.NewLogLogger(o.logger.Handler(), slog.LevelDebug)
	}
	return srv
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (h *HTTP) wrap(next http.Handler, o options) http.Handler {
	limit := h.MaxBodySize()
	au := h.Auth.authenticator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if au != nil {
			var peer []*x509.Certificate
			if r.TLS != nil {
				peer = r.TLS.PeerCertificates
			}
			id, ok := au.authenticate(r.Header.Get("Authorization"), peer)
			if !ok {
				for _, s := range au.schemes {
					w.Header().Add("WWW-Authenticate", s)
				}
				o.onReject(ReasonUnauthenticated)
				o.writeError(w, r, http.StatusUnauthorized, errUnauthenticatedText)
				return
			}
			r = r.WithContext(WithIdentity(r.Context(), id))
		}
		if r.ContentLength > limit {
			o.onReject(ReasonTooLarge)
			o.writeError(w, r, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		r = r.WithContext(withClientAddr(r.Context(), r.RemoteAddr))
		if o.budget != nil {
			if !admit(o.budget, r) {
				o.onReject(ReasonInFlightLimit)
				w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfterBusy/time.Second)))
				o.writeError(w, r, http.StatusTooManyRequests, ErrInFlightLimit.Error())
				return
			}
			defer LeaseOf(r).Done()
		}
		next.ServeHTTP(w, r)
	})
}
