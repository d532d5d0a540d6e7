package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

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
	// MaxInFlightBytes bounds the bytes the listener holds for messages being received: as
	// sent, and what decompressing them produces. New calls get RESOURCE_EXHAUSTED (with
	// RetryInfo) while it is exhausted, and so does a message whose decompression does not fit.
	// 0 means the default (InFlightLimit).
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
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
	errs = append(errs, validateInFlight(g.MaxInFlightBytes, int64(g.MaxRecvMsgSize()), "max_recv_msg_size_mib"))
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
		errs = append(errs, Prefix("auth", g.Auth.Validate()), g.Auth.validateWithTLS(g.TLS != nil && g.TLS.ClientCAFile != ""))
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

// InFlightLimit is the effective max_in_flight_bytes: the configured value, or by default a
// quarter of the memory available to the process (its cgroup limit, GOMEMLIMIT or the machine's
// memory), at most 256 MiB and at least four times max_recv_msg_size_mib (and MinInFlight).
func (g *GRPC) InFlightLimit() int64 {
	if g.MaxInFlightBytes > 0 {
		return g.MaxInFlightBytes
	}
	return defaultInFlight(int64(g.MaxRecvMsgSize()))
}

// Listen opens the listener; TLS is applied by the credentials in ServerOptions.
func (g *GRPC) Listen() (net.Listener, error) {
	return net.Listen("tcp", g.Endpoint)
}

// ServerOptions returns the options for grpc.NewServer: TLS credentials, the message size limit,
// keepalive, authentication, admission by the budget (WithBudget) and a buffer pool that keeps
// no large buffers. Certificates are read here.
//
// Authentication and admission run as a tap handle (grpc.InTapHandle), not an interceptor: it
// sees the headers before gRPC reads and decompresses the message, so an unauthenticated client
// cannot make the server do that work, a call that arrives while the budget is exhausted is
// refused before its message is read, and it covers every service and streaming calls too. gRPC
// allows one tap handle per server, so callers must not add another.
//
// The budget is charged by the decompressors (internal/otlpgrpc.ChargeDecompression), which gRPC
// runs before any handler sees the message: the receiver registers it there.
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
		// Requests run on long-lived goroutines (gRPC starts a goroutine of its own only when
		// all are busy), whose stacks have already grown to what decompressing and scanning a
		// request needs: a fresh goroutine per request grew and copied its stack every time.
		// A handler waits for its data's acknowledgement (durable: until the exporter's queue
		// holds it, after the batch processor's timeout), so many are in flight at once: with
		// one worker per core most requests still fell back to a fresh goroutine (stack growth
		// 9.5% of a logs relay's CPU at 100 requests/s; 16 workers: +8% records per CPU-second,
		// median of 3 A/B runs). An idle worker holds its stack, a few KiB.
		grpc.NumStreamWorkers(uint32(max(16, runtime.GOMAXPROCS(0)))),
		experimental.BufferPool(boundedBufferPool{mem.DefaultBufferPool()}),
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
	if au := g.Auth.authenticator(); au != nil || o.budget != nil {
		sopts = append(sopts, grpc.InTapHandle(newTap(au, o.budget, o.onReject)))
	}
	return sopts, nil
}

// The answers to requests refused by auth say no more than that.
const (
	errUnauthenticatedText = "missing or invalid credentials"
	errForbiddenText       = "these credentials may not send this signal"
	// ErrForbiddenText is what a receiver answers (403) to an identity whose grant lacks the
	// signal (see Authorize).
	ErrForbiddenText = errForbiddenText
)

var (
	errUnauthenticated = status.Error(codes.Unauthenticated, errUnauthenticatedText)
	// ErrGRPCForbidden is the status of calls whose identity may not send their signal.
	ErrGRPCForbidden = status.Error(codes.PermissionDenied, errForbiddenText)
)

// ErrGRPCInFlightLimit is the status of calls refused for lack of budget: RESOURCE_EXHAUSTED,
// which OTLP clients retry when it carries RetryInfo, as it does.
var ErrGRPCInFlightLimit = func() error {
	st := status.New(codes.ResourceExhausted, ErrInFlightLimit.Error())
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfterBusy)}); err == nil {
		st = withInfo
	}
	return st.Err()
}()

// newTap checks credentials (au, when not nil) and puts the identity on the call's context,
// then admits the call if budget (when not nil) has room for at least a small message. It runs
// on the connection's reader with the transport's lock held: a bcrypt check of basic
// credentials runs there once per client, its result then cached.
func newTap(au *authenticator, budget *Budget, onReject func(string)) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if au != nil {
			var certs []*x509.Certificate
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
					certs = ti.State.PeerCertificates
				}
			}
			hs := info.Header.Get("authorization")
			if len(hs) == 0 {
				hs = []string{""} // certificates only
			}
			var id *Identity
			ok := false
			for _, h := range hs {
				if id, ok = au.authenticate(h, certs); ok {
					break
				}
			}
			if !ok {
				onReject(ReasonUnauthenticated)
				return ctx, errUnauthenticated
			}
			ctx = WithIdentity(ctx, id)
		}
		if budget != nil && budget.Available() < chunkedReservation {
			onReject(ReasonInFlightLimit)
			return ctx, ErrGRPCInFlightLimit
		}
		return ctx, nil
	}
}

// boundedBufferPool is gRPC's default pool of message buffers without its fallback pool, which
// keeps buffers of any size: a message of 16 MiB, or a bomb's decompressed chunks joined, would
// stay pinned for as long as traffic keeps the pool warm. Buffers over MaxPooledBuffer (gRPC's
// largest tier) are allocated for the message and left to the garbage collector.
type boundedBufferPool struct{ mem.BufferPool }

func (p boundedBufferPool) Get(n int) *[]byte {
	if n > MaxPooledBuffer {
		b := make([]byte, n)
		return &b
	}
	return p.BufferPool.Get(n)
}

func (p boundedBufferPool) Put(b *[]byte) {
	if cap(*b) > MaxPooledBuffer {
		return
	}
	p.BufferPool.Put(b)
}
