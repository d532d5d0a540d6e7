package prometheusremotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/server"
)

// Remote-write protocol names and headers (see the 1.0 and 2.0 specifications).
const (
	contentTypeProto = "application/x-protobuf"
	protoV1          = "prometheus.WriteRequest"
	protoV2          = "io.prometheus.write.v2.Request"

	headerSamples    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistograms = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplars  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// Reasons for vigil_receiver_prometheusremotewrite_rejected_requests_total.
const (
	reasonMalformed        = "malformed"
	reasonTooLarge         = server.ReasonTooLarge
	reasonUnauthenticated  = server.ReasonUnauthenticated
	reasonUnsupportedMedia = "unsupported_media_type"
	reasonMethod           = "method_not_allowed"
	reasonTooManySeries    = "too_many_series"
	reasonLimit            = "over_limit"
	reasonInFlight         = server.ReasonInFlightLimit
)

type receiver struct {
	set      component.Settings
	cfg      Config
	next     component.Consumer
	rejected *prometheus.CounterVec
	bufs     sync.Pool // *bytes.Buffer for compressed bodies
	budget   *server.Budget

	run server.Runner
	// The budget gauges, registered while the receiver runs.
	collectors *selftelemetry.Running
}

var _ component.Component = (*receiver)(nil)

func newReceiver(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	r := &receiver{set: set, cfg: *cfg}
	for sig, c := range next {
		if sig != batch.Metrics {
			return nil, fmt.Errorf("receiver %s: remote write carries metrics only, not %s", set.ID, sig)
		}
		r.next = c
	}
	if r.next == nil {
		return nil, fmt.Errorf("receiver %s: no metrics pipeline", set.ID)
	}
	rej, err := selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_prometheusremotewrite_rejected_requests_total",
		Help: "Remote-write requests the receiver refused before they reached a pipeline, by reason.",
	}, []string{"reason"}))
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	for _, reason := range []string{reasonMalformed, reasonTooLarge, reasonUnauthenticated, reasonUnsupportedMedia, reasonMethod, reasonTooManySeries, reasonLimit, reasonInFlight} {
		rej.WithLabelValues(reason)
	}
	r.rejected = rej
	r.budget = server.NewBudget(cfg.inFlightLimit())
	return r, nil
}

