package loki

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/loki"
	"github.com/vigilhq/vigil/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestReceiver(t *testing.T, sink *componenttest.Sink, mod func(*Config)) *receiver {
	t.Helper()
	cfg := NewConfig()
	cfg.Endpoint = "127.0.0.1:0"
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newReceiver(component.Settings{ID: component.ID{Type: Type}}, cfg, map[batch.Signal]component.Consumer{batch.Logs: sink})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *receiver) post(method, contentType, encoding string, body []byte, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, Path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.cfg.HTTP.NewServer(r).Handler.ServeHTTP(w, req)
	return w
}

const jsonBody = `{"streams":[{"stream":{"service_name":"checkout","env":"prod"},"values":[["1764756000000000000","payment ok",{"trace_id":"abc"}],["1764756001000000000","payment failed"]]}]}`

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

// TestFormats: JSON, gzip JSON and snappy protobuf arrive as the same logs: a resource per
// stream with its labels (and service.name), a record per entry with its metadata and time.
func TestFormats(t *testing.T) {
	proto := snappy.Encode(nil, loki.AppendProto(nil, []loki.Stream{{
		Labels: []loki.Label{{Name: "env", Value: "prod"}, {Name: "service_name", Value: "checkout"}},
		Entries: []loki.Entry{
			{Timestamp: time.Unix(0, 1764756000000000000), Line: "payment ok", Metadata: []loki.Label{{Name: "trace_id", Value: "abc"}}},
			{Timestamp: time.Unix(0, 1764756001000000000), Line: "payment failed"},
		},
	}}))
	for _, tc := range []struct {
		name, ct, enc string
		body          []byte
	}{
		{"json", "application/json", "", []byte(jsonBody)},
		{"gzip json", "application/json; charset=utf-8", "gzip", gz([]byte(jsonBody))},
		{"protobuf", "application/x-protobuf", "", proto},
		{"protobuf, snappy said", "application/x-protobuf", "snappy", proto},
		{"no content type", "", "", proto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &componenttest.Sink{}
			r := newTestReceiver(t, sink, nil)
			w := r.post(http.MethodPost, tc.ct, tc.enc, tc.body, map[string]string{"X-Scope-OrgID": "team-a"})
			if w.Code != http.StatusNoContent {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			bs := sink.Batches()
			if len(bs) != 1 {
				t.Fatalf("%d batches", len(bs))
			}
			ld, err := bs[0].Logs()
			if err != nil {
				t.Fatal(err)
			}
			rl := ld.ResourceLogs().At(0)
			attrs := rl.Resource().Attributes().AsRaw()
			if attrs["service_name"] != "checkout" || attrs["service.name"] != "checkout" || attrs["env"] != "prod" || attrs[TenantAttribute] != "team-a" {
				t.Errorf("resource %v", attrs)
			}
			recs := rl.ScopeLogs().At(0).LogRecords()
			if recs.Len() != 2 || recs.At(0).Body().Str() != "payment ok" || recs.At(1).Body().Str() != "payment failed" {
				t.Fatalf("records %d", recs.Len())
			}
			if v, _ := recs.At(0).Attributes().Get("trace_id"); v.Str() != "abc" || recs.At(0).Timestamp().AsTime().UnixNano() != 1764756000000000000 {
				t.Errorf("record 0: %v at %v", recs.At(0).Attributes().AsRaw(), recs.At(0).Timestamp())
			}
		})
	}
}

// TestBadRequests: each is refused with its status and a reason, and nothing reaches the
// pipeline.
func TestBadRequests(t *testing.T) {
	long := `{"streams":[{"stream":{"a":"b"},"values":[["1","` + strings.Repeat("x", 2000) + `"]]}]}`
	for _, tc := range []struct {
		name, method, ct, enc string
		body                  []byte
		code                  int
		want                  string
	}{
		{"GET", http.MethodGet, "application/json", "", nil, 405, "use POST"},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", "", []byte("a=b"), 415, "unsupported Content-Type"},
		{"zstd", http.MethodPost, "application/json", "zstd", []byte("{}"), 415, "Content-Encoding"},
		{"bad json", http.MethodPost, "application/json", "", []byte(`{"streams":[`), 400, "malformed"},
		{"bad gzip", http.MethodPost, "application/json", "gzip", []byte("not gzip"), 400, "gzip"},
		{"truncated snappy", http.MethodPost, "application/x-protobuf", "", snappy.Encode(nil, bytes.Repeat([]byte{1}, 100))[:20], 400, "snappy"},
		{"garbage protobuf", http.MethodPost, "application/x-protobuf", "", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff}), 400, "malformed"},
		{"line too long", http.MethodPost, "application/json", "", []byte(long), 400, "limit is 1024"},
		{"decompression bomb", http.MethodPost, "application/json", "gzip", gz(bytes.Repeat([]byte(" "), 3<<20)), 413, "max_decompressed_body_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &componenttest.Sink{}
			r := newTestReceiver(t, sink, func(c *Config) { c.MaxLineBytes = 1024; c.MaxDecompressedBodySize = 2 << 20 })
			w := r.post(tc.method, tc.ct, tc.enc, tc.body, nil)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("%d %q, want %d with %q", w.Code, w.Body, tc.code, tc.want)
			}
			if len(sink.Batches()) != 0 {
				t.Error("a refused request reached the pipeline")
			}
		})
	}
}

