// Package loki is the exporter that pushes logs to Loki (and to what speaks its push API:
// VictoriaLogs, Grafana Cloud): protobuf compressed with snappy, stream labels from chosen
// attributes with a guard on their number and cardinality, structured metadata for the rest,
// entries in time order per stream.
package loki

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/bufpool"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/loki"
	"github.com/vigilhq/vigil/internal/promrw"
	"github.com/vigilhq/vigil/internal/ratelog"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/sender"
)

// Type is the exporter's type name in config.
const Type = "loki"

// NewFactory returns the factory.
func NewFactory() component.ExporterFactory {
	return component.ExporterFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Logs},
		NewConfig: func() component.Config { return NewConfig() },
		Create:    component.CreateExporter(newExporter),
	}
}

type exporter struct {
	set    component.Settings
	cfg    *Config
	sender *sender.Sender
	client atomic.Pointer[http.Client]
	now    func() time.Time

	labels    []labelSource // in config order: resource first, then record attributes
	guard     cardinality
	rejected  *prometheus.CounterVec
	demoted   *prometheus.CounterVec
	rejectLog ratelog.Limiter

	// What requests are built in, kept for the next (bufpool); scratches hold the
	// conversion's slices.
	bufs      *bufpool.Pool
	scratches *bufpool.List[*scratch]
}

type labelSource struct {
	attr, name string
	resource   bool
}

func labelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// LabelName is the stream label an attribute becomes: k8s.pod.name → k8s_pod_name. Each
// character outside [a-zA-Z0-9_] becomes one underscore, and a name that would start with a
// digit (or be empty) gets one in front. A name that is already valid is returned as it is.
func LabelName(attr string) string {
	digit := attr == "" || attr[0] >= '0' && attr[0] <= '9'
	valid := !digit
	for i := 0; valid && i < len(attr); i++ {
		valid = labelChar(attr[i])
	}
	if valid {
		return attr
	}
	var b strings.Builder
	b.Grow(len(attr) + 1)
	if digit {
		b.WriteByte('_')
	}
	for _, r := range attr { // an invalid UTF-8 byte is one RuneError: one underscore
		if r < utf8.RuneSelf && labelChar(byte(r)) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// batchState is what one batch's conversion reuses across its records: the label names
// attributes became, the slab structured metadata is cut from, and the stream of the record
// before (consecutive records mostly share one; last is nil until there is one, as a stream
// always has a label).
type batchState struct {
	names   map[string]string
	slab    []loki.Label
	left    int // records not yet converted, which size the next slab
	used    int // metadata labels cut so far
	last    []loki.Label
	lastIdx int
}

func (b *batchState) labelName(attr string) string {
	if n, ok := b.names[attr]; ok {
		return n
	}
	n := LabelName(attr)
	b.names[attr] = n
	return n
}

func newExporter(set component.Settings, cfg *Config) (*exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	e := &exporter{set: set, cfg: cfg, now: time.Now, rejectLog: ratelog.Limiter{Every: time.Minute},
		guard:     cardinality{max: cfg.MaxLabelValues, seen: map[string]map[string]struct{}{}},
		scratches: bufpool.NewList[*scratch](2),
		// Two buffers per request in flight (encoded, compressed); a request is at most
		// max_request_bytes but for one entry larger than that.
		bufs: bufpool.New(4, 2*cfg.MaxRequestBytes+64<<10)}
	for _, a := range cfg.Labels.Resource {
		e.labels = append(e.labels, labelSource{attr: a, name: LabelName(a), resource: true})
	}
	for _, a := range cfg.Labels.Attributes {
		e.labels = append(e.labels, labelSource{attr: a, name: LabelName(a)})
	}
	var err error
	if e.rejected, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_exporter_loki_rejected_entries_total",
		Help: "Log entries not delivered and not retried, by reason: too_old (older than max_entry_age), or Loki's 400 (out_of_order, too_far_behind, line_too_long, stream_limit, rate_limited, invalid, other).",
	}, []string{"reason"})); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	if e.demoted, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_exporter_loki_demoted_label_values_total",
		Help: "Entries whose attribute was sent as structured metadata instead of a label: too many labels, or too many distinct values of it within an hour.",
	}, []string{"label"})); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	if e.sender, err = sender.New(set, cfg.Sender, e.send, sender.TimeoutPerRequest()); err != nil {
		return nil, fmt.Errorf("exporter %s: %w", set.ID, err)
	}
	return e, nil
}