// Start opens the listener, so that a taken port fails start-up, then serves in the background.
func (r *receiver) Start(_ context.Context, host component.Host) error {
	if err := r.run.Start(&r.cfg.HTTP, r.newServer, func(err error) {
		host.ReportFatal(fmt.Errorf("receiver %s: %w", r.set.ID, err))
	}); err != nil {
		return fmt.Errorf("receiver %s: %w", r.set.ID, err)
	}
	r.collectors = selftelemetry.RegisterRunning(r.set.Registerer, r.set.Logger, r.budget.Metrics("http")...)
	r.set.Logger.Info("remote-write receiver listening", "endpoint", r.run.Addr(), "path", r.cfg.Path)
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

// Addr is the listener's address ("" before Start); tests use it with port 0.
func (r *receiver) Addr() string { return r.run.Addr() }

// version is the remote-write protocol of a request, from its Content-Type.
type version uint8

const (
	v1 version = iota + 1
	v2
)

// parseContentType follows the 2.0 specification: no Content-Type or a plain
// application/x-protobuf is 1.0; the proto parameter names the message otherwise.
func parseContentType(v string) (version, error) {
	if v == "" || v == contentTypeProto {
		return v1, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != contentTypeProto {
		return 0, fmt.Errorf("unsupported Content-Type %q: use %s (remote write 1.0) or %s;proto=%s (2.0)", v, contentTypeProto, contentTypeProto, protoV2)
	}
	switch params["proto"] {
	case "", protoV1:
		return v1, nil
	case protoV2:
		return v2, nil
	}
	return 0, fmt.Errorf("unsupported proto %q in Content-Type: use %s or %s", params["proto"], protoV1, protoV2)
}

// ServeHTTP answers remote-write POSTs.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != r.cfg.Path {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		r.reject(w, reasonMethod, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed: use POST")
		return
	}
	if !server.Authorize(req.Context(), batch.Metrics) {
		r.reject(w, server.ReasonForbidden, http.StatusForbidden, server.ErrForbiddenText)
		return
	}
	ver, err := parseContentType(req.Header.Get("Content-Type"))
	if err != nil {
		r.reject(w, reasonUnsupportedMedia, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	// Snappy is the only encoding either version defines; senders that leave the header out
	// still mean it.
	if enc := req.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		r.reject(w, reasonUnsupportedMedia, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Encoding %q: remote write uses snappy", enc))
		return
	}

	buf := r.getBuffer()
	// handOff gives the buffer back and releases the request's share of the budget once the
	// batch holds what it needs (or the request is refused): from then on the memory limiter
	// accounts for the data.
	lease := server.LeaseOf(req)
	handOff := func() {
		if buf != nil {
			r.putBuffer(buf)
			buf = nil
		}
		lease.Done()
	}
	defer handOff()
	if _, err := buf.ReadFrom(req.Body); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			r.reject(w, reasonTooLarge, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is over the limit of %d bytes", mbe.Limit))
		case errors.Is(err, server.ErrInFlightLimit):
			r.busy(w)
		default:
			r.reject(w, reasonMalformed, http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return
	}
	// The decoded length is declared up front: charge it before decoding allocates it, unless
	// it is over the limit, which Decode refuses for good.
	if n, err := snappy.DecodedLen(buf.Bytes()); err == nil && n <= r.cfg.MaxDecompressedBodySize && !lease.TryAcquire(int64(n)) {
		r.busy(w)
		return
	}
	// The decoded body becomes the batch's, so it is not pooled.
	body, err := promrw.Decode(nil, buf.Bytes(), r.cfg.MaxDecompressedBodySize)
	if err != nil {
		if errors.Is(err, promrw.ErrTooLarge) {
			r.reject(w, reasonTooLarge, http.StatusRequestEntityTooLarge, err.Error())
		} else {
			r.reject(w, reasonMalformed, http.StatusBadRequest, err.Error())
		}
		return
	}

	var (
		b      *batch.Batch
		counts promrw.Counts
	)
	if ver == v1 {
		b, counts, err = fromV1(body, r.cfg.limits())
	} else {
		b, counts, err = fromV2(body, r.cfg.limits())
	}
	handOff()
	if errors.Is(err, promrw.ErrLimit) {
		r.reject(w, reasonLimit, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		r.set.Logger.Debug("malformed remote-write request", "error", err)
		r.reject(w, reasonMalformed, http.StatusBadRequest, err.Error())
		return
	}
	if max := r.cfg.MaxSeriesPerRequest; max > 0 && counts.Series > max {
		r.reject(w, reasonTooManySeries, http.StatusBadRequest,
			fmt.Sprintf("request holds %d series, over the limit of %d (max_series_per_request)", counts.Series, max))
		return
	}
	if err := server.StampTenant(req.Context(), b); err != nil {
		r.reject(w, reasonMalformed, http.StatusBadRequest, err.Error())
		return
	}
	if err := r.next.Consume(req.Context(), b); err != nil {
		server.AnswerConsumeError(w, err)
		return
	}
	if ver == v2 {
		h := w.Header()
		h.Set(headerSamples, strconv.Itoa(counts.Samples))
		h.Set(headerHistograms, strconv.Itoa(counts.Histograms))
		h.Set(headerExemplars, strconv.Itoa(counts.Exemplars))
	}
	w.WriteHeader(http.StatusNoContent)
}

// fromV1 validates and counts a 1.0 body, which becomes the batch as it is.
func fromV1(body []byte, lim promrw.Limits) (*batch.Batch, promrw.Counts, error) {
	var c promrw.Counts
	sc := promrw.Scanner{Limits: lim}
	err := sc.ScanV1(body, func(s promrw.SeriesV1) error {
		c.Series++
		c.Samples += s.Samples
		c.Histograms += s.Histograms
		c.Exemplars += s.Exemplars
		return nil
	})
	if err != nil {
		return nil, c, err
	}
	return batch.FromPromRWTrusted(body, c.Samples+c.Histograms), c, nil
}

// fromV2 validates a 2.0 body and rewrites it as 1.0 series (symbols resolved), the form every
// batch of remote write takes inside Vigil.
func fromV2(body []byte, lim promrw.Limits) (*batch.Batch, promrw.Counts, error) {
	var (
		c        promrw.Counts
		meta     []byte
		families map[string]struct{}
		sc       = promrw.Scanner{Limits: lim} // validating: one pass checks, counts and converts
	)
	out := make([]byte, 0, len(body)+len(body)/2)
	if err := sc.ScanV2(body, func(s promrw.SeriesV2) error {
		c.Series++
		c.Samples += s.Samples
		c.Histograms += s.Histograms
		c.Exemplars += s.Exemplars
		out = promrw.AppendV2AsV1(out, s)
		// 1.0 carries metadata once per family in the request rather than with each series:
		// without it types are lost (a classic histogram converts to OTLP as gauges) and a
		// 2.0 exporter has none to send.
		if typ, help, unit, ok := s.Metadata(); ok {
			fam := familyName(s.MetricName(), typ, s.Histograms > 0)
			if _, seen := families[string(fam)]; !seen && len(fam) > 0 {
				if families == nil {
					families = make(map[string]struct{})
				}
				families[string(fam)] = struct{}{}
				meta = promrw.AppendMetadata(meta, typ, string(fam), string(help), string(unit))
			}
		}
		return nil
	}); err != nil {
		return nil, c, err // what was converted so far is dropped with the request
	}
	out = append(out, meta...)
	return batch.FromPromRWTrusted(out, c.Samples+c.Histograms), c, nil
}

// familyName is the metric family a series belongs to, as 1.0 metadata names it: a classic
// histogram's or summary's _bucket, _sum and _count series (float samples) share the family's
// name; a native histogram's series is named after its family.
func familyName(name []byte, typ int, native bool) []byte {
	switch typ {
	case promrw.MetadataHistogram, promrw.MetadataGaugeHistogram, promrw.MetadataSummary:
		if native {
			return name
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := bytes.CutSuffix(name, []byte(suffix)); ok {
				return base
			}
		}
	}
	return name
}

func (r *receiver) reject(w http.ResponseWriter, reason string, code int, msg string) {
	r.rejected.WithLabelValues(reason).Inc()
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	http.Error(w, msg, code)
}

// newServer is the listener's server: its refusals counted, its requests within the budget.
func (r *receiver) newServer() *http.Server {
	return r.cfg.HTTP.NewServer(r,
		server.OnReject(func(reason string) { r.rejected.WithLabelValues(reason).Inc() }),
		server.ErrorLog(r.set.Logger),
		server.WithBudget(r.budget))
}

// busy refuses a request that does not fit the budget of bytes in flight; senders retry 429.
func (r *receiver) busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(server.RetryAfterBusy/time.Second)))
	r.reject(w, reasonInFlight, http.StatusTooManyRequests, server.ErrInFlightLimit.Error())
}

// putBuffer keeps buffers up to server.MaxPooledBuffer; larger ones are left to the garbage
// collector rather than pinned for the next request.
func (r *receiver) putBuffer(b *bytes.Buffer) {
	if b.Cap() <= server.MaxPooledBuffer {
		r.bufs.Put(b)
	}
}

func (r *receiver) getBuffer() *bytes.Buffer {
	if b, ok := r.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}