// TestLabelLimits: a stream label's name and value may be as long as the limits and no
// longer, in JSON and in protobuf; a refusal names the stream and the label.
func TestLabelLimits(t *testing.T) {
	jsonStream := func(name, value string) []byte {
		return []byte(`{"streams":[{"stream":{"` + name + `":"` + value + `"},"values":[["1","x"]]}]}`)
	}
	protoStream := func(name, value string) []byte {
		return snappy.Encode(nil, loki.AppendProto(nil, []loki.Stream{{Labels: []loki.Label{{Name: name, Value: value}},
			Entries: []loki.Entry{{Timestamp: time.Unix(1, 0), Line: "x"}}}}))
	}
	n, v := strings.Repeat("n", 64), strings.Repeat("v", 128)
	for _, tc := range []struct {
		name       string
		label, val string
		code       int
		want       string
	}{
		{"at the limits", n, v, http.StatusNoContent, ""},
		{"name one byte over", n + "n", v, http.StatusBadRequest, "is 65 bytes, the limit is 64"},
		{"value one byte over", n, v + "v", http.StatusBadRequest, "the value of label " + n + " is 129 bytes, the limit is 128"},
	} {
		for _, enc := range []struct {
			name, ct string
			body     func(string, string) []byte
		}{{"json", "application/json", jsonStream}, {"protobuf", "application/x-protobuf", protoStream}} {
			t.Run(tc.name+"/"+enc.name, func(t *testing.T) {
				sink := &componenttest.Sink{}
				r := newTestReceiver(t, sink, func(c *Config) { c.MaxLabelNameLength, c.MaxLabelValueLength = 64, 128 })
				w := r.post(http.MethodPost, enc.ct, "", enc.body(tc.label, tc.val), nil)
				if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
					t.Fatalf("%d %q, want %d with %q", w.Code, w.Body, tc.code, tc.want)
				}
				if got, want := len(sink.Batches()), map[bool]int{true: 1, false: 0}[tc.code == http.StatusNoContent]; got != want {
					t.Errorf("%d batches reached the pipeline, want %d", got, want)
				}
			})
		}
	}
	c := NewConfig()
	c.MaxLabelValueLength = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_label_value_length: must be > 0") {
		t.Errorf("validate: %v", err)
	}
}

// TestStructuredMetadataLimits: an entry with more structured metadata than
// max_structured_metadata_entries_count, or more bytes of it than max_structured_metadata_size,
// is refused in both formats; one at the limits passes.
func TestStructuredMetadataLimits(t *testing.T) {
	md := func(n int, valueBytes int) []loki.Label {
		var out []loki.Label
		for i := range n {
			out = append(out, loki.Label{Name: fmt.Sprintf("k%02d", i), Value: strings.Repeat("v", valueBytes)})
		}
		return out
	}
	jsonBody := func(ls []loki.Label) []byte {
		m := map[string]string{}
		for _, l := range ls {
			m[l.Name] = l.Value
		}
		b, _ := json.Marshal(map[string]any{"streams": []any{map[string]any{"stream": map[string]string{"job": "a"}, "values": [][]any{{"1", "x", m}}}}})
		return b
	}
	protoBody := func(ls []loki.Label) []byte {
		return snappy.Encode(nil, loki.AppendProto(nil, []loki.Stream{{Labels: []loki.Label{{Name: "job", Value: "a"}},
			Entries: []loki.Entry{{Timestamp: time.Unix(1, 0), Line: "x", Metadata: ls}}}}))
	}
	for _, tc := range []struct {
		name string
		md   []loki.Label
		code int
		want string
	}{
		{"at the limits", md(4, 22), http.StatusNoContent, ""}, // 4 × (3 + 22) = 100 bytes
		{"one entry too many", md(5, 1), http.StatusBadRequest, "an entry with 5 structured metadata, the limit is 4"},
		{"one byte too many", md(4, 23)[:4], http.StatusBadRequest, "an entry with 104 bytes of structured metadata, the limit is 100"},
	} {
		for _, enc := range []struct {
			name, ct string
			body     func([]loki.Label) []byte
		}{{"json", "application/json", jsonBody}, {"protobuf", "application/x-protobuf", protoBody}} {
			t.Run(tc.name+"/"+enc.name, func(t *testing.T) {
				sink := &componenttest.Sink{}
				r := newTestReceiver(t, sink, func(c *Config) { c.MaxStructuredMetadataEntries, c.MaxStructuredMetadataSize = 4, 100 })
				w := r.post(http.MethodPost, enc.ct, "", enc.body(tc.md), nil)
				if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
					t.Fatalf("%d %q, want %d with %q", w.Code, w.Body, tc.code, tc.want)
				}
				if got, want := len(sink.Batches()), map[bool]int{true: 1, false: 0}[tc.code == http.StatusNoContent]; got != want {
					t.Errorf("%d batches reached the pipeline, want %d", got, want)
				}
			})
		}
	}
}

