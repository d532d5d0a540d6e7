package prometheusremotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The upstream prompb types encode the requests, independently of Vigil's wire code.

func v1Body(t testing.TB, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func series(name string, kv []string, samples ...prompb.Sample) prompb.TimeSeries {
	ls := []prompb.Label{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return prompb.TimeSeries{Labels: ls, Samples: samples}
}

func v2Body(t testing.TB) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "http_requests_total", "code", "200", "job", "api"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "abc"), nil), Value: 1, Timestamp: 1500}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "temperature", "job", "api"), nil),
			Samples:    []writev2.Sample{{Value: 21.5, Timestamp: 1000}},
		},
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type consumerFunc func(context.Context, *batch.Batch) error

func (f consumerFunc) Consume(ctx context.Context, b *batch.Batch) error { return f(ctx, b) }

func newTestReceiver(t testing.TB, mod func(*Config), next component.Consumer) *receiver {
	t.Helper()
	cfg := NewConfig()
	cfg.Endpoint = "127.0.0.1:0"
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newReceiver(component.Settings{ID: component.ID{Type: Type}}, cfg, map[batch.Signal]component.Consumer{batch.Metrics: next})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type request struct {
	method, contentType, encoding string
	body                          []byte
	raw                           bool // body is already snappy-encoded (or deliberately not)
	header                        map[string]string
}

func (r *receiver) do(q request) *httptest.ResponseRecorder {
	body := q.body
	if !q.raw {
		body = snappy.Encode(nil, body)
	}
	method := q.method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, DefaultPath, bytes.NewReader(body))
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	if q.encoding != "" {
		req.Header.Set("Content-Encoding", q.encoding)
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.cfg.HTTP.NewServer(r).Handler.ServeHTTP(w, req)
	return w
}

func TestRemoteWriteV1(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, nil, sink)
	body := v1Body(t,
		series("up", []string{"instance", "a:9100", "job", "node"}, prompb.Sample{Value: 1, Timestamp: 1000}),
		series("http_requests_total", []string{"code", "200"}, prompb.Sample{Value: 5, Timestamp: 1000}, prompb.Sample{Value: 7, Timestamp: 2000}),
	)
	w := r.do(request{contentType: "application/x-protobuf", encoding: "snappy", body: body})
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w.Header().Get(headerSamples) != "" {
		t.Errorf("1.0 answer carries the 2.0 header %s", headerSamples)
	}
	got := sink.Batches()
	if len(got) != 1 || got[0].Items() != 3 {
		t.Fatalf("want one batch of 3 samples, got %d batches (%v)", len(got), got)
	}
	rw, ok := got[0].PromRW()
	if !ok || !bytes.Equal(rw, body) {
		t.Fatalf("the batch is not the request body as sent")
	}
}

func TestRemoteWriteV2(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, nil, sink)
	w := r.do(request{contentType: "application/x-protobuf;proto=io.prometheus.write.v2.Request", encoding: "snappy", body: v2Body(t)})
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for h, want := range map[string]string{headerSamples: "3", headerHistograms: "0", headerExemplars: "1"} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	got := sink.Batches()
	if len(got) != 1 || got[0].Items() != 3 {
		t.Fatalf("want one batch of 3 samples, got %v", got)
	}
	rw, _ := got[0].PromRW()
	var req prompb.WriteRequest
	if err := req.Unmarshal(rw); err != nil {
		t.Fatalf("the batch is not a 1.0 request: %v", err)
	}
	if len(req.Timeseries) != 2 {
		t.Fatalf("want 2 series, got %d", len(req.Timeseries))
	}
	s := req.Timeseries[0]
	if got := labelString(s.Labels); got != `{__name__="http_requests_total", code="200", job="api"}` {
		t.Errorf("labels %s", got)
	}
	if len(s.Samples) != 2 || s.Samples[1].Value != 2 || s.Samples[1].Timestamp != 2000 {
		t.Errorf("samples %v", s.Samples)
	}
	if len(s.Exemplars) != 1 || labelString(s.Exemplars[0].Labels) != `{trace_id="abc"}` || s.Exemplars[0].Timestamp != 1500 {
		t.Errorf("exemplars %v", s.Exemplars)
	}
	if got := labelString(req.Timeseries[1].Labels); got != `{__name__="temperature", job="api"}` {
		t.Errorf("second series %s", got)
	}
}

