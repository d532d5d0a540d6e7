package selftelemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Endpoint is where the listener binds and how it is protected: TLS (nil: plain) and auth
// (nil: none) for every path but the health probes.
type Endpoint struct {
	Address string
	TLS     *tlsconfig.Server
	Auth    *server.Auth
}

// Listen binds the endpoint and serves in the background; errors after start go to onFatal.
// Each of routes adds more paths (the alerting engine's query API).
func Listen(ep Endpoint, t *Telemetry, h *Health, logger *slog.Logger, onFatal func(error), routes ...func(*http.ServeMux)) (*Server, error) {
	addr := ep.Address
	var tc *tls.Config
	if ep.TLS != nil {
		var err error
		if tc, err = ep.TLS.Load(); err != nil {
			return nil, fmt.Errorf("self-telemetry listener: tls: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("self-telemetry listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", h.Healthz)
	mux.HandleFunc("GET /readyz", h.Readyz)
	for _, r := range routes {
		r(mux)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           ep.Auth.Require(mux, "/healthz", "/readyz"),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			onFatal(fmt.Errorf("self-telemetry listener: %w", err))
		}
	}()
	return s, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the listener.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}