func TestPipelineRefusal(t *testing.T) {
	sink := &componenttest.Sink{Err: errBackpressure{}}
	r := newTestReceiver(t, sink, nil)
	w := r.post(http.MethodPost, "application/json", "", []byte(jsonBody), nil)
	if w.Code != http.StatusServiceUnavailable && w.Code != http.StatusTooManyRequests {
		t.Errorf("a refusing pipeline: %d, want a status clients retry", w.Code)
	}
}

type errBackpressure struct{}

func (errBackpressure) Error() string { return "pipeline full" }

func TestConfig(t *testing.T) {
	componenttest.CheckReceiver(t, NewFactory(), func() component.Config {
		c := NewConfig()
		c.Endpoint = "127.0.0.1:0"
		return c
	}())
	c := NewConfig()
	c.MaxLineBytes = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_line_bytes") {
		t.Errorf("validate: %v", err)
	}
}

// TestAuthorisation: a credential without logs in its grant gets 403 and nothing reaches the
// pipeline; one with a tenant has it on the resource, over the X-Scope-OrgID the sender set.
func TestAuthorisation(t *testing.T) {
	sink := &componenttest.Sink{}
	r := newTestReceiver(t, sink, func(c *Config) {
		c.Auth = &server.Auth{
			Tokens: []server.TokenAuth{
				{Token: "traces-only", Grant: server.Grant{Signals: []string{"traces"}}},
				{Token: "team-b", Grant: server.Grant{Tenant: "team-b"}},
			},
			TenantAttribute: TenantAttribute,
		}
	})
	for name, h := range map[string]map[string]string{
		"no credential": nil,
		"wrong token":   {"Authorization": "Bearer team-"},
		"unknown basic": {"Authorization": "Basic cHJvbXRhaWw6czNjcmV0"},
	} {
		w := r.post(http.MethodPost, "application/json", "", []byte(jsonBody), h)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "Bearer") ||
			strings.Contains(w.Body.String(), "team-b") || strings.Contains(w.Body.String(), "traces-only") {
			t.Errorf("%s: %d %q (WWW-Authenticate %q), want 401 naming the scheme and nothing of the tokens", name, w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := len(sink.Batches()); n != 0 {
		t.Fatalf("%d batches from unauthenticated requests", n)
	}
	w := r.post(http.MethodPost, "application/json", "", []byte(jsonBody), map[string]string{"Authorization": "Bearer traces-only"})
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "traces-only") || len(sink.Batches()) != 0 {
		t.Fatalf("logs with a traces-only token: %d %s, %d batches", w.Code, w.Body, len(sink.Batches()))
	}
	w = r.post(http.MethodPost, "application/json", "", []byte(jsonBody), map[string]string{"Authorization": "Bearer team-b", "X-Scope-OrgID": "team-a"})
	if w.Code != http.StatusNoContent {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	ld, err := sink.Batches()[0].Logs()
	if err != nil {
		t.Fatal(err)
	}
	if got := ld.ResourceLogs().At(0).Resource().Attributes().AsRaw()[TenantAttribute]; got != "team-b" {
		t.Errorf("tenant %v, want team-b (the credential's, not the header's)", got)
	}
}
