package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// gRPC listener defaults.
const (
	DefaultMaxRecvMsgSizeMiB = 16
	// DefaultKeepaliveMinTime lets clients ping every 10s without being cut off: gRPC's own
	// default (5m) sends GOAWAY "too_many_pings" to exporters configured with a short keepalive.
	DefaultKeepaliveMinTime = 10 * time.Second
)

// GRPC is a gRPC listener's settings, with the OpenTelemetry Collector's key names (configgrpc).
// Start from NewGRPC.
type GRPC struct {
	Endpoint string `yaml:"endpoint"`
	// Transport is "tcp" (the default; the only one supported).
	Transport string            `yaml:"transport"`
	TLS       *tlsconfig.Server `yaml:"tls"`
	Auth      *Auth             `yaml:"auth"`
	// MaxRecvMsgSizeMiB bounds a message, before and after decompression; larger ones get
	// RESOURCE_EXHAUSTED. 0 means DefaultMaxRecvMsgSizeMiB.
	MaxRecvMsgSizeMiB    int       `yaml:"max_recv_msg_size_mib"`
	MaxConcurrentStreams uint32    `yaml:"max_concurrent_streams"` // per connection; 0: gRPC's default
	ReadBufferSize       int       `yaml:"read_buffer_size"`       // 0: gRPC's default
	WriteBufferSize      int       `yaml:"write_buffer_size"`      // 0: gRPC's default
	Keepalive            Keepalive `yaml:"keepalive"`
}

// Keepalive is the keepalive: block; zero durations mean gRPC's defaults.
type Keepalive struct {
	ServerParameters  KeepaliveServerParameters  `yaml:"server_parameters"`
	EnforcementPolicy KeepaliveEnforcementPolicy `yaml:"enforcement_policy"`
}

// KeepaliveServerParameters mirrors keepalive.ServerParameters. MaxConnectionAge makes clients
// reconnect now and then, which spreads them over gateway replicas behind a load balancer.
type KeepaliveServerParameters struct {
	MaxConnectionIdle     time.Duration `yaml:"max_connection_idle"`
	MaxConnectionAge      time.Duration `yaml:"max_connection_age"`
	MaxConnectionAgeGrace time.Duration `yaml:"max_connection_age_grace"`
	Time                  time.Duration `yaml:"time"`
	Timeout               time.Duration `yaml:"timeout"`
}

// KeepaliveEnforcementPolicy mirrors keepalive.EnforcementPolicy.
type KeepaliveEnforcementPolicy struct {
	MinTime             time.Duration `yaml:"min_time"`
	PermitWithoutStream bool          `yaml:"permit_without_stream"`
}

// NewGRPC returns the default settings for a listener on endpoint.
func NewGRPC(endpoint string) GRPC {
	return GRPC{
		Endpoint:          endpoint,
		Transport:         "tcp",
		MaxRecvMsgSizeMiB: DefaultMaxRecvMsgSizeMiB,
		Keepalive: Keepalive{EnforcementPolicy: KeepaliveEnforcementPolicy{
			MinTime:             DefaultKeepaliveMinTime,
			PermitWithoutStream: true,
		}},
	}
}