func labelString(ls []prompb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels().String()
}

func TestBadRequests(t *testing.T) {
	good := v1Body(t, series("up", nil, prompb.Sample{Value: 1, Timestamp: 1}))
	f := func(name string, q request, mod func(*Config), wantCode int, wantMsg, wantReason string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			sink := &componenttest.Sink{}
			r := newTestReceiver(t, mod, sink)
			w := r.do(q)
			if w.Code != wantCode || !strings.Contains(w.Body.String(), wantMsg) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body, wantCode, wantMsg)
			}
			if sink.Items() != 0 {
				t.Errorf("a refused request reached the pipeline")
			}
			if got := counterValue(t, r, wantReason); got != 1 {
				t.Errorf("rejected{reason=%q} = %v, want 1", wantReason, got)
			}
		})
	}
	f("GET", request{method: http.MethodGet}, nil, 405, "use POST", reasonMethod)
	f("JSON", request{contentType: "application/json", body: good}, nil, 415, "unsupported Content-Type", reasonUnsupportedMedia)
	f("unknown proto", request{contentType: "application/x-protobuf;proto=foo.Bar", body: good}, nil, 415, `unsupported proto "foo.Bar"`, reasonUnsupportedMedia)
	f("gzip", request{encoding: "gzip", body: good}, nil, 415, "remote write uses snappy", reasonUnsupportedMedia)
	f("not snappy", request{body: []byte("\xff\xff\xff\xff\xff\x01garbage"), raw: true}, nil, 400, "", reasonMalformed)
	f("not protobuf", request{body: []byte("\x0a\x05ab")}, nil, 400, "malformed", reasonMalformed)
	f("2.0 body sent as 1.0", request{body: v2Body(t)}, nil, 400, "remote write 2.0 body", reasonMalformed)
	f("bad label name", request{body: v1Body(t, series("up", []string{"bad-name", "x"}, prompb.Sample{Value: 1, Timestamp: 1}))}, nil, 400, "bad-name", reasonMalformed)
	f("unsorted labels", request{body: v1Body(t, prompb.TimeSeries{Labels: []prompb.Label{{Name: "z", Value: "1"}, {Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})}, nil, 400, "sorted", reasonMalformed)
	f("no name", request{body: v1Body(t, prompb.TimeSeries{Labels: []prompb.Label{{Name: "job", Value: "x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})}, nil, 400, "__name__", reasonMalformed)
	f("samples out of order", request{body: v1Body(t, series("up", nil, prompb.Sample{Value: 1, Timestamp: 2}, prompb.Sample{Value: 1, Timestamp: 1}))}, nil, 400, "older than the previous sample", reasonMalformed)
	f("decompressed too large", request{body: bytes.Repeat(good, 100)}, func(c *Config) { c.MaxDecompressedBodySize = 100 }, 413, "", reasonTooLarge)
	f("too many series", request{body: v1Body(t, series("a", nil), series("b", nil), series("c", nil))}, func(c *Config) { c.MaxSeriesPerRequest = 2 }, 400, "3 series, over the limit of 2", reasonTooManySeries)
	// The per-series limits, at their defaults.
	var many []string
	for i := range DefaultMaxLabelsPerSeries {
		many = append(many, fmt.Sprintf("l%03d", i), "v")
	}
	f("too many labels", request{body: v1Body(t, series("up", many, prompb.Sample{Value: 1, Timestamp: 1}))}, nil, 400,
		`series 0 ("up") at byte 0: more than 128 labels (max_labels_per_series)`, reasonLimit)
	f("long label name", request{body: v1Body(t, series("up", []string{strings.Repeat("n", DefaultMaxLabelNameLength+1), "v"}, prompb.Sample{Value: 1, Timestamp: 1}))}, nil, 400,
		"label name of 1025 bytes", reasonLimit)
	f("long label value", request{body: v1Body(t, series("up", []string{"path", strings.Repeat("/x", DefaultMaxLabelValueLength)}, prompb.Sample{Value: 1, Timestamp: 1}))}, nil, 400,
		`label "path" has a value of 32768 bytes, over 16384 (max_label_value_length)`, reasonLimit)
	f("2.0 over a limit", request{contentType: "application/x-protobuf;proto=" + protoV2, body: v2Body(t)}, func(c *Config) { c.MaxLabelValueLength = 8 }, 400,
		`label "__name__" has a value of 19 bytes, over 8 (max_label_value_length)`, reasonLimit)
}

// TestLimitsAtTheEdge: a series exactly at every limit passes; 0 turns a limit off.
func TestLimitsAtTheEdge(t *testing.T) {
	var many []string
	for i := range DefaultMaxLabelsPerSeries - 2 { // with __name__ and the long label: 128
		many = append(many, fmt.Sprintf("l%03d", i), "v")
	}
	many = append(many, "z"+strings.Repeat("n", DefaultMaxLabelNameLength-1), strings.Repeat("v", DefaultMaxLabelValueLength))
	for _, mod := range []func(*Config){nil, func(c *Config) { c.MaxLabelsPerSeries, c.MaxLabelNameLength, c.MaxLabelValueLength = 0, 0, 0 }} {
		sink := &componenttest.Sink{}
		r := newTestReceiver(t, mod, sink)
		if w := r.do(request{body: v1Body(t, series("up", many, prompb.Sample{Value: 1, Timestamp: 1}))}); w.Code != http.StatusNoContent || sink.Items() != 1 {
			t.Fatalf("a series at the limits: %d %s", w.Code, w.Body)
		}
	}
}

func TestNaNAndInfAreData(t *testing.T) {
	// NaN (including the staleness marker) and ±Inf are valid sample values in remote write.
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, nil, sink)
	stale := math.Float64frombits(0x7ff0000000000002)
	w := r.do(request{body: v1Body(t, series("g", nil,
		prompb.Sample{Value: math.NaN(), Timestamp: 1}, prompb.Sample{Value: math.Inf(1), Timestamp: 2},
		prompb.Sample{Value: math.Inf(-1), Timestamp: 3}, prompb.Sample{Value: stale, Timestamp: 4}))})
	if w.Code != http.StatusNoContent || sink.Items() != 4 {
		t.Fatalf("status %d, items %d: %s", w.Code, sink.Items(), w.Body)
	}
}

func TestPipelineAnswers(t *testing.T) {
	body := v1Body(t, series("up", nil, prompb.Sample{Value: 1, Timestamp: 1}))
	f := func(name string, err error, wantCode int, wantRetryAfter string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			r := newTestReceiver(t, nil, consumerFunc(func(context.Context, *batch.Batch) error { return err }))
			w := r.do(request{body: body})
			if w.Code != wantCode || w.Header().Get("Retry-After") != wantRetryAfter {
				t.Fatalf("got %d Retry-After %q, want %d %q", w.Code, w.Header().Get("Retry-After"), wantCode, wantRetryAfter)
			}
		})
	}
	f("permanent", consumererror.NewPermanent(errors.New("no")), 400, "")
	f("backpressure", consumererror.NewBackpressure(errors.New("queue full"), 3*time.Second), 429, "3")
	f("backpressure no delay", consumererror.NewBackpressure(errors.New("queue full"), 0), 429, "1")
	f("retryable", errors.New("backend down"), 503, "")
	f("retryable after", consumererror.NewRetryable(errors.New("backend down"), 1500*time.Millisecond), 503, "2")
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	cfg.Endpoint = "127.0.0.1:0"
	componenttest.CheckReceiver(t, NewFactory(), cfg)
}

func TestOverHTTP(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, func(c *Config) { c.MaxRequestBodySize = 1 << 10 }, sink)
	if err := r.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	url := "http://" + r.Addr() + DefaultPath
	post := func(body []byte) int {
		resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(v1Body(t, series("up", nil, prompb.Sample{Value: 1, Timestamp: 1}))); code != 204 {
		t.Fatalf("status %d", code)
	}
	big := make([]prompb.TimeSeries, 200)
	for i := range big {
		big[i] = series("m", []string{"i", strings.Repeat("x", 20) + string(rune('a'+i%26))}, prompb.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	if code := post(v1Body(t, big...)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d, want 413", code)
	}
	if sink.Items() != 1 {
		t.Fatalf("items %d, want 1", sink.Items())
	}
}

func counterValue(t *testing.T, r *receiver, reason string) float64 {
	t.Helper()
	return testutil.ToFloat64(r.rejected.WithLabelValues(reason))
}

// 2.0 metadata travels with each series; 1.0 has it once per family in the request. Rewriting a
// 2.0 body as 1.0 keeps it that way, under the family's name (a classic histogram's _bucket,
// _sum and _count series share the family's), so that neither an OTLP conversion nor a 2.0
// exporter loses the types, help and units.
func TestRemoteWriteV2KeepsMetadata(t *testing.T) {
	st := writev2.NewSymbolTable()
	hist := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: st.Symbolize("Latency."), UnitRef: st.Symbolize("seconds")}
	req := writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "http_requests_total", "code", "200"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "http_requests_total", "code", "500"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "lat_seconds_bucket", "le", "+Inf"), nil),
			Samples:    []writev2.Sample{{Value: 2, Timestamp: 1000}},
			Metadata:   hist,
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "lat_seconds_count"), nil),
			Samples:    []writev2.Sample{{Value: 2, Timestamp: 1000}},
			Metadata:   hist,
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "no_metadata"), nil),
			Samples:    []writev2.Sample{{Value: 2, Timestamp: 1000}},
		},
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, nil, sink)
	w := r.do(request{contentType: "application/x-protobuf;proto=io.prometheus.write.v2.Request", body: raw})
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := sink.Batches()
	if len(got) != 1 || got[0].Items() != 5 {
		t.Fatalf("want one batch of 5 samples, got %v", got)
	}
	rw, _ := got[0].PromRW()
	var v1 prompb.WriteRequest
	if err := v1.Unmarshal(rw); err != nil {
		t.Fatal(err)
	}
	want := []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests."},
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat_seconds", Help: "Latency.", Unit: "seconds"},
	}
	if len(v1.Timeseries) != 5 || len(v1.Metadata) != len(want) {
		t.Fatalf("%d series, metadata %+v; want 5 series, metadata %+v", len(v1.Timeseries), v1.Metadata, want)
	}
	for i := range want {
		if g := v1.Metadata[i]; g.Type != want[i].Type || g.MetricFamilyName != want[i].MetricFamilyName || g.Help != want[i].Help || g.Unit != want[i].Unit {
			t.Errorf("metadata %d: %+v, want %+v", i, v1.Metadata[i], want[i])
		}
	}
	// The batch is a valid 1.0 body, and converts with the types.
	if _, err := batch.FromPromRW(rw); err != nil {
		t.Fatal(err)
	}
	md, err := got[0].Metrics()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		types[ms.At(i).Name()] = ms.At(i).Type().String()
	}
	if types["lat_seconds"] != "Histogram" {
		t.Errorf("converted metrics %v: want lat_seconds as a Histogram", types)
	}
}

