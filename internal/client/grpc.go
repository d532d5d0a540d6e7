package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor under its grpc-encoding name
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/vigilhq/vigil/internal/secret"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// GRPC is a gRPC client block. Exporters embed it inline, so its keys sit at the exporter's top
// level as in otelcol ("exporters.otlp.endpoint"). The per-attempt timeout is not here: it belongs
// to the sender (sender.Config.Timeout), which every exporter embeds beside this block.
type GRPC struct {
	// Endpoint is "host:port", optionally with a scheme:
	//   - "https://host:port" forces TLS (and contradicts tls.insecure: true);
	//   - "http://host:port" means plaintext, as the OTLP exporter specification reads it
	//     (and contradicts TLS settings such as ca_file);
	//   - a gRPC resolver target ("dns:///host:port", "unix:///path") is passed to gRPC as is.
	Endpoint string `yaml:"endpoint"`
	// TLS is on by default; tls: {insecure: true} sends plaintext.
	TLS         tlsconfig.Client         `yaml:"tls"`
	Headers     map[string]secret.String `yaml:"headers"`
	Compression Compression              `yaml:"compression"`
	Keepalive   *Keepalive               `yaml:"keepalive"`
	// BalancerName picks the gRPC load-balancing policy across the addresses the endpoint
	// resolves to: "round_robin" (default, as in otelcol) or "pick_first".
	BalancerName    string `yaml:"balancer_name"`
	WriteBufferSize int    `yaml:"write_buffer_size"`
	ReadBufferSize  int    `yaml:"read_buffer_size"`
	// Authority overrides the :authority pseudo-header (and the name TLS checks, unless
	// tls.server_name_override is set).
	Authority string `yaml:"authority"`
}

// Keepalive sends HTTP/2 pings on an idle connection so that dead peers and silently dropped
// connections (NAT, load balancers) are noticed before the next export hangs on them.
type Keepalive struct {
	Time                time.Duration `yaml:"time"`
	Timeout             time.Duration `yaml:"timeout"`
	PermitWithoutStream bool          `yaml:"permit_without_stream"`
}

// NewGRPC returns the defaults otelcol's OTLP exporter uses: gzip, round_robin, 512 KiB write
// buffer, TLS on.
func NewGRPC() GRPC {
	return GRPC{
		Compression:     Gzip,
		BalancerName:    "round_robin",
		WriteBufferSize: 512 << 10,
	}
}

// splitScheme returns the endpoint without an http:// or https:// prefix, and that scheme.
func (g *GRPC) splitScheme() (rest, scheme string) {
	for _, s := range []string{"http", "https"} {
		if r, ok := strings.CutPrefix(g.Endpoint, s+"://"); ok {
			return r, s
		}
	}
	return g.Endpoint, ""
}

// resolverSchemes are gRPC target schemes passed through untouched.
var resolverSchemes = []string{"dns:", "unix:", "unix-abstract:", "passthrough:"}

func (g *GRPC) validateEndpoint() error {
	if g.Endpoint == "" {
		return errors.New("endpoint: must be set, e.g. \"collector.example.com:4317\"")
	}
	rest, scheme := g.splitScheme()
	if scheme == "" {
		for _, s := range resolverSchemes {
			if strings.HasPrefix(rest, s) {
				return nil
			}
		}
	}
	if strings.Contains(rest, "/") {
		return fmt.Errorf("endpoint: a gRPC endpoint is host:port without a path, got %q", g.Endpoint)
	}
	if err := checkHostPort(rest); err != nil {
		return fmt.Errorf("endpoint: %w, got %q", err, g.Endpoint)
	}
	switch scheme {
	case "https":
		if g.TLS.Insecure {
			return errors.New("tls.insecure: true contradicts the https:// scheme of endpoint; drop one of them")
		}
	case "http":
		if g.TLS.CAFile != "" || g.TLS.CertFile != "" || g.TLS.InsecureSkipVerify || g.TLS.ServerNameOverride != "" {
			return errors.New("tls: settings given but the http:// scheme of endpoint means plaintext; use https:// or drop the tls settings")
		}
	}
	return nil
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return errors.New("must be host:port")
	}
	if host == "" {
		return errors.New("host must not be empty")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}

// Validate checks the block; paths are relative to the block (which exporters inline).
func (g *GRPC) Validate() error {
	var errs []error
	if err := g.validateEndpoint(); err != nil {
		errs = append(errs, err)
	}
	if err := g.TLS.Validate(); err != nil {
		errs = append(errs, prefix("tls.", err))
	}
	for k, v := range g.Headers {
		if err := checkMetadata(k, v.Value()); err != nil {
			errs = append(errs, fmt.Errorf("headers.%s: %w", k, err))
		}
	}
	if err := g.Compression.validate(); err != nil {
		errs = append(errs, err)
	}
	if ka := g.Keepalive; ka != nil {
		if ka.Time < 0 {
			errs = append(errs, fmt.Errorf("keepalive.time: must be >= 0, got %s", ka.Time))
		}
		if ka.Timeout < 0 {
			errs = append(errs, fmt.Errorf("keepalive.timeout: must be >= 0, got %s", ka.Timeout))
		}
	}
	switch g.BalancerName {
	case "", "round_robin", "pick_first":
	default:
		errs = append(errs, fmt.Errorf("balancer_name: must be round_robin or pick_first, got %q", g.BalancerName))
	}
	if g.WriteBufferSize < 0 {
		errs = append(errs, fmt.Errorf("write_buffer_size: must be >= 0, got %d", g.WriteBufferSize))
	}
	if g.ReadBufferSize < 0 {
		errs = append(errs, fmt.Errorf("read_buffer_size: must be >= 0, got %d", g.ReadBufferSize))
	}
	return errors.Join(errs...)
}