func (e *exporter) Start(ctx context.Context, _ component.Host) error {
	hc, err := e.cfg.Client.NewClient()
	if err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	if err := e.sender.Start(ctx); err != nil {
		return fmt.Errorf("exporter %s: %w", e.set.ID, err)
	}
	e.client.Store(hc)
	names := make([]string, 0, len(e.labels))
	for _, l := range e.labels {
		names = append(names, l.name)
	}
	e.set.Logger.Info("exporter started", "endpoint", client.Redact(e.cfg.Client.Endpoint), "labels", names, "tenant", e.cfg.TenantID != "")
	return nil
}

func (e *exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	if hc := e.client.Swap(nil); hc != nil {
		hc.CloseIdleConnections()
	}
	return err
}

func (e *exporter) Consume(ctx context.Context, b *batch.Batch) error {
	return e.sender.Consume(ctx, b)
}

// cardinality remembers, per label name, the values sent within the hour.
type cardinality struct {
	mu    sync.Mutex
	max   int
	seen  map[string]map[string]struct{}
	since time.Time
}

// admit reports whether value may be a label value of name now.
func (c *cardinality) admit(name, value string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.since) > time.Hour {
		clear(c.seen)
		c.since = now
	}
	vs := c.seen[name]
	if vs == nil {
		vs = map[string]struct{}{}
		c.seen[name] = vs
	}
	if _, ok := vs[value]; ok {
		return true
	}
	if len(vs) >= c.max {
		return false
	}
	vs[value] = struct{}{}
	return true
}

// scratch is what converting a batch into push requests needs and the next batch can reuse:
// the entries (in record order, then grouped by stream), the stream of each entry, the slab
// structured metadata is cut from. What it holds is only valid until it goes back (release).
type scratch struct {
	flat, grouped []loki.Entry
	stream        []int32 // flat[i] belongs to out[stream[i]]
	slab          []loki.Label
	slabWanted    int // metadata the last batch had: the next slab's size
	byKey         map[string]int
	out           []loki.Stream
	starts        []int
}

func (e *exporter) scratch() *scratch {
	if sc, ok := e.scratches.Get(); ok {
		return sc
	}
	return &scratch{byKey: map[string]int{}}
}

// release clears what the scratch points into (the batch's strings) and keeps it.
func (e *exporter) release(sc *scratch) {
	clear(sc.flat)
	clear(sc.grouped)
	clear(sc.slab[:cap(sc.slab)])
	clear(sc.byKey)
	clear(sc.out)
	sc.flat, sc.grouped, sc.stream, sc.slab, sc.out = sc.flat[:0], sc.grouped[:0], sc.stream[:0], sc.slab[:0], sc.out[:0]
	if cap(sc.flat) > maxScratchEntries {
		sc.flat, sc.grouped, sc.stream = nil, nil, nil
	}
	if cap(sc.slab) > 4*maxScratchEntries {
		sc.slab = nil
	}
	e.scratches.Put(sc)
}

// maxScratchEntries bounds the entries a kept scratch holds room for (64 bytes each).
const maxScratchEntries = 64 << 10