// TestInFlightBudget: a body that does not fit the budget is refused with 429 and Retry-After
// before it is read, one whose snappy-decoded length does not fit before it is decoded, and the
// budget is back to zero once a request is answered.
func TestInFlightBudget(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, nil, sink)
	h := r.newServer().Handler
	raw := make([]prompb.TimeSeries, 500)
	for i := range raw {
		raw[i] = series("m", []string{"i", strconv.Itoa(i)}, prompb.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	body := snappy.Encode(nil, v1Body(t, raw...))
	post := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		h.ServeHTTP(w, req)
		return w
	}
	decoded, err := snappy.DecodedLen(body)
	if err != nil || decoded <= len(body) {
		t.Fatalf("decoded length %d (%v), want more than the %d compressed", decoded, err, len(body))
	}
	for _, tc := range []struct {
		name string
		room int64
	}{
		{"no room for the body", int64(len(body)) - 1},
		{"no room for the decoded body", int64(len(body)) + int64(decoded) - 1},
	} {
		taken := r.budget.Available() - tc.room
		if !r.budget.TryAcquire(taken) {
			t.Fatal("cannot take the budget")
		}
		w := post()
		r.budget.Release(taken)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
			t.Errorf("%s: %d Retry-After %q, want 429 and 2", tc.name, w.Code, w.Header().Get("Retry-After"))
		}
		if n := r.budget.InUse(); n != 0 {
			t.Errorf("%s: %d bytes still held", tc.name, n)
		}
	}
	if got := counterValue(t, r, reasonInFlight); got != 2 {
		t.Errorf("in_flight_limit counted %v, want 2", got)
	}
	if sink.Items() != 0 {
		t.Fatalf("refused requests reached the pipeline: %d items", sink.Items())
	}
	if w := post(); w.Code != http.StatusNoContent || sink.Items() != 500 || r.budget.InUse() != 0 {
		t.Errorf("with room: %d, %d items, %d bytes held; want 204, 500, 0", w.Code, sink.Items(), r.budget.InUse())
	}
}