// checkMetadata applies gRPC's rules for metadata: keys of lowercase letters, digits and -_.
// (upper case is folded), not the reserved grpc- prefix; printable ASCII values unless the key
// ends in -bin. The value is never quoted in the error: it may be a secret.
func checkMetadata(k, v string) error {
	if k == "" {
		return errors.New("header name must not be empty")
	}
	lk := strings.ToLower(k)
	if strings.HasPrefix(lk, "grpc-") {
		return errors.New("header names starting with grpc- are reserved by gRPC")
	}
	for _, c := range lk {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("header name may hold only letters, digits, '-', '_' and '.', found %q", c)
		}
	}
	if strings.HasSuffix(lk, "-bin") {
		return nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return errors.New("value must be printable ASCII (use a -bin header for binary values)")
		}
	}
	return nil
}

// Target is the name handed to grpc.NewClient and whether the connection uses TLS.
func (g *GRPC) Target() (target string, useTLS bool) {
	rest, scheme := g.splitScheme()
	switch scheme {
	case "https":
		return rest, true
	case "http":
		return rest, false
	}
	return rest, !g.TLS.Insecure
}

// NewConn creates the client connection. grpc.NewClient does not dial: the connection is made on
// the first call and re-made in the background as needed, so this never blocks on the network.
// TLS files are read here; a missing file is an error.
func (g *GRPC) NewConn(extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	target, useTLS := g.Target()
	creds := insecure.NewCredentials()
	if useTLS {
		// Load returns nil when tls.insecure is set, which Validate rules out for https://.
		tc := g.TLS
		tc.Insecure = false
		dyn, err := tc.Dynamic()
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		creds = credentials.NewTLS(dyn.Config())
		if dyn.Reloads() {
			creds = &reloadingCreds{dyn: dyn}
		}
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(UserAgent),
	}
	if g.BalancerName != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, g.BalancerName)))
	}
	if g.WriteBufferSize > 0 {
		opts = append(opts, grpc.WithWriteBufferSize(g.WriteBufferSize))
	}
	if g.ReadBufferSize > 0 {
		opts = append(opts, grpc.WithReadBufferSize(g.ReadBufferSize))
	}
	if g.Authority != "" {
		opts = append(opts, grpc.WithAuthority(g.Authority))
	}
	if ka := g.Keepalive; ka != nil {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                ka.Time,
			Timeout:             ka.Timeout,
			PermitWithoutStream: ka.PermitWithoutStream,
		}))
	}
	conn, err := grpc.NewClient(target, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", g.Endpoint, err)
	}
	return conn, nil
}

// Metadata returns the configured headers as outgoing gRPC metadata (keys lower-cased).
// It reveals the secret values: attach it to a context, never log it.
func (g *GRPC) Metadata() metadata.MD {
	md := make(metadata.MD, len(g.Headers))
	for k, v := range g.Headers {
		md.Append(k, v.Value())
	}
	return md
}

// CallOptions returns the per-call options the block implies (compression).
func (g *GRPC) CallOptions() []grpc.CallOption {
	if g.Compression.IsNone() {
		return nil
	}
	return []grpc.CallOption{grpc.UseCompressor(string(g.Compression))}
}

// UserAgent identifies Vigil to backends.
const UserAgent = "vigil"

// prefix puts p in front of every error joined in err.
func prefix(p string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s%w", p, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s%w", p, err)
}

// reloadingCreds are TLS transport credentials whose CA follows ca_file: each handshake uses
// the config as it is then (tlsconfig.Dynamic).
type reloadingCreds struct {
	dyn *tlsconfig.Dynamic

	mu       sync.Mutex
	cfg      *tls.Config
	creds    credentials.TransportCredentials
	override string
}

func (r *reloadingCreds) current() credentials.TransportCredentials {
	cfg := r.dyn.Config()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg != r.cfg {
		r.cfg = cfg
		if r.override != "" {
			cfg = cfg.Clone()
			cfg.ServerName = r.override
		}
		r.creds = credentials.NewTLS(cfg)
	}
	return r.creds
}

func (r *reloadingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return r.current().ClientHandshake(ctx, authority, conn)
}

func (r *reloadingCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("client credentials cannot serve")
}

func (r *reloadingCreds) Info() credentials.ProtocolInfo { return r.current().Info() }

func (r *reloadingCreds) Clone() credentials.TransportCredentials {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &reloadingCreds{dyn: r.dyn, override: r.override}
}

// OverrideServerName is deprecated in grpc-go, and kept for what still calls it.
func (r *reloadingCreds) OverrideServerName(name string) error {
	r.mu.Lock()
	r.override, r.cfg = name, nil
	r.mu.Unlock()
	return nil
}
