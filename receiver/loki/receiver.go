// Package loki is the receiver of Loki's push API (POST /loki/api/v1/push): JSON, optionally
// gzip-compressed, and protobuf compressed with snappy, as promtail, Grafana Alloy and Docker's
// Loki driver send. Each stream becomes a resource whose attributes are the stream's labels;
// each entry a log record, its structured metadata the record's attributes.
package loki

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/loki"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/server"
)

// Type is the receiver's type name in config.
const Type = "loki"

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

// Reasons for vigil_receiver_loki_rejected_requests_total.
const (
	reasonMalformed        = "malformed"
	reasonOverLimit        = "over_limit"
	reasonTooLarge         = server.ReasonTooLarge
	reasonUnsupportedMedia = "unsupported_media_type"
	reasonMethod           = "method_not_allowed"
	reasonInFlight         = server.ReasonInFlightLimit
)

// TenantAttribute is the resource attribute that carries the request's X-Scope-OrgID.
const TenantAttribute = "loki.tenant_id"

type receiver struct {
	set      component.Settings
	cfg      Config
	next     component.Consumer
	rejected *prometheus.CounterVec
	budget   *server.Budget
	now      func() time.Time

	run        server.Runner
	collectors *selftelemetry.Running
}

func newReceiver(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	r := &receiver{set: set, cfg: *cfg, now: time.Now}
	for sig, c := range next {
		if sig != batch.Logs {
			return nil, fmt.Errorf("receiver %s: the Loki push API carries logs only, not %s", set.ID, sig)
		}
		r.next = c
	}
	if r.next == nil {
		return nil, fmt.Errorf("receiver %s: no logs pipeline", set.ID)
	}
	rej, err := selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_loki_rejected_requests_total",
		Help: "Loki push requests the receiver refused before they reached a pipeline, by reason.",
	}, []string{"reason"}))
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	for _, reason := range []string{reasonMalformed, reasonOverLimit, reasonTooLarge, reasonUnsupportedMedia, reasonMethod, reasonInFlight} {
		rej.WithLabelValues(reason)
	}
	r.rejected = rej
	r.budget = server.NewBudget(cfg.inFlightLimit())
	return r, nil
}

