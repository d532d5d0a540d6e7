package prometheusremotewrite

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promconv"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/sender"
)

const (
	// maxResponseBody bounds what is read of an answer; maxMessage what of it goes into errors.
	maxResponseBody = 64 << 10
	maxMessage      = 256
)

type exporter struct {
	set    component.Settings
	cfg    *Config
	conv   promconv.Settings
	ext    []promrw.Label // sorted by name
	v2     bool
	sender *sender.Sender
	client atomic.Pointer[http.Client]

	requests *prometheus.CounterVec
	shardsG  prometheus.Gauge

	// sendMu makes sends one batch at a time: a series' samples in batch n+1 must not overtake
	// those in batch n, or the backend refuses them as out of order.
	sendMu sync.Mutex
	// retrying holds the batches whose last attempt failed in part, oldest first, so that the
	// sender's next attempt at one re-sends only what the backend did not take. Without a
	// sending queue several callers' batches can be between attempts at once; a batch the
	// sender gave up on is never attempted again and ages out (maxRetrying).
	retrying []*attemptState
	bld      *promrw.Builder
	v2enc    promrw.V2Encoder
	rs       *resharder

	// meta is the 1.0 metadata seen so far, one entry per metric family (the latest), sent in
	// requests of its own every metadata_config.send_interval and when new families appear,
	// as Prometheus sends it; guarded by sendMu.
	meta     map[string][]byte
	metaNew  bool
	metaSent time.Time
	now      func() time.Time // the clock of metadata_config.send_interval; tests move it
}

// maxMetadataFamilies bounds the metadata kept; families beyond it are not sent.
const maxMetadataFamilies = 100_000

// attemptState is a batch cut into per-shard requests. A retry of the same batch sends only the
// requests not yet accepted, so that a failure in one shard does not duplicate the others.
type attemptState struct {
	b        *batch.Batch
	shards   [][]request
	next     []int // per shard: the first request not yet done
	rejected int   // items refused for good (by the backend or the translation)
	why      []string
}

type request struct {
	body  []byte // compressed
	items int    // samples + histogram samples
}

// maxRetrying bounds the batches kept between attempts without a sending queue (concurrent
// callers). With the queue there is one consumer, so a new batch means the sender is done with
// the previous one. A batch that ages out and is still retried is sent whole again: duplicates,
// never loss.
const maxRetrying = 16

var _ component.Exporter = (*exporter)(nil)

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
		conv: promconv.Settings{
			Namespace:                    cfg.Namespace,
			AddMetricSuffixes:            cfg.AddMetricSuffixes,
			PromoteAllResourceAttributes: cfg.ResourceToTelemetryConversion.Enabled,
			DisableTargetInfo:            !cfg.TargetInfo.Enabled,
		},
		v2:  cfg.Protocol == ProtocolV2,
		rs:  newResharder(cfg.QueueConfig, time.Now()),
		now: time.Now,
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.ExternalLabels)) {
		e.ext = append(e.ext, promrw.Label{Name: k, Value: cfg.ExternalLabels[k]})
	}
	var err error
	if e.requests, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_exporter_prometheusremotewrite_requests_total",
		Help: "Remote-write requests sent, by outcome: the HTTP status class, or error when no answer came.",
	}, []string{"outcome"})); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	if e.shardsG, err = selftelemetry.Register(set.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_exporter_prometheusremotewrite_shards",
		Help: "Shards (parallel senders) the exporter uses now.",
	})); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	e.shardsG.Set(float64(e.rs.shards))
	if e.sender, err = sender.New(set, cfg.senderConfig(), e.send); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	return e, nil
}