// TestInFlightBudgetFitsTheLargestRequest: a budget smaller than a largest request (its body and
// snappy's output) is refused, and the default is raised to fit one.
func TestInFlightBudgetFitsTheLargestRequest(t *testing.T) {
	cfg := NewConfig()
	cfg.HTTP.MaxInFlightBytes = 100 << 20
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_in_flight_bytes: must be at least 206918997 (max_request_body_size plus max_decompressed_body_size, plus a third") {
		t.Errorf("a 100 MiB budget under a 148 MiB request: %v", err)
	}
	cfg.HTTP.MaxInFlightBytes = 0
	if got, want := cfg.inFlightLimit(), server.LimitFor(cfg.HTTP.MaxBodySize()+int64(cfg.MaxDecompressedBodySize)); got < want {
		t.Errorf("default budget %d, below the largest request's %d", got, want)
	}
}

// TestAuth: without a credential or with a wrong one, 401 naming the scheme and nothing else; a
// token whose grant leaves out metrics, 403; a granted one's tenant is stamped on what it sends.
func TestAuth(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, func(c *Config) {
		c.Auth = &server.Auth{Tokens: []server.TokenAuth{
			{Name: "logs-shipper", Token: "logs-0nly-s3cret", Grant: server.Grant{Signals: []string{"logs"}}},
			{Name: "prometheus", Token: "m3trics-s3cret", Grant: server.Grant{Tenant: "team-m"}},
		}}
	}, sink)
	body := v1Body(t, series("up", []string{"job", "a"}, prompb.Sample{Value: 1, Timestamp: 1}))
	for _, tc := range []struct {
		name, authorization string
		code                int
	}{
		{"no credential", "", http.StatusUnauthorized},
		{"wrong token", "Bearer m3trics-s3cre", http.StatusUnauthorized},
		{"basic, not configured", "Basic cHJvbTpzM2NyZXQ=", http.StatusUnauthorized},
		{"logs-only token", "Bearer logs-0nly-s3cret", http.StatusForbidden},
	} {
		h := map[string]string{}
		if tc.authorization != "" {
			h["Authorization"] = tc.authorization
		}
		w := r.do(request{contentType: "application/x-protobuf", body: body, header: h})
		if w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.code)
		}
		if tc.code == http.StatusUnauthorized && !strings.Contains(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want the Bearer scheme named", tc.name, w.Header().Get("WWW-Authenticate"))
		}
		if b := w.Body.String(); strings.Contains(b, "s3cret") || strings.Contains(b, "logs-shipper") || strings.Contains(b, "prometheus") {
			t.Errorf("%s: the answer %q tells about the credentials", tc.name, b)
		}
	}
	if n := len(sink.Batches()); n != 0 {
		t.Fatalf("%d batches from refused requests", n)
	}
	w := r.do(request{contentType: "application/x-protobuf", body: body, header: map[string]string{"Authorization": "Bearer m3trics-s3cret"}})
	if w.Code != http.StatusNoContent || len(sink.Batches()) != 1 {
		t.Fatalf("granted token: %d %s, %d batches", w.Code, w.Body, len(sink.Batches()))
	}
	md, err := sink.Batches()[0].Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := md.ResourceMetrics().At(0).Resource().Attributes().Get(server.DefaultTenantAttribute); !ok || v.Str() != "team-m" {
		t.Errorf("tenant %v, want team-m", md.ResourceMetrics().At(0).Resource().Attributes().AsRaw())
	}
}
