package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/sender"
)

type exporter struct {
	set      component.Settings
	cfg      *Config
	md       metadata.MD
	callOpts []grpc.CallOption
	sender   *sender.Sender
	splitter *Splitter
	conn     atomic.Pointer[grpc.ClientConn] // set by Start, taken by Shutdown
}

var _ component.Exporter = (*exporter)(nil)

var errNotStarted = errors.New("exporter not started")

func newExporter(set component.Settings, cfg *Config) (*exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	e := &exporter{
		set: set,
		cfg: cfg,
		md:  cfg.Client.Metadata(),
		// The raw codec hands the batch's encoded bytes to gRPC as the message: nothing is
		// decoded or re-encoded on the way out.
		callOpts: append(cfg.Client.CallOptions(), grpc.ForceCodecV2(otlpgrpc.Codec{})),
	}
	sp, err := NewSplitter(set, Type, cfg.MaxRequestBytes, cfg.Sender.Timeout, e.export)
	if err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	e.splitter = sp
	s, err := sender.New(set, cfg.Sender, e.send, sender.TimeoutPerRequest())
	if err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	e.sender = s
	return e, nil
}

// Start creates the connection, which gRPC makes lazily on the first export, so an unreachable
// backend does not hold up the agent's start.
func (e *exporter) Start(ctx context.Context, _ component.Host) error {
	conn, err := e.cfg.Client.NewConn()
	if err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	if err := e.sender.Start(ctx); err != nil {
		_ = conn.Close()
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	e.conn.Store(conn)
	target, useTLS := e.cfg.Client.Target()
	e.set.Logger.Info("exporter started", "endpoint", target, "tls", useTLS,
		"compression", string(e.cfg.Client.Compression), "headers", slices.Sorted(maps.Keys(e.cfg.Client.Headers)))
	return nil
}

// Shutdown drains the sender, then closes the connection.
func (e *exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	if conn := e.conn.Swap(nil); conn != nil {
		err = errors.Join(err, conn.Close())
	}
	return err
}

// Consume hands b to the sender.
func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	return e.sender.Consume(ctx, b)
}

// send is one export attempt: one request, or several when b is over max_request_bytes or the
// backend refuses it as too large (Splitter).
func (e *exporter) send(ctx context.Context, b *batch.Batch) error {
	if e.conn.Load() == nil {
		return consumererror.NewRetryable(errNotStarted, 0)
	}
	return e.splitter.Send(ctx, b)
}

// export sends b as one request.
func (e *exporter) export(ctx context.Context, b *batch.Batch) error {
	conn := e.conn.Load()
	if conn == nil {
		return consumererror.NewRetryable(errNotStarted, 0)
	}
	parts, err := b.EncodedParts() // a batch of several requests goes out without joining them
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	if len(e.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, e.md)
	}
	var resp otlpgrpc.Raw
	if err := conn.Invoke(ctx, otlpgrpc.Method(b.Signal()), &otlpgrpc.Raw{Parts: parts}, &resp, e.callOpts...); err != nil {
		return fmt.Errorf("export %s: %w", b.Signal(), classify(err))
	}
	if resp.Refused {
		// A receiver in this process holds its whole budget: the response was not read.
		e.set.Logger.Debug("export response not read: decompression budget exhausted")
		return nil
	}
	p, err := PartialSuccess(b.Signal(), resp.Bytes, false)
	if err != nil {
		// The backend said OK; an unreadable response body does not make the data undelivered.
		e.set.Logger.Debug("ignoring unreadable export response", "error", err.Error())
		return nil
	}
	if p != nil {
		return p
	}
	return nil
}
