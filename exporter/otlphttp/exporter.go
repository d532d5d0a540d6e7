package otlphttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/exporter/otlp"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/sender"
)

type exporter struct {
	set         component.Settings
	cfg         *Config
	urls        map[batch.Signal]string
	json        bool
	contentType string
	sender      *sender.Sender
	splitter    *otlp.Splitter
	client      atomic.Pointer[http.Client] // set by Start, taken by Shutdown
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
		set:         set,
		cfg:         cfg,
		urls:        map[batch.Signal]string{},
		json:        cfg.Encoding == EncodingJSON,
		contentType: contentTypeProto,
	}
	if e.json {
		e.contentType = contentTypeJSON
	}
	for _, sig := range batch.Signals {
		e.urls[sig] = cfg.URL(sig)
	}
	sp, err := otlp.NewSplitter(set, Type, cfg.MaxRequestBytes, cfg.Sender.Timeout, e.export)
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

// Start builds the HTTP client; connections are made on the first export.
func (e *exporter) Start(ctx context.Context, _ component.Host) error {
	hc, err := e.cfg.Client.NewClient()
	if err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	if err := e.sender.Start(ctx); err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	e.client.Store(hc)
	e.set.Logger.Info("exporter started", "traces_url", client.Redact(e.urls[batch.Traces]),
		"metrics_url", client.Redact(e.urls[batch.Metrics]), "logs_url", client.Redact(e.urls[batch.Logs]),
		"encoding", e.cfg.Encoding, "compression", string(e.cfg.Client.Compression),
		"headers", slices.Sorted(maps.Keys(e.cfg.Client.Headers)))
	return nil
}

// Shutdown drains the sender, then closes idle connections.
func (e *exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	if hc := e.client.Swap(nil); hc != nil {
		hc.CloseIdleConnections()
	}
	return err
}

// Consume hands b to the sender.
func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	return e.sender.Consume(ctx, b)
}

// body returns the uncompressed request body. Protobuf is the batch's encoded form, shared and
// read-only; JSON needs the decoded form.
func (e *exporter) body(b *batch.Batch) ([]byte, error) {
	if !e.json {
		return b.Encoded()
	}
	return b.JSON()
}

// send is one export attempt: one request, or several when b is over max_request_bytes or the
// backend answers 413 (otlp.Splitter).
func (e *exporter) send(ctx context.Context, b *batch.Batch) error {
	if e.client.Load() == nil {
		return consumererror.NewRetryable(errNotStarted, 0)
	}
	return e.splitter.Send(ctx, b)
}

// export sends b as one request.
func (e *exporter) export(ctx context.Context, b *batch.Batch) error {
	hc := e.client.Load()
	if hc == nil {
		return consumererror.NewRetryable(errNotStarted, 0)
	}
	sig := b.Signal()
	target := e.urls[sig]
	if target == "" {
		return consumererror.NewPermanent(fmt.Errorf("no URL for %s: set endpoint or %s_endpoint", sig, sig))
	}
	raw, err := e.body(b)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("encode %s: %w", sig, err))
	}
	// Compressing on every attempt keeps no state between attempts; retries are the exception.
	payload := raw
	if c := e.cfg.Client.Compression; !c.IsNone() {
		if payload, err = c.Compress(make([]byte, 0, len(raw)/4), raw); err != nil {
			return consumererror.NewPermanent(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("User-Agent", client.UserAgent)
	e.cfg.Client.SetHeaders(req.Header) // after User-Agent, so that config can override it
	req.Header.Set("Content-Type", e.contentType)
	if !e.cfg.Client.Compression.IsNone() {
		req.Header.Set("Content-Encoding", string(e.cfg.Client.Compression))
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Connection refused, reset, TLS or timeout: all worth another try. net/http strips
		// any password from the URL in this error.
		return consumererror.NewRetryable(fmt.Errorf("export %s: %w", sig, err), 0)
	}
	defer func() {
		// Read a little more so the connection can be reused, but never a whole flood.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil && resp.StatusCode/100 != 2 {
		return consumererror.NewRetryable(fmt.Errorf("export %s: read response: %w", sig, err), 0)
	}
	return outcome(sig, resp, body, e.json, time.Now())
}