// Validate checks the settings without touching the network or the file system.
func (g *GRPC) Validate() error {
	errs := []error{validateEndpoint(g.Endpoint)}
	if g.Transport != "" && g.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("transport: only \"tcp\" is supported, got %q", g.Transport))
	}
	if g.MaxRecvMsgSizeMiB < 0 || g.MaxRecvMsgSizeMiB > 2047 {
		errs = append(errs, fmt.Errorf("max_recv_msg_size_mib: must be from 0 (default %d) to 2047, got %d",
			DefaultMaxRecvMsgSizeMiB, g.MaxRecvMsgSizeMiB))
	}
	if g.ReadBufferSize < 0 {
		errs = append(errs, fmt.Errorf("read_buffer_size: must be >= 0, got %d", g.ReadBufferSize))
	}
	if g.WriteBufferSize < 0 {
		errs = append(errs, fmt.Errorf("write_buffer_size: must be >= 0, got %d", g.WriteBufferSize))
	}
	sp, ep := g.Keepalive.ServerParameters, g.Keepalive.EnforcementPolicy
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"server_parameters.max_connection_idle", sp.MaxConnectionIdle},
		{"server_parameters.max_connection_age", sp.MaxConnectionAge},
		{"server_parameters.max_connection_age_grace", sp.MaxConnectionAgeGrace},
		{"server_parameters.time", sp.Time},
		{"server_parameters.timeout", sp.Timeout},
		{"enforcement_policy.min_time", ep.MinTime},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("keepalive.%s: must be >= 0, got %s", d.name, d.v))
		}
	}
	if g.TLS != nil {
		errs = append(errs, Prefix("tls", g.TLS.Validate()))
	}
	if g.Auth != nil {
		errs = append(errs, Prefix("auth", g.Auth.Validate()))
	}
	return errors.Join(errs...)
}

// MaxRecvMsgSize is the effective message limit in bytes.
func (g *GRPC) MaxRecvMsgSize() int {
	if g.MaxRecvMsgSizeMiB > 0 {
		return g.MaxRecvMsgSizeMiB << 20
	}
	return DefaultMaxRecvMsgSizeMiB << 20
}

// Listen opens the listener; TLS is applied by the credentials in ServerOptions.
func (g *GRPC) Listen() (net.Listener, error) {
	return net.Listen("tcp", g.Endpoint)
}

// ServerOptions returns the options for grpc.NewServer: TLS credentials, the message size limit,
// keepalive, and authentication. Certificates are read here.
//
// Authentication runs as a tap handle (grpc.InTapHandle), not an interceptor: it sees the
// headers before gRPC reads and decompresses the message, so an unauthenticated client cannot
// make the server do that work, and it covers every service and streaming calls too. gRPC allows
// one tap handle per server, so callers must not add another.
func (g *GRPC) ServerOptions(opts ...Option) ([]grpc.ServerOption, error) {
	o := makeOptions(opts)
	sp, ep := g.Keepalive.ServerParameters, g.Keepalive.EnforcementPolicy
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(g.MaxRecvMsgSize()),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     sp.MaxConnectionIdle,
			MaxConnectionAge:      sp.MaxConnectionAge,
			MaxConnectionAgeGrace: sp.MaxConnectionAgeGrace,
			Time:                  sp.Time,
			Timeout:               sp.Timeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             ep.MinTime,
			PermitWithoutStream: ep.PermitWithoutStream,
		}),
		// Requests run on long-lived goroutines (one per core; gRPC starts a goroutine of its own
		// only when all are busy), whose stacks have already grown to what decompressing and
		// scanning a request needs: a fresh goroutine per request grew and copied its stack
		// every time (5% of a relay's CPU at 100 requests/s).
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	if g.TLS != nil {
		cfg, err := g.TLS.Load()
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	if g.MaxConcurrentStreams > 0 {
		sopts = append(sopts, grpc.MaxConcurrentStreams(g.MaxConcurrentStreams))
	}
	if g.ReadBufferSize > 0 {
		sopts = append(sopts, grpc.ReadBufferSize(g.ReadBufferSize))
	}
	if g.WriteBufferSize > 0 {
		sopts = append(sopts, grpc.WriteBufferSize(g.WriteBufferSize))
	}
	if check := g.Auth.verifier(); check != nil {
		sopts = append(sopts, grpc.InTapHandle(authTap(check, o.onReject)))
	}
	return sopts, nil
}

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid bearer token")

func authTap(check func(string) bool, onReject func(string)) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		for _, v := range info.Header.Get("authorization") {
			if check(v) {
				return ctx, nil
			}
		}
		onReject(ReasonUnauthenticated)
		return ctx, errUnauthenticated
	}
}
