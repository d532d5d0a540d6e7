package otlp

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// fuzzReceiver is a receiver whose HTTP handler is called directly; its pipelines discard.
func fuzzReceiver(f *testing.F) *otlp {
	f.Helper()
	cfg := testConfig()
	cfg.Protocols.HTTP.MaxRequestBodySize = 64 << 10
	next := map[batch.Signal]component.Consumer{}
	for _, sig := range batch.Signals {
		next[sig] = component.Discard
	}
	r, err := newOTLP(component.NopSettings(component.KindReceiver, component.ID{Type: Type}), cfg, next)
	if err != nil {
		f.Fatal(err)
	}
	return r
}

// Content-Encodings the fuzzers pick from: the body compressed for real (so that the decoders
// behind it see the fuzzed bytes), or the fuzzed bytes labelled as compressed.
var fuzzEncodings = []struct {
	header   string
	compress bool
}{
	{"", false}, {"gzip", true}, {"zstd", true}, {"deflate", true},
	{"gzip", false}, {"zstd", false}, {"deflate", false}, {"br", false},
}

func fuzzHTTP(f *testing.F, contentType string) {
	r := fuzzReceiver(f)
	for i, sig := range batch.Signals {
		p := payloadFor(f, sig, 0)
		body := p.proto
		if contentType == contentTypeJSON {
			body = p.json
		}
		for e := range fuzzEncodings {
			f.Add(body, uint8(i), uint8(e))
		}
	}
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, sigSel, encSel uint8) {
		sig := batch.Signals[int(sigSel)%len(batch.Signals)]
		enc := fuzzEncodings[int(encSel)%len(fuzzEncodings)]
		body := data
		if enc.compress {
			body = compress(t, enc.header, data)
		}
		req := httptest.NewRequest(http.MethodPost, paths[sig], bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if enc.header != "" {
			req.Header.Set("Content-Encoding", enc.header)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Code == http.StatusUnsupportedMediaType && enc.header != "br" {
			t.Fatalf("415 for Content-Encoding %q", enc.header)
		}
	})
}

func FuzzHTTPProtobuf(f *testing.F) { fuzzHTTP(f, contentTypeProto) }

func FuzzHTTPJSON(f *testing.F) { fuzzHTTP(f, contentTypeJSON) }

// FuzzScan checks batch.Scan, which guards the pass-through path: it never panics, its errors
// wrap ErrMalformed, and when pdata decodes the same bytes both count the same items. (Each may
// refuse what the other takes: Scan does not look inside items, and pdata skips some malformed
// unknown fields, such as an unterminated group, that Scan refuses.)
func FuzzScan(f *testing.F) {
	for i, sig := range batch.Signals {
		f.Add(payloadFor(f, sig, 0).proto, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, sigSel uint8) {
		sig := batch.Signals[int(sigSel)%len(batch.Signals)]
		n, err := batch.Scan(sig, data)
		if err != nil {
			if !errors.Is(err, batch.ErrMalformed) {
				t.Fatalf("Scan error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("Scan counted %d items", n)
		}
		if b, err := decodedBatch(sig, data); err == nil && n != b.Items() {
			t.Fatalf("Scan counted %d items, pdata %d", n, b.Items())
		}
		// With a limit: its errors are ErrLimit or ErrMalformed, and a request over it on the
		// wire is over it decoded too (what the JSON path checks).
		lim := batch.Limits{MaxAttributes: 2, MaxAttributeBytes: 8}
		_, err = batch.ScanLimited(sig, data, lim)
		if err != nil && !errors.Is(err, batch.ErrLimit) && !errors.Is(err, batch.ErrMalformed) {
			t.Fatalf("ScanLimited error is neither ErrLimit nor ErrMalformed: %v", err)
		}
		if errors.Is(err, batch.ErrLimit) {
			if b, derr := decodedBatch(sig, data); derr == nil && !errors.Is(batch.CheckLimits(b, lim), batch.ErrLimit) {
				t.Fatalf("over the limit on the wire (%v), not once decoded", err)
			}
		}
	})
}

// decodedBatch decodes data with pdata, as a batch (whose Items are pdata's count).
func decodedBatch(sig batch.Signal, data []byte) (*batch.Batch, error) {
	switch sig {
	case batch.Traces:
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
		if err != nil {
			return nil, err
		}
		return batch.FromTraces(td), nil
	case batch.Metrics:
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return nil, err
		}
		return batch.FromMetrics(md), nil
	default:
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			return nil, err
		}
		return batch.FromLogs(ld), nil
	}
}