// Start builds the HTTP client; connections are made on the first send.
func (e *exporter) Start(ctx context.Context, _ component.Host) error {
	cl := e.cfg.Client
	cl.Compression = client.None // the body is compressed here, with snappy or zstd
	hc, err := cl.NewClient()
	if err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	if err := e.sender.Start(ctx); err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	e.client.Store(hc)
	e.set.Logger.Info("exporter started", "endpoint", client.Redact(e.cfg.Client.Endpoint),
		"protocol", e.cfg.Protocol, "compression", string(e.cfg.Client.Compression),
		"min_shards", e.cfg.QueueConfig.MinShards, "max_shards", e.cfg.QueueConfig.MaxShards,
		"batch_send_deadline", e.cfg.QueueConfig.BatchSendDeadline.String(),
		"external_labels", slices.Sorted(maps.Keys(e.cfg.ExternalLabels)))
	return nil
}

// Shutdown drains the sender, then closes idle connections.
func (e *exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	e.sendMu.Lock()
	e.retrying = nil // the sender is done: nothing will be attempted again
	e.sendMu.Unlock()
	if hc := e.client.Swap(nil); hc != nil {
		hc.CloseIdleConnections()
	}
	return err
}

// Consume hands b to the sender (queue, retries), which calls send.
func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	e.rs.observeIn(b.Items())
	return e.sender.Consume(ctx, b)
}

// send is one attempt at a batch: every request not yet accepted is posted, shards in
// parallel, each shard's requests in order.
func (e *exporter) send(ctx context.Context, b *batch.Batch) error {
	hc := e.client.Load()
	if hc == nil {
		return consumererror.NewRetryable(errors.New("exporter not started"), 0)
	}
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	st := e.takeRetrying(b)
	if st == nil {
		var err error
		if st, err = e.prepare(ctx, b); err != nil {
			if ctx.Err() != nil {
				// Cut short (the translation stops on it): not the batch's fault.
				return consumererror.NewRetryable(err, 0)
			}
			return consumererror.NewPermanent(err)
		}
	}

	errs := make([]error, len(st.shards))
	var mu sync.Mutex // guards st.rejected and st.why
	var wg sync.WaitGroup
	for i := range st.shards {
		if st.next[i] >= len(st.shards[i]) {
			continue
		}
		wg.Go(func() {
			for st.next[i] < len(st.shards[i]) {
				r := st.shards[i][st.next[i]]
				t0 := time.Now()
				err := e.post(ctx, hc, r)
				e.rs.observeRequest(time.Since(t0), r.items)
				if err != nil && !consumererror.IsPermanent(err) {
					errs[i] = err
					return
				}
				if err != nil {
					mu.Lock()
					st.rejected += r.items
					st.why = append(st.why, err.Error())
					mu.Unlock()
				}
				st.next[i]++
			}
		})
	}
	wg.Wait()
	e.shardsG.Set(float64(e.rs.reshard(time.Now())))

	var failed []error
	var after time.Duration
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
			if a, _ := consumererror.RetryAfter(err); a > after {
				after = a
			}
		}
	}
	if len(failed) > 0 {
		e.keepRetrying(st)
		return consumererror.NewRetryable(errors.Join(failed...), after)
	}
	e.sendMetadata(ctx, hc, e.now())
	if st.rejected > 0 {
		msg := strings.Join(st.why, "; ")
		if len(st.why) > 3 {
			msg = strings.Join(st.why[:3], "; ") + fmt.Sprintf("; and %d more", len(st.why)-3)
		}
		return &consumererror.Partial{Rejected: min(st.rejected, b.Items()), Message: msg}
	}
	return nil
}

// takeRetrying removes and returns the state of b's earlier attempt, if one failed in part.
func (e *exporter) takeRetrying(b *batch.Batch) *attemptState {
	for i, st := range e.retrying {
		if st.b == b {
			e.retrying = slices.Delete(e.retrying, i, i+1)
			return st
		}
	}
	return nil
}

// keepRetrying keeps st for the sender's next attempt at its batch.
func (e *exporter) keepRetrying(st *attemptState) {
	limit := maxRetrying
	if e.cfg.Sender.Queue.Enabled {
		limit = 1
	}
	if len(e.retrying) >= limit {
		// The oldest: abandoned by the sender, most likely.
		e.retrying = slices.Delete(e.retrying, 0, len(e.retrying)-limit+1)
	}
	e.retrying = append(e.retrying, st)
}