// streams groups the records of ld into streams, entries sorted by time; it drops the entries
// older than max_entry_age, and returns how many. The streams live in sc.
func (e *exporter) streams(ld plog.Logs, sc *scratch) ([]loki.Stream, int) {
	now := e.now()
	oldest := time.Time{}
	if e.cfg.MaxEntryAge > 0 {
		oldest = now.Add(-e.cfg.MaxEntryAge)
	}
	n := ld.LogRecordCount()
	sc.flat = slices.Grow(sc.flat[:0], n)
	sc.stream = slices.Grow(sc.stream[:0], n)
	out := sc.out[:0]
	tooOld := 0
	var labels []loki.Label
	var used []labelSource // the sources the record's labels came from (reused)
	if cap(sc.slab) < sc.slabWanted {
		sc.slab = make([]loki.Label, 0, sc.slabWanted)
	}
	st := &batchState{names: map[string]string{}, left: n, slab: sc.slab[:0]}
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				ts := lr.Timestamp()
				if ts == 0 {
					ts = lr.ObservedTimestamp()
				}
				at := now
				if ts != 0 {
					at = ts.AsTime()
				}
				if !oldest.IsZero() && at.Before(oldest) {
					tooOld++
					continue
				}
				labels = labels[:0]
				used = used[:0]
				for _, src := range e.labels {
					m := lr.Attributes()
					if src.resource {
						m = res
					}
					v, ok := m.Get(src.attr)
					if !ok || v.AsString() == "" {
						continue
					}
					val := v.AsString()
					if len(labels) >= e.cfg.MaxLabels || !e.guard.admit(src.name, val, now) {
						e.demoted.WithLabelValues(src.name).Inc()
						continue // goes to structured metadata below
					}
					labels = append(labels, loki.Label{Name: src.name, Value: val})
					used = append(used, src)
				}
				if len(labels) == 0 {
					labels = append(labels, loki.Label{Name: "service_name", Value: "unknown_service"})
				}
				slices.SortFunc(labels, func(a, b loki.Label) int { return strings.Compare(a.Name, b.Name) })
				labels = slices.CompactFunc(labels, func(a, b loki.Label) bool { return a.Name == b.Name })
				i := st.lastIdx
				if st.last == nil || !slices.Equal(labels, st.last) {
					k := loki.FormatLabels(labels)
					var ok bool
					if i, ok = sc.byKey[k]; !ok {
						i = len(out)
						sc.byKey[k] = i
						out = append(out, loki.Stream{Labels: slices.Clone(labels)})
					}
					st.last, st.lastIdx = out[i].Labels, i
				}
				sc.flat = append(sc.flat, loki.Entry{Timestamp: at, Line: lr.Body().AsString(), Metadata: st.metadata(lr, res, used)})
				sc.stream = append(sc.stream, int32(i))
			}
		}
	}
	sc.slabWanted = st.used + 32 // metadata() wants room for a record's labels before each
	if cap(st.slab) > cap(sc.slab) {
		sc.slab = st.slab // the larger: kept for the next batch
	}
	// Grouped by stream (a counting sort: entries keep their order within a stream), then
	// each stream in time order.
	sc.starts = slices.Grow(sc.starts[:0], len(out)+1)[:len(out)+1]
	clear(sc.starts)
	for _, i := range sc.stream {
		sc.starts[i+1]++
	}
	for i := 1; i <= len(out); i++ {
		sc.starts[i] += sc.starts[i-1]
	}
	sc.grouped = slices.Grow(sc.grouped[:0], len(sc.flat))[:len(sc.flat)]
	for k, i := range sc.stream {
		sc.grouped[sc.starts[i]] = sc.flat[k]
		sc.starts[i]++
	}
	from := 0
	for i := range out {
		es := sc.grouped[from:sc.starts[i]:sc.starts[i]]
		slices.SortStableFunc(es, func(a, b loki.Entry) int { return a.Timestamp.Compare(b.Timestamp) })
		out[i].Entries = es
		from = sc.starts[i]
	}
	sc.out = out
	return out, tooOld
}

// metadata is the record's structured metadata: its attributes and the resource's that are not
// labels, trace and span ids, and severity.
func (st *batchState) metadata(lr plog.LogRecord, res pcommon.Map, used []labelSource) []loki.Label {
	if cap(st.slab)-len(st.slab) < 32 {
		// About four labels for each record left; the entries before keep the old slab.
		st.slab = make([]loki.Label, 0, max(32, min(4096, 4*st.left)))
	}
	st.left--
	start := len(st.slab)
	md := st.slab
	isLabel := func(resource bool, k string) bool {
		for _, u := range used { // a few labels: a scan beats a map built per record
			if u.resource == resource && u.attr == k {
				return true
			}
		}
		return false
	}
	add := func(resource bool, m pcommon.Map) {
		for k, v := range m.All() {
			if !isLabel(resource, k) {
				md = append(md, loki.Label{Name: st.labelName(k), Value: v.AsString()})
			}
		}
	}
	add(true, res)
	add(false, lr.Attributes())
	if id := lr.TraceID(); !id.IsEmpty() {
		md = append(md, loki.Label{Name: "trace_id", Value: id.String()})
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		md = append(md, loki.Label{Name: "span_id", Value: id.String()})
	}
	if t := lr.SeverityText(); t != "" {
		md = append(md, loki.Label{Name: "severity_text", Value: t})
	}
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		md = append(md, loki.Label{Name: "severity_number", Value: strconv.Itoa(int(n))})
	}
	st.slab = md
	st.used += len(md) - start
	if len(md) == start {
		return nil
	}
	return md[start:len(md):len(md)]
}

