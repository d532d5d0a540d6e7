package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/server"
)

// Reasons for vigil_receiver_otlp_rejected_requests_total.
const (
	reasonMalformed        = "malformed"
	reasonTooLarge         = server.ReasonTooLarge
	reasonUnauthenticated  = server.ReasonUnauthenticated
	reasonUnsupportedMedia = "unsupported_media_type"
	reasonMethod           = "method_not_allowed"
	reasonInFlight         = server.ReasonInFlightLimit
	reasonForbidden        = server.ReasonForbidden
	reasonOverLimit        = "over_limit"
)

// otlp is the receiver. One instance serves every pipeline that names it: next holds the
// consumer of each signal in use, and requests for other signals are answered as unknown.
type otlp struct {
	set      component.Settings
	cfg      Config
	next     [batch.Logs + 1]component.Consumer // indexed by signal; nil: no pipeline
	paths    map[string]batch.Signal            // HTTP path → signal, for signals in use
	maxBody  int64
	rejected *prometheus.CounterVec
	// Budgets of bytes in flight, one per listener (nil when the protocol is off).
	grpcBudget, httpBudget *server.Budget
	// Precomputed answers: an empty Export…ServiceResponse in each encoding.
	emptyProto [batch.Logs + 1]*otlpgrpc.Raw
	emptyJSON  [batch.Logs + 1][]byte

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	grpcAddr string
	httpAddr string
	serving  sync.WaitGroup
	// While running: the budget gauges, and the charge of gRPC decompression to grpcBudget.
	collectors *selftelemetry.Running
	uncharge   func()
}

var _ component.Component = (*otlp)(nil)

func newOTLP(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*otlp, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	r := &otlp{set: set, cfg: *cfg}
	for sig, c := range next {
		if sig < batch.Traces || sig > batch.Logs {
			return nil, fmt.Errorf("receiver %s: unsupported signal %s", set.ID, sig)
		}
		if c == nil {
			return nil, fmt.Errorf("receiver %s: nil consumer for %s", set.ID, sig)
		}
		r.next[sig] = c
	}
	if g := cfg.Protocols.GRPC; g != nil {
		r.grpcBudget = server.NewBudget(g.InFlightLimit())
	}
	if h := cfg.Protocols.HTTP; h != nil {
		r.httpBudget = server.NewBudget(h.InFlightLimit())
		r.maxBody = h.MaxBodySize()
		r.paths = map[string]batch.Signal{}
		for sig, p := range map[batch.Signal]string{
			batch.Traces: h.TracesURLPath, batch.Metrics: h.MetricsURLPath, batch.Logs: h.LogsURLPath,
		} {
			if r.next[sig] != nil {
				r.paths[urlPath(p)] = sig
			}
		}
	}
	for _, sig := range batch.Signals {
		b, err := emptyResponse(sig, false)
		if err != nil {
			return nil, err
		}
		r.emptyProto[sig] = &otlpgrpc.Raw{Bytes: b}
		if r.emptyJSON[sig], err = emptyResponse(sig, true); err != nil {
			return nil, err
		}
	}
	var err error
	if r.rejected, err = registerRejected(set.Registerer, cfg); err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	return r, nil
}

func registerRejected(reg prometheus.Registerer, cfg *Config) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_otlp_rejected_requests_total",
		Help: "Requests the OTLP receiver refused before they reached a pipeline, by protocol and reason.",
	}, []string{"protocol", "reason"})
	c, err := selftelemetry.Register(reg, c)
	if err != nil {
		return nil, err
	}
	// Create the series up front so that rate() over them works from the first scrape.
	if cfg.Protocols.GRPC != nil {
		for _, reason := range []string{reasonMalformed, reasonOverLimit, reasonTooLarge, reasonUnauthenticated, reasonForbidden, reasonInFlight} {
			c.WithLabelValues("grpc", reason)
		}
	}
	if cfg.Protocols.HTTP != nil {
		for _, reason := range []string{reasonMalformed, reasonOverLimit, reasonTooLarge, reasonUnauthenticated, reasonForbidden, reasonUnsupportedMedia, reasonMethod, reasonInFlight} {
			c.WithLabelValues("http", reason)
		}
	}
	return c, nil
}

func (r *otlp) reject(protocol, reason string) {
	r.rejected.WithLabelValues(protocol, reason).Inc()
}

// limits are what each request is held to beyond its size.
func (r *otlp) limits() batch.Limits {
	return batch.Limits{MaxAttributes: r.cfg.MaxAttributesPerItem, MaxAttributeBytes: r.cfg.MaxAttributeBytes}
}

