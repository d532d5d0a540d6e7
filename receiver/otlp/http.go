package otlp

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/batch"
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// encoding is the request's (and so the response's) content type.
type encoding uint8

const (
	encUnknown encoding = iota
	encProto
	encJSON
)

func parseContentType(v string) encoding {
	switch v { // the common spellings, without parsing
	case contentTypeProto:
		return encProto
	case contentTypeJSON:
		return encJSON
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return encUnknown
	}
	switch mt {
	case contentTypeProto:
		return encProto
	case contentTypeJSON:
		return encJSON
	}
	return encUnknown
}

// ServeHTTP answers POSTs of Export…ServiceRequests on the configured paths.
func (r *otlp) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sig, ok := r.paths[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		r.reject("http", reasonMethod)
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method "+req.Method+" not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	enc := parseContentType(req.Header.Get("Content-Type"))
	if enc == encUnknown {
		r.reject("http", reasonUnsupportedMedia)
		w.Header().Set("Accept-Post", contentTypeProto+", "+contentTypeJSON)
		http.Error(w, fmt.Sprintf("unsupported Content-Type %q: use %s or %s",
			req.Header.Get("Content-Type"), contentTypeProto, contentTypeJSON), http.StatusUnsupportedMediaType)
		return
	}

	buf := getBuffer()
	defer putBuffer(buf)
	body, code, err := r.readBody(req, *buf)
	*buf = body[:0] // keep the grown buffer for the pool
	if err != nil {
		switch code {
		case http.StatusUnsupportedMediaType:
			r.reject("http", reasonUnsupportedMedia)
			w.Header().Set("Accept-Encoding", "gzip, zstd, deflate, identity")
			http.Error(w, err.Error(), code)
		case http.StatusRequestEntityTooLarge:
			r.reject("http", reasonTooLarge)
			r.writeStatus(w, enc, code, status.New(codes.InvalidArgument, err.Error()))
		default:
			r.reject("http", reasonMalformed)
			r.writeStatus(w, enc, code, status.New(codes.InvalidArgument, err.Error()))
		}
		return
	}

	var b *batch.Batch
	if enc == encProto {
		// The batch keeps the bytes for good, so they leave the pooled buffer.
		b, err = batch.FromEncoded(sig, append([]byte(nil), body...))
	} else {
		b, err = decodeJSON(sig, body)
	}
	if err != nil {
		r.reject("http", reasonMalformed)
		r.set.Logger.Debug("malformed OTLP/HTTP request", "signal", sig, "error", err)
		r.writeStatus(w, enc, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
		return
	}

	items := b.Items()
	res := classify(r.next[sig].Consume(req.Context(), b), items)
	switch {
	case res.st != nil:
		if res.retryAfter > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(res.retryAfter))
		}
		r.writeStatus(w, enc, res.httpStatus, res.st)
	case res.partial != nil:
		out, err := partialResponse(sig, res.partial, enc == encJSON)
		if err != nil {
			r.writeStatus(w, enc, http.StatusInternalServerError, status.New(codes.Internal, err.Error()))
			return
		}
		writeBody(w, enc, http.StatusOK, out)
	case enc == encJSON:
		writeBody(w, enc, http.StatusOK, r.emptyJSON[sig])
	default:
		writeBody(w, enc, http.StatusOK, r.emptyProto[sig].Bytes)
	}
}

// decodeJSON decodes an OTLP/JSON request. pdata copies what it keeps, so body may be reused.
func decodeJSON(sig batch.Signal, body []byte) (*batch.Batch, error) {
	var err error
	switch sig {
	case batch.Traces:
		req := ptraceotlp.NewExportRequest()
		if err = req.UnmarshalJSON(body); err == nil {
			return batch.FromTraces(req.Traces()), nil
		}
	case batch.Metrics:
		req := pmetricotlp.NewExportRequest()
		if err = req.UnmarshalJSON(body); err == nil {
			return batch.FromMetrics(req.Metrics()), nil
		}
	case batch.Logs:
		req := plogotlp.NewExportRequest()
		if err = req.UnmarshalJSON(body); err == nil {
			return batch.FromLogs(req.Logs()), nil
		}
	default:
		return nil, fmt.Errorf("unknown signal %s", sig)
	}
	return nil, fmt.Errorf("malformed OTLP/JSON %s request: %w", sig, err)
}

