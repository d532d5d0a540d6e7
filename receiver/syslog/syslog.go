// Package syslog is the syslog receiver: RFC 5424 and RFC 3164 messages over UDP (one per
// datagram) and TCP (octet counting or newline framing, RFC 6587), optionally over TLS
// (RFC 5425). Each message becomes a log record.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/ratelog"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/syslog"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// Type is the receiver's type name in config.
const Type = "syslog"

// DefaultEndpoint is where a listener without an endpoint listens: loopback, an unprivileged
// port.
const DefaultEndpoint = "127.0.0.1:5514"

// Config is the receiver's configuration: a TCP listener, a UDP one, or both.
type Config struct {
	TCP *Listener `yaml:"tcp"`
	UDP *Listener `yaml:"udp"`
	// MaxMessageBytes bounds a message (a frame on TCP, a datagram on UDP).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// FlushInterval and BatchSize bound how long and how many messages are gathered into one
	// batch.
	FlushInterval time.Duration `yaml:"flush_interval"`
	BatchSize     int           `yaml:"batch_size"`
}

// Listener is one socket.
type Listener struct {
	Endpoint string            `yaml:"endpoint"`
	TLS      *tlsconfig.Server `yaml:"tls"` // TCP only
	// Auth admits only the TLS clients whose certificate names a client_certs entry, and
	// stamps its tenant (TCP with tls.client_ca_file only: syslog has no other credential).
	Auth *server.Auth `yaml:"auth"`
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{MaxMessageBytes: 64 << 10, FlushInterval: 200 * time.Millisecond, BatchSize: 1000}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.TCP == nil && c.UDP == nil {
		errs = append(errs, errors.New("tcp, udp: set at least one (e.g. tcp: {endpoint: 127.0.0.1:5514})"))
	}
	for name, l := range map[string]*Listener{"tcp": c.TCP, "udp": c.UDP} {
		if l == nil {
			continue
		}
		if l.Endpoint == "" {
			l.Endpoint = DefaultEndpoint
		}
		if _, _, err := net.SplitHostPort(l.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: must be host:port, got %q", name, l.Endpoint))
		}
		if l.Auth != nil {
			switch {
			case name == "udp":
				errs = append(errs, errors.New("udp.auth: a datagram carries no credential; use tcp with tls and auth"))
			default:
				errs = append(errs, server.Prefix("tcp.auth", l.Auth.ValidateCertsOnly(l.TLS != nil && l.TLS.ClientCAFile != "")))
			}
		}
		if l.TLS != nil {
			if name == "udp" {
				errs = append(errs, errors.New("udp.tls: TLS is for TCP (RFC 5425); use tcp.tls"))
			} else if err := l.TLS.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("tcp.tls: %w", err))
			}
		}
	}
	if c.MaxMessageBytes < 480 || c.MaxMessageBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("max_message_bytes: 480 (RFC 5424's least) to 16 MiB, got %d", c.MaxMessageBytes))
	}
	if c.FlushInterval <= 0 || c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval and batch_size: must be > 0, got %s and %d", c.FlushInterval, c.BatchSize))
	}
	return errors.Join(errs...)
}

// NewFactory returns the factory.
func NewFactory() component.ReceiverFactory {
	return component.ReceiverFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Logs},
		NewConfig: func() component.Config { return NewConfig() },
		Create: func(set component.Settings, cfg component.Config, next map[batch.Signal]component.Consumer) (component.Component, error) {
			return newReceiver(set, cfg.(*Config), next)
		},
	}
}

type message struct {
	m        *syslog.Message
	received time.Time
	peer     string
	protocol string
	id       *server.Identity // the TLS client's, with tcp.auth; nil otherwise
}

type receiver struct {
	set  component.Settings
	cfg  Config
	next component.Consumer
	now  func() time.Time

	msgs      chan message
	malformed *prometheus.CounterVec
	dropped   prometheus.Counter
	refused   *prometheus.CounterVec
	badLog    ratelog.Limiter
	authLog   ratelog.Limiter
	certs     *server.CertIdentities // nil without tcp.auth

	tcp      net.Listener
	udp      net.PacketConn
	conns    sync.Map // net.Conn → struct{}
	stop     chan struct{}
	readers  sync.WaitGroup
	flusher  sync.WaitGroup
	stopOnce sync.Once
}

func newReceiver(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	r := &receiver{set: set, cfg: *cfg, now: time.Now, msgs: make(chan message, 4*cfg.BatchSize), stop: make(chan struct{}),
		badLog: ratelog.Limiter{Every: time.Minute}, authLog: ratelog.Limiter{Every: time.Minute}}
	if cfg.TCP != nil && cfg.TCP.Auth != nil {
		r.certs = cfg.TCP.Auth.CertIdentities()
	}
	for sig, c := range next {
		if sig != batch.Logs {
			return nil, fmt.Errorf("receiver %s: syslog carries logs only, not %s", set.ID, sig)
		}
		r.next = c
	}
	if r.next == nil {
		return nil, fmt.Errorf("receiver %s: no logs pipeline", set.ID)
	}
	var err error
	if r.malformed, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_syslog_malformed_messages_total",
		Help: "Syslog messages (or TCP frames) that could not be read, by protocol: dropped, the rest keeps flowing.",
	}, []string{"protocol"})); err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	if r.dropped, err = selftelemetry.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_receiver_syslog_dropped_datagrams_total",
		Help: "UDP messages dropped because the pipeline was not keeping up (UDP has no backpressure).",
	})); err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	if r.refused, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_syslog_refused_connections_total",
		Help: "TLS connections closed by tcp.auth, by reason: unauthenticated (no certificate, or one no client_certs entry names) or forbidden (its grant leaves out logs).",
	}, []string{"reason"})); err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	return r, nil
}