// Start opens the listener, so that a taken port fails start-up, then serves in the background.
func (r *receiver) Start(_ context.Context, host component.Host) error {
	err := r.run.Start(&r.cfg.HTTP, func() *http.Server {
		return r.cfg.HTTP.NewServer(r,
			server.OnReject(func(reason string) { r.rejected.WithLabelValues(reason).Inc() }),
			server.ErrorLog(r.set.Logger),
			server.WithBudget(r.budget))
	}, func(err error) { host.ReportFatal(fmt.Errorf("receiver %s: %w", r.set.ID, err)) })
	if err != nil {
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	r.collectors = selftelemetry.RegisterRunning(r.set.Registerer, r.set.Logger, r.budget.Metrics("http")...)
	r.set.Logger.Info("Loki push receiver listening", "endpoint", r.run.Addr(), "path", Path)
	return nil
}

// Shutdown stops accepting and lets requests in flight get the pipeline's answer until ctx ends.
func (r *receiver) Shutdown(ctx context.Context) error {
	stopped, err := r.run.Shutdown(ctx)
	if stopped {
		r.collectors.Unregister()
	}
	if err != nil {
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	return nil
}

// Addr is the listener's address ("" before Start).
func (r *receiver) Addr() string { return r.run.Addr() }

func (r *receiver) reject(w http.ResponseWriter, reason string, code int, msg string) {
	r.rejected.WithLabelValues(reason).Inc()
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	http.Error(w, msg, code)
}

// ServeHTTP answers push requests.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != Path {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		r.reject(w, reasonMethod, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed: use POST")
		return
	}
	if !server.Authorize(req.Context(), batch.Logs) {
		r.reject(w, server.ReasonForbidden, http.StatusForbidden, server.ErrForbiddenText)
		return
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	enc := strings.ToLower(req.Header.Get("Content-Encoding"))
	isJSON := mt == "application/json"
	switch {
	case isJSON && (enc == "" || enc == "gzip"):
	case mt == "application/x-protobuf" && (enc == "" || enc == "snappy"):
	case mt == "" && enc == "":
		// Loki reads a body without Content-Type as snappy protobuf.
	default:
		r.reject(w, reasonUnsupportedMedia, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q with Content-Encoding %q: use application/json (optionally gzip) or application/x-protobuf (snappy)", req.Header.Get("Content-Type"), enc))
		return
	}
	lease := server.LeaseOf(req)
	defer lease.Done()
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			r.reject(w, reasonTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", mbe.Limit))
		case errors.Is(err, server.ErrInFlightLimit):
			r.busy(w)
		default:
			r.reject(w, reasonMalformed, http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return
	}
	body, code, err := r.decompress(raw, isJSON, enc, lease)
	if err != nil {
		switch code {
		case http.StatusTooManyRequests:
			r.busy(w)
		case http.StatusRequestEntityTooLarge:
			r.reject(w, reasonTooLarge, code, err.Error())
		default:
			r.reject(w, reasonMalformed, code, err.Error())
		}
		return
	}
	lim := loki.Limits{MaxLineBytes: r.cfg.MaxLineBytes, MaxLabels: r.cfg.MaxLabels,
		MaxLabelNameLength: r.cfg.MaxLabelNameLength, MaxLabelValueLength: r.cfg.MaxLabelValueLength,
		MaxMetadataEntries: r.cfg.MaxStructuredMetadataEntries, MaxMetadataBytes: r.cfg.MaxStructuredMetadataSize}
	var streams []loki.Stream
	if isJSON {
		streams, err = loki.DecodeJSON(body, lim)
	} else {
		streams, err = loki.DecodeProto(body, lim)
	}
	if err != nil {
		reason := reasonMalformed
		if errors.Is(err, loki.ErrTooMany) {
			reason = reasonOverLimit
		}
		r.set.Logger.Debug("push request refused", "error", err)
		r.reject(w, reason, http.StatusBadRequest, err.Error())
		return
	}
	ld := r.toLogs(streams, req.Header.Get("X-Scope-OrgID"))
	lease.Done()
	if ld.LogRecordCount() == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b := batch.FromLogs(ld)
	if err := server.StampTenant(req.Context(), b); err != nil {
		r.reject(w, reasonMalformed, http.StatusBadRequest, err.Error())
		return
	}
	if err := r.next.Consume(req.Context(), b); err != nil {
		server.AnswerConsumeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decompress returns the request's uncompressed body, charging it to the request's lease.
func (r *receiver) decompress(raw []byte, isJSON bool, enc string, lease *server.Lease) ([]byte, int, error) {
	max := r.cfg.MaxDecompressedBodySize
	switch {
	case isJSON && enc == "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip: %w", err)
		}
		var out bytes.Buffer
		n, err := out.ReadFrom(io.LimitReader(zr, int64(max)+1))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip: %w", err)
		}
		if n > int64(max) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over %d bytes decompressed (max_decompressed_body_size)", max)
		}
		if !lease.TryAcquire(n) {
			return nil, http.StatusTooManyRequests, server.ErrInFlightLimit
		}
		return out.Bytes(), 0, nil
	case isJSON:
		return raw, 0, nil
	}
	if n, err := snappy.DecodedLen(raw); err == nil && n <= max && !lease.TryAcquire(int64(n)) {
		return nil, http.StatusTooManyRequests, server.ErrInFlightLimit
	}
	body, err := promrw.Decode(nil, raw, max)
	if err != nil {
		if errors.Is(err, promrw.ErrTooLarge) {
			return nil, http.StatusRequestEntityTooLarge, err
		}
		return nil, http.StatusBadRequest, err
	}
	return body, 0, nil
}

// toLogs turns streams into logs: a resource per stream, its labels as attributes (and
// service_name as service.name), a record per entry, its structured metadata as attributes.
func (r *receiver) toLogs(streams []loki.Stream, tenant string) plog.Logs {
	ld := plog.NewLogs()
	now := pcommon.NewTimestampFromTime(r.now())
	for _, s := range streams {
		if len(s.Entries) == 0 {
			continue
		}
		rl := ld.ResourceLogs().AppendEmpty()
		attrs := rl.Resource().Attributes()
		for _, l := range s.Labels {
			attrs.PutStr(l.Name, l.Value)
		}
		if v, ok := attrs.Get("service_name"); ok {
			if _, has := attrs.Get("service.name"); !has {
				attrs.PutStr("service.name", v.Str())
			}
		}
		if tenant != "" {
			attrs.PutStr(TenantAttribute, tenant)
		}
		recs := rl.ScopeLogs().AppendEmpty().LogRecords()
		recs.EnsureCapacity(len(s.Entries))
		for _, e := range s.Entries {
			lr := recs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Timestamp))
			lr.SetObservedTimestamp(now)
			lr.Body().SetStr(e.Line)
			for _, m := range e.Metadata {
				lr.Attributes().PutStr(m.Name, m.Value)
			}
		}
	}
	return ld
}

// busy refuses a request that does not fit the budget of bytes in flight; clients retry 429.
func (r *receiver) busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(server.RetryAfterBusy/time.Second)))
	r.reject(w, reasonInFlight, http.StatusTooManyRequests, server.ErrInFlightLimit.Error())
}