func writeBody(w http.ResponseWriter, enc encoding, code int, body []byte) {
	if enc == encJSON {
		w.Header().Set("Content-Type", contentTypeJSON)
	} else {
		w.Header().Set("Content-Type", contentTypeProto)
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeStatus answers with a google.rpc.Status in the request's encoding, as OTLP/HTTP asks for
// every 4xx and 5xx.
func (r *otlp) writeStatus(w http.ResponseWriter, enc encoding, code int, st *status.Status) {
	var (
		body []byte
		err  error
	)
	if enc == encJSON {
		body, err = protojson.Marshal(st.Proto())
	} else {
		body, err = proto.Marshal(st.Proto())
	}
	if err != nil {
		http.Error(w, st.Message(), code)
		return
	}
	writeBody(w, enc, code, body)
}

// writeServerError formats the listener's own refusals (401, 413) like every other error.
func (r *otlp) writeServerError(w http.ResponseWriter, req *http.Request, code int, msg string) {
	enc := parseContentType(req.Header.Get("Content-Type"))
	if enc == encUnknown {
		http.Error(w, msg, code)
		return
	}
	c := codes.InvalidArgument
	if code == http.StatusUnauthorized {
		c = codes.Unauthenticated
	}
	r.writeStatus(w, enc, code, status.New(c, msg))
}

// Body reading. Bodies are read into pooled buffers; the decompressed size is bounded by the
// same limit as the body, so that a small compressed request cannot expand without bound.

var errTooLarge = errors.New("request body is over max_request_body_size")

// readBody decompresses and reads the body into dst (grown as needed) and returns it, or an
// error with the HTTP status to answer.
func (r *otlp) readBody(req *http.Request, dst []byte) ([]byte, int, error) {
	var src io.Reader = req.Body
	ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	switch ce {
	case "", "identity":
		// Size the buffer from Content-Length, but only up to a point: the length is a claim,
		// and memory should follow the bytes that actually arrive.
		if n := min(req.ContentLength, r.maxBody, 1<<20) + 512; int64(cap(dst)) < n {
			dst = make([]byte, 0, n)
		}
	case "gzip", "x-gzip":
		zr, err := getGzip(req.Body)
		if err != nil {
			code, err := readError(err, "gzip")
			return dst, code, err
		}
		defer gzipPool.Put(zr)
		src = zr
	case "zstd":
		zr, err := getZstd(req.Body)
		if err != nil {
			return dst, http.StatusBadRequest, fmt.Errorf("zstd: %w", err)
		}
		defer putZstd(zr)
		src = zr
	case "deflate":
		zr, err := getZlib(req.Body)
		if err != nil {
			code, err := readError(err, "deflate")
			return dst, code, err
		}
		defer zlibPool.Put(zr)
		src = zr
	default:
		return dst, http.StatusUnsupportedMediaType,
			fmt.Errorf("unsupported Content-Encoding %q: use gzip, zstd, deflate or identity", ce)
	}
	dst, err := readLimited(dst, src, r.maxBody)
	if err != nil {
		code, err := readError(err, ce)
		return dst, code, err
	}
	return dst, 0, nil
}

func readError(err error, encoding string) (int, error) {
	var mbe *http.MaxBytesError
	if errors.Is(err, errTooLarge) || errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, errTooLarge
	}
	if encoding != "" && encoding != "identity" {
		return http.StatusBadRequest, fmt.Errorf("read %s body: %w", encoding, err)
	}
	return http.StatusBadRequest, fmt.Errorf("read body: %w", err)
}

// readLimited appends r's content to dst; more than limit bytes is errTooLarge.
func readLimited(dst []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		end := int64(cap(dst))
		if room := limit + 1 - int64(len(dst)); int64(cap(dst)-len(dst)) > room {
			end = int64(len(dst)) + room
		}
		n, err := r.Read(dst[len(dst):end])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, errTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

// putBuffer keeps buffers up to 32 MiB: larger ones would pin memory for a rare request.
func putBuffer(b *[]byte) {
	if cap(*b) <= 32<<20 {
		*b = (*b)[:0]
		bufferPool.Put(b)
	}
}

var (
	gzipPool sync.Pool // *gzip.Reader
	zlibPool sync.Pool // io.ReadCloser implementing zlib.Resetter
	zstdPool sync.Pool // *zstd.Decoder
)

func getGzip(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			gzipPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

func getZlib(r io.Reader) (io.ReadCloser, error) {
	if zr, ok := zlibPool.Get().(io.ReadCloser); ok {
		if err := zr.(zlib.Resetter).Reset(r, nil); err != nil {
			zlibPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return zlib.NewReader(r)
}

// zstdMaxWindow bounds the memory a request can make a decoder allocate, whatever it declares.
const zstdMaxWindow = 8 << 20

func getZstd(r io.Reader) (*zstd.Decoder, error) {
	if zr, ok := zstdPool.Get().(*zstd.Decoder); ok {
		if err := zr.Reset(r); err != nil {
			putZstd(zr)
			return nil, err
		}
		return zr, nil
	}
	// Concurrency 1 decodes synchronously: no goroutines stay behind in the pool.
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderLowmem(true))
}

func putZstd(zr *zstd.Decoder) {
	_ = zr.Reset(nil) // drop the reference to the request body
	zstdPool.Put(zr)
}