// Start opens the sockets, so that a taken port fails start-up.
func (r *receiver) Start(_ context.Context, host component.Host) error {
	if l := r.cfg.TCP; l != nil {
		ln, err := net.Listen("tcp", l.Endpoint)
		if err != nil {
			return fmt.Errorf("receiver %s: tcp: %w", r.set.ID, err)
		}
		if l.TLS != nil {
			tc, err := l.TLS.Load()
			if err != nil {
				ln.Close()
				return fmt.Errorf("receiver %s: tcp.tls: %w", r.set.ID, err)
			}
			ln = tls.NewListener(ln, tc)
		}
		r.tcp = ln
	}
	if l := r.cfg.UDP; l != nil {
		pc, err := net.ListenPacket("udp", l.Endpoint)
		if err != nil {
			if r.tcp != nil {
				r.tcp.Close()
			}
			return fmt.Errorf("receiver %s: udp: %w", r.set.ID, err)
		}
		r.udp = pc
	}
	r.flusher.Add(1)
	go r.flush()
	if r.tcp != nil {
		r.readers.Add(1)
		go r.acceptTCP(host)
	}
	if r.udp != nil {
		r.readers.Add(1)
		go r.readUDP()
	}
	r.set.Logger.Info("syslog receiver listening", "tcp", r.TCPAddr(), "udp", r.UDPAddr(), "tls", r.cfg.TCP != nil && r.cfg.TCP.TLS != nil)
	return nil
}

// TCPAddr and UDPAddr are the bound addresses ("" when not configured).
func (r *receiver) TCPAddr() string {
	if r.tcp == nil {
		return ""
	}
	return r.tcp.Addr().String()
}

func (r *receiver) UDPAddr() string {
	if r.udp == nil {
		return ""
	}
	return r.udp.LocalAddr().String()
}

// Shutdown closes the sockets and connections, then hands on what was read.
func (r *receiver) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		close(r.stop)
		if r.tcp != nil {
			r.tcp.Close()
		}
		if r.udp != nil {
			r.udp.Close()
		}
		r.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	})
	done := make(chan struct{})
	go func() {
		r.readers.Wait()
		close(r.msgs)
		r.flusher.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("receiver %s: shutdown: %w", r.set.ID, ctx.Err())
	}
}

func (r *receiver) acceptTCP(host component.Host) {
	defer r.readers.Done()
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			select {
			case <-r.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			host.ReportFatal(fmt.Errorf("receiver %s: tcp: %w", r.set.ID, err))
			return
		}
		r.conns.Store(c, struct{}{})
		r.readers.Add(1)
		go r.readTCP(c)
	}
}

// readTCP reads one connection's frames; a send blocks while the pipeline is behind, which
// pushes back on the sender through TCP.
func (r *receiver) readTCP(c net.Conn) {
	defer r.readers.Done()
	defer func() { r.conns.Delete(c); c.Close() }()
	peer := c.RemoteAddr().String()
	var id *server.Identity
	if r.certs != nil {
		var ok bool
		if id, ok = r.admit(c, peer); !ok {
			return
		}
	}
	f := syslog.NewFramer(c, r.cfg.MaxMessageBytes)
	for {
		frame, err := f.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.bad("tcp", peer, err)
			}
			return // a framing error leaves the stream unreadable: the connection ends
		}
		now := r.now()
		m, err := syslog.Parse(frame, now)
		if err != nil {
			r.bad("tcp", peer, err)
			continue
		}
		select {
		case r.msgs <- message{m: m, received: now, peer: peer, protocol: "tcp", id: id}:
		case <-r.stop:
			return
		}
	}
}

// admitHandshake bounds how long a client may take to complete its TLS handshake.
const admitHandshake = 10 * time.Second

// admit completes the TLS handshake and finds the client's identity; a client refused gets
// the connection closed and nothing else (syslog has no answer to send).
func (r *receiver) admit(c net.Conn, peer string) (*server.Identity, bool) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), admitHandshake)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		r.refuse("unauthenticated", peer, "", err)
		return nil, false
	}
	id, ok := r.certs.Identify(tc.ConnectionState().PeerCertificates)
	if !ok {
		r.refuse("unauthenticated", peer, "", errors.New("no client_certs entry names its certificate"))
		return nil, false
	}
	if !id.Allows(batch.Logs) {
		r.refuse("forbidden", peer, id.Name, errors.New("its grant leaves out logs"))
		return nil, false
	}
	return id, true
}