// prepare turns a batch into compressed requests, sharded by series.
func (e *exporter) prepare(ctx context.Context, b *batch.Batch) (*attemptState, error) {
	st := &attemptState{b: b}
	body, ok := b.PromRW()
	if !ok {
		md, err := b.Metrics()
		if err != nil {
			return nil, err
		}
		res, rejected, err := promconv.FromMetrics(ctx, md, e.conv)
		if cerr := ctx.Err(); cerr != nil {
			// The translator stops early when its context ends: what it made is not the batch.
			return nil, fmt.Errorf("translate to remote write: %w", cerr)
		}
		if err != nil {
			st.rejected += rejected
			st.why = append(st.why, err.Error())
			e.set.Logger.Warn("some metrics cannot be sent as Prometheus data; dropping them", "error", err.Error(), "data_points", rejected)
		}
		body = res.Bytes
	}

	n := e.rs.current()
	if e.bld == nil || e.bld.Shards() != n {
		e.bld = promrw.NewBuilder(n)
	}
	bld := e.bld
	bld.Reset()
	st.shards = make([][]request, n)
	st.next = make([]int, n)
	// 2.0 carries metadata in each series, so it must be known before the first request; 1.0
	// keeps it for requests of its own (sendMetadata), found only if the scan saw bytes between
	// or after series: walking a large body twice costs memory bandwidth.
	var meta promrw.Metadata
	if e.v2 {
		meta = promrw.MetadataOf(body)
	}
	var firstErr error
	add := func(i int, payload []byte, items int) {
		out, err := e.compress(payload)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		st.shards[i] = append(st.shards[i], request{body: out, items: items})
	}
	flush := func(i int) {
		raw, c := bld.Request(i)
		if c.Series == 0 {
			return
		}
		payload := raw
		if e.v2 {
			payload = e.v2enc.Encode(nil, raw, meta)
		}
		add(i, payload, c.Samples+c.Histograms)
		bld.ResetShard(i)
	}
	var (
		sc           = promrw.Scanner{Trusted: true}
		scratch, cut []byte
		max          = e.cfg.QueueConfig.MaxSamplesPerSend
	)
	addSeries := func(s promrw.SeriesV1) {
		i := bld.Shard(s)
		if _, c := bld.Request(i); c.Series > 0 && c.Samples+c.Histograms+s.Samples+s.Histograms > max {
			flush(i)
		}
		bld.AddTo(i, s)
		if _, c := bld.Request(i); c.Samples+c.Histograms >= max {
			flush(i)
		}
	}
	gaps, prevEnd := false, 0
	err := sc.ScanV1(body, func(s promrw.SeriesV1) error {
		gaps = gaps || s.Start != prevEnd
		prevEnd = s.End
		if len(e.ext) > 0 {
			scratch = promrw.AppendWithLabels(scratch[:0], s.Raw, e.ext)
			s.Raw = scratch
		}
		k := s.Samples + s.Histograms
		if k <= max {
			addSeries(s)
			return nil
		}
		// Larger than a request may be: consecutive parts of one shard, so still in order.
		for from := 0; from < k; from += max {
			var part promrw.SeriesV1
			cut, part = promrw.AppendSeriesPart(cut[:0], s.Raw, from, min(from+max, k))
			addSeries(part)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read batch: %w", err)
	}
	for i := range n {
		flush(i)
	}
	if !e.v2 && e.cfg.MetadataConfig.Send && (gaps || prevEnd != len(body)) {
		e.keepMetadata(promrw.MetadataOf(body).Raw)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return st, nil
}

// keepMetadata adds a batch's metadata entries to what is sent periodically.
func (e *exporter) keepMetadata(raw []byte) {
	promrw.EachMetadata(raw, func(family, field []byte) {
		old, ok := e.meta[string(family)]
		if !ok && len(e.meta) >= maxMetadataFamilies {
			return
		}
		if ok && bytes.Equal(old, field) {
			return
		}
		if e.meta == nil {
			e.meta = make(map[string][]byte)
		}
		e.meta[string(family)] = append(old[:0:0], field...)
		e.metaNew = true
	})
}

// sendMetadata sends every metadata entry kept, in requests of at most
// metadata_config.max_samples_per_send entries, when new families appeared or send_interval has
// passed since the last time. It is best effort, as in Prometheus: a failure is counted and
// logged, and the entries go again at the next occasion; the batch's outcome does not depend on
// it.
func (e *exporter) sendMetadata(ctx context.Context, hc *http.Client, now time.Time) {
	mc := e.cfg.MetadataConfig
	if e.v2 || !mc.Send || len(e.meta) == 0 || (!e.metaNew && now.Sub(e.metaSent) < mc.SendInterval) {
		return
	}
	e.metaNew, e.metaSent = false, now
	var body []byte
	n := 0
	post := func() {
		out, err := e.compress(body)
		if err == nil {
			err = e.post(ctx, hc, request{body: out})
		}
		if err != nil {
			e.metaNew = !consumererror.IsPermanent(err) // retried with the next batch
			e.set.Logger.Warn("cannot send metric metadata; the samples are not affected", "error", err.Error(), "entries", n)
		}
		body, n = body[:0], 0
	}
	for _, k := range slices.Sorted(maps.Keys(e.meta)) {
		body = append(body, e.meta[k]...)
		if n++; n >= mc.MaxSamplesPerSend {
			post()
		}
	}
	if n > 0 {
		post()
	}
}

// snappyScratch holds encoder output buffers. Snappy needs room for its worst case, several
// times what a remote-write body compresses to, so the output is copied out at its real size
// and the large buffer reused, rather than a worst-case buffer allocated (and zeroed) per request.
var snappyScratch sync.Pool // *[]byte

func (e *exporter) compress(b []byte) ([]byte, error) {
	if e.cfg.Client.Compression == Zstd {
		return client.Zstd.Compress(nil, b)
	}
	buf, _ := snappyScratch.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	if need := s2.MaxEncodedLen(len(b)); cap(*buf) < need {
		*buf = make([]byte, need)
	}
	out := promrw.Encode(*buf, b)
	res := append([]byte(nil), out...)
	snappyScratch.Put(buf)
	return res, nil
}

// post sends one request and classifies the answer the way remote-write senders do: 2xx done,
// 429 and 5xx retry (after Retry-After when given), any other status is final.
func (e *exporter) post(ctx context.Context, hc *http.Client, r request) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Client.Endpoint, bytes.NewReader(r.body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("User-Agent", client.UserAgent)
	e.cfg.Client.SetHeaders(req.Header)
	if e.v2 {
		req.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	req.Header.Set("Content-Encoding", string(e.cfg.Client.Compression))
	resp, err := hc.Do(req)
	if err != nil {
		e.requests.WithLabelValues("error").Inc()
		return consumererror.NewRetryable(fmt.Errorf("remote write: %w", err), 0)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		_ = resp.Body.Close()
	}()
	code := resp.StatusCode
	e.requests.WithLabelValues(strconv.Itoa(code/100) + "xx").Inc()
	if code/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	err = fmt.Errorf("remote write: HTTP %d %s", code, http.StatusText(code))
	if m := strings.TrimSpace(strings.ToValidUTF8(string(msg), "")); m != "" {
		err = fmt.Errorf("%w: %s", err, m)
	}
	switch {
	case code == http.StatusTooManyRequests || code/100 == 5:
		return consumererror.NewRetryable(err, client.RetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	case code == http.StatusUnsupportedMediaType && e.v2:
		return consumererror.NewPermanent(fmt.Errorf("%w (the receiver does not take remote write 2.0: set protocol: \"1.0\")", err))
	}
	return consumererror.NewPermanent(err)
}