// requests cuts the streams into push requests of at most max bytes (uncompressed).
func requests(streams []loki.Stream, max int) [][]loki.Stream {
	// The parts are windows on the streams' entries: nothing is copied.
	var out [][]loki.Stream
	var cur []loki.Stream
	size := 0
	for _, s := range streams {
		from := 0
		for k, en := range s.Entries {
			n := len(en.Line) + 32
			for _, m := range en.Metadata {
				n += len(m.Name) + len(m.Value) + 8
			}
			if size+n > max && (len(cur) > 0 || k > from) {
				if k > from {
					cur = append(cur, loki.Stream{Labels: s.Labels, Entries: s.Entries[from:k:k]})
				}
				out = append(out, cur)
				cur, size, from = nil, 0, k
			}
			size += n
		}
		if len(s.Entries) > from {
			cur = append(cur, loki.Stream{Labels: s.Labels, Entries: s.Entries[from:len(s.Entries):len(s.Entries)]})
			size += 64
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

var errNotStarted = errors.New("exporter not started")

// send is one attempt at the whole batch.
func (e *exporter) send(ctx context.Context, b *batch.Batch) error {
	hc := e.client.Load()
	if hc == nil {
		return consumererror.NewRetryable(errNotStarted, 0)
	}
	ld, err := b.Logs()
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("decode logs: %w", err))
	}
	sc := e.scratch()
	defer e.release(sc)
	streams, tooOld := e.streams(ld, sc)
	if tooOld > 0 {
		e.reject("too_old", tooOld, fmt.Sprintf("older than max_entry_age (%s)", e.cfg.MaxEntryAge))
	}
	for _, req := range requests(streams, e.cfg.MaxRequestBytes) {
		if err := e.push(ctx, hc, req); err != nil {
			return err
		}
	}
	return nil
}

// push sends one request.
func (e *exporter) push(ctx context.Context, hc *http.Client, streams []loki.Stream) error {
	raw := e.bufs.Get()
	*raw = loki.AppendProto(*raw, streams)
	compressed := e.bufs.Get()
	*compressed = promrw.Encode(*compressed, *raw)
	e.bufs.Put(raw)
	body := e.bufs.Body(compressed)
	defer body.Release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Client.Endpoint, nil)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("build request: %w", err))
	}
	body.Set(req)
	req.Header.Set("User-Agent", client.UserAgent)
	e.cfg.Client.SetHeaders(req.Header)
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.TenantID != "" {
		req.Header.Set("X-Scope-OrgID", e.cfg.TenantID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return consumererror.NewRetryable(fmt.Errorf("push: %w", err), 0)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	text := strings.TrimSpace(string(msg))
	if len(text) > 512 {
		text = text[:512] + "…"
	}
	perr := fmt.Errorf("push: HTTP %d: %s", resp.StatusCode, text)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return consumererror.NewRetryable(perr, client.RetryAfter(resp.Header.Get("Retry-After"), e.now()))
	case resp.StatusCode == http.StatusBadRequest:
		// Loki took what it could and refused the rest for good (too old, out of order, too
		// long): sending again would only repeat what it took.
		n := entries(streams)
		if m := ignoredRE.FindStringSubmatch(text); m != nil {
			if v, err := strconv.Atoi(m[1]); err == nil && v <= n {
				n = v
			}
		}
		e.reject(reason(text), n, text)
		return nil
	}
	return consumererror.NewPermanent(perr)
}

var ignoredRE = regexp.MustCompile(`total ignored: (\d+) out of \d+`)

func entries(streams []loki.Stream) int {
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	return n
}

// reason classifies Loki's 400 message.
func reason(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "too far behind"):
		return "too_far_behind"
	case strings.Contains(m, "out of order"):
		return "out_of_order"
	case strings.Contains(m, "too old") || strings.Contains(m, "greater than") && strings.Contains(m, "age"):
		return "too_old"
	case strings.Contains(m, "line too long") || strings.Contains(m, "exceeds") && strings.Contains(m, "line"):
		return "line_too_long"
	case strings.Contains(m, "stream limit") || strings.Contains(m, "maximum active stream"):
		return "stream_limit"
	case strings.Contains(m, "rate limit"):
		return "rate_limited"
	case strings.Contains(m, "invalid") || strings.Contains(m, "error parsing"):
		return "invalid"
	}
	return "other"
}

func (e *exporter) reject(reason string, n int, detail string) {
	e.rejected.WithLabelValues(reason).Add(float64(n))
	e.rejectLog.Warn(e.set.Logger, "log entries refused for good: not retried", "reason", reason, "entries", n, "detail", detail)
}