func (r *receiver) refuse(reason, peer, identity string, err error) {
	r.refused.WithLabelValues(reason).Inc()
	r.authLog.Warn(r.set.Logger, "syslog connection refused", "reason", reason, "peer", peer, "identity", identity, "error", err)
}

func (r *receiver) readUDP() {
	defer r.readers.Done()
	buf := make([]byte, r.cfg.MaxMessageBytes+1)
	for {
		n, addr, err := r.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		peer := addr.String()
		if n > r.cfg.MaxMessageBytes {
			r.bad("udp", peer, fmt.Errorf("%w: a datagram over %d bytes", syslog.ErrTooLong, r.cfg.MaxMessageBytes))
			continue
		}
		now := r.now()
		m, err := syslog.Parse(buf[:n], now)
		if err != nil {
			r.bad("udp", peer, err)
			continue
		}
		select {
		case r.msgs <- message{m: m, received: now, peer: peer, protocol: "udp"}:
		default:
			r.dropped.Inc()
		}
	}
}

func (r *receiver) bad(protocol, peer string, err error) {
	r.malformed.WithLabelValues(protocol).Inc()
	r.badLog.Warn(r.set.Logger, "syslog message dropped", "protocol", protocol, "peer", peer, "error", err)
}

// flush gathers messages into batches of batch_size, or what flush_interval collected.
func (r *receiver) flush() {
	defer r.flusher.Done()
	t := time.NewTicker(r.cfg.FlushInterval)
	defer t.Stop()
	var pending []message
	send := func() {
		if len(pending) == 0 {
			return
		}
		r.consume(pending)
		pending = pending[:0]
	}
	for {
		select {
		case m, ok := <-r.msgs:
			if !ok {
				send()
				return
			}
			pending = append(pending, m)
			if len(pending) >= r.cfg.BatchSize {
				send()
			}
		case <-t.C:
			send()
		}
	}
}

// consume hands a batch on, retrying while the pipeline asks to (the readers wait meanwhile),
// until it is taken, refused for good, or the receiver stops.
func (r *receiver) consume(ms []message) {
	ld := toLogs(ms)
	backoff := 100 * time.Millisecond
	for {
		err := r.next.Consume(context.Background(), batch.FromLogs(ld))
		if err == nil || consumererror.IsPermanent(err) {
			if err != nil {
				r.set.Logger.Warn("syslog messages refused by the pipeline", "messages", len(ms), "error", err)
			}
			return
		}
		select {
		case <-r.stop:
			r.set.Logger.Warn("syslog messages not handed on at shutdown", "messages", len(ms), "error", err)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Severity numbers of the eight syslog severities.
var severityNumbers = [8]plog.SeverityNumber{
	plog.SeverityNumberFatal4, plog.SeverityNumberFatal3, plog.SeverityNumberFatal, plog.SeverityNumberError,
	plog.SeverityNumberWarn, plog.SeverityNumberInfo2, plog.SeverityNumberInfo, plog.SeverityNumberDebug,
}

func toLogs(ms []message) plog.Logs {
	ld := plog.NewLogs()
	// One resource for the messages of no tenant, and one for each tenant (tcp.auth): the
	// tenant attribute is the identity's, whatever the message says.
	byTenant := map[string]plog.LogRecordSlice{}
	records := func(id *server.Identity) plog.LogRecordSlice {
		tenant := ""
		if id != nil {
			tenant = id.Tenant
		}
		recs, ok := byTenant[tenant]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			if tenant != "" {
				rl.Resource().Attributes().PutStr(id.TenantAttribute, tenant)
			}
			recs = rl.ScopeLogs().AppendEmpty().LogRecords()
			if len(byTenant) == 0 {
				recs.EnsureCapacity(len(ms))
			}
			byTenant[tenant] = recs
		}
		return recs
	}
	for _, msg := range ms {
		m := msg.m
		lr := records(msg.id).AppendEmpty()
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(msg.received))
		if !m.Timestamp.IsZero() {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(m.Timestamp))
		}
		lr.SetSeverityNumber(severityNumbers[m.Severity()])
		lr.SetSeverityText(syslog.Severities[m.Severity()])
		lr.Body().SetStr(m.Message)
		a := lr.Attributes()
		a.EnsureCapacity(9)
		a.PutInt("syslog.facility", int64(m.Facility()))
		a.PutInt("syslog.priority", int64(m.Priority))
		a.PutInt("syslog.version", int64(m.Version))
		a.PutStr("network.transport", msg.protocol)
		a.PutStr("network.peer.address", msg.peer)
		for _, kv := range [...][2]string{{"host.name", m.Hostname}, {"syslog.appname", m.AppName}, {"syslog.procid", m.ProcID}, {"syslog.msgid", m.MsgID}} {
			if kv[1] != "" {
				a.PutStr(kv[0], kv[1])
			}
		}
		if len(m.StructuredData) > 0 {
			sd := a.PutEmptyMap("syslog.structured_data")
			for id, params := range m.StructuredData {
				p := sd.PutEmptyMap(id)
				for k, v := range params {
					p.PutStr(k, v)
				}
			}
		}
	}
	return ld
}