// refusalReason is the rejected counter's reason for a request that did not decode or scan.
func refusalReason(err error) string {
	if errors.Is(err, batch.ErrLimit) {
		return reasonOverLimit
	}
	return reasonMalformed
}

// registerBudgets registers the budget gauges while the receiver runs: a receiver that is built
// but never started leaves no series behind.
func (r *otlp) registerBudgets() {
	var cs []prometheus.Collector
	if r.grpcSrv != nil {
		cs = append(cs, r.grpcBudget.Metrics("grpc")...)
	}
	if r.httpSrv != nil {
		cs = append(cs, r.httpBudget.Metrics("http")...)
	}
	r.collectors = selftelemetry.RegisterRunning(r.set.Registerer, r.set.Logger, cs...)
}

// Start opens the listeners, so that a taken port fails start-up, then serves in the background.
func (r *otlp) Start(_ context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return fmt.Errorf("receiver %s: already started", r.set.ID)
	}
	var (
		grpcL, httpL net.Listener
		err          error
	)
	if g := r.cfg.Protocols.GRPC; g != nil {
		opts, err := g.ServerOptions(server.OnReject(func(reason string) { r.reject("grpc", reason) }),
			server.WithBudget(r.grpcBudget))
		if err != nil {
			return fmt.Errorf("receiver %s: protocols.grpc: %w", r.set.ID, err)
		}
		if grpcL, err = g.Listen(); err != nil {
			return fmt.Errorf("receiver %s: protocols.grpc: %w", r.set.ID, err)
		}
		r.grpcSrv = r.newGRPCServer(opts)
	}
	if h := r.cfg.Protocols.HTTP; h != nil {
		if httpL, err = h.Listen(); err != nil {
			if grpcL != nil {
				grpcL.Close()
				r.grpcSrv.Stop()
				r.grpcSrv = nil
			}
			return fmt.Errorf("receiver %s: protocols.http: %w", r.set.ID, err)
		}
		r.httpSrv = h.NewServer(r,
			server.OnReject(func(reason string) { r.reject("http", reason) }),
			server.WriteError(r.writeServerError),
			server.ErrorLog(r.set.Logger),
			server.WithBudget(r.httpBudget))
	}
	r.started = true
	if r.grpcSrv != nil {
		r.uncharge = otlpgrpc.ChargeDecompression(r.grpcBudget)
	}
	r.registerBudgets()
	if grpcL != nil {
		r.grpcAddr = server.Addr(grpcL)
		r.serve(host, "grpc", func() error {
			if err := r.grpcSrv.Serve(grpcL); !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil
		})
	}
	if httpL != nil {
		r.httpAddr = server.Addr(httpL)
		r.serve(host, "http", func() error {
			if err := r.httpSrv.Serve(httpL); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	r.set.Logger.Info("OTLP receiver listening", "grpc", r.grpcAddr, "http", r.httpAddr)
	return nil
}

func (r *otlp) serve(host component.Host, protocol string, serve func() error) {
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		if err := serve(); err != nil {
			host.ReportFatal(fmt.Errorf("receiver %s: %s server: %w", r.set.ID, protocol, err))
		}
	}()
}

// Shutdown stops accepting, lets requests in flight finish (their clients get the pipeline's
// answer) until ctx ends, then closes what is left.
func (r *otlp) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	first := r.started && !r.stopped
	r.stopped = true
	gs, hs := r.grpcSrv, r.httpSrv
	r.mu.Unlock()
	if !first {
		return nil
	}
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			// As for gRPC below: close the connections, do not wait for stuck handlers.
			hs.Close()
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
	}
	if gs != nil {
		done := make(chan struct{})
		go func() {
			gs.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			// Stop closes the connections and cancels the calls' contexts. It does not wait for
			// handlers, and neither does Shutdown: a consumer that ignores its context finishes
			// (and GracefulStop returns) in the background.
			gs.Stop()
			errs = append(errs, fmt.Errorf("grpc: %w", ctx.Err()))
		}
	}
	r.serving.Wait()
	if r.uncharge != nil {
		r.uncharge()
	}
	r.collectors.Unregister()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("receiver %s: shutdown: %w", r.set.ID, err)
	}
	return nil
}

// GRPCAddr is the address the gRPC listener is bound to, for clients to dial ("" when off or
// not started). Tests use it with port 0.
func (r *otlp) GRPCAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grpcAddr
}

// HTTPAddr is the HTTP listener's address; see GRPCAddr.
func (r *otlp) HTTPAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpAddr
}
