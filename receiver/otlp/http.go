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
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/server"
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

	if !server.Authorize(req.Context(), sig) {
		r.reject("http", reasonForbidden)
		r.writeStatus(w, enc, http.StatusForbidden, status.New(codes.PermissionDenied, server.ErrForbiddenText))
		return
	}
	body, code, err := r.readBody(req)
	// handOff releases the request's share of the budget once the batch holds the data (or the
	// request is refused): from then on the memory limiter accounts for it, and the budget is for
	// requests still arriving.
	handOff := server.LeaseOf(req).Done
	defer handOff()
	if err != nil {
		switch code {
		case http.StatusUnsupportedMediaType:
			r.reject("http", reasonUnsupportedMedia)
			w.Header().Set("Accept-Encoding", "gzip, zstd, deflate, identity")
			http.Error(w, err.Error(), code)
		case http.StatusRequestEntityTooLarge:
			r.reject("http", reasonTooLarge)
			r.writeStatus(w, enc, code, status.New(codes.InvalidArgument, err.Error()))
		case http.StatusTooManyRequests:
			r.reject("http", reasonInFlight)
			w.Header().Set("Retry-After", retryAfterSeconds(server.RetryAfterBusy))
			r.writeStatus(w, enc, code, status.New(codes.ResourceExhausted, err.Error()))
		default:
			r.reject("http", reasonMalformed)
			r.writeStatus(w, enc, code, status.New(codes.InvalidArgument, err.Error()))
		}
		return
	}

	var b *batch.Batch
	if enc == encProto {
		b, err = batch.FromEncodedLimited(sig, body, r.limits())
	} else if b, err = decodeJSON(sig, body); err == nil {
		err = batch.CheckLimits(b, r.limits())
	}
	handOff()
	if err != nil {
		r.reject("http", refusalReason(err))
		r.set.Logger.Debug("malformed OTLP/HTTP request", "signal", sig, "error", err)
		r.writeStatus(w, enc, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
		return
	}

	if err := server.StampTenant(req.Context(), b); err != nil {
		r.reject("http", reasonMalformed)
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

// writeServerError formats the listener's own refusals (401, 413, 429) like every other error.
func (r *otlp) writeServerError(w http.ResponseWriter, req *http.Request, code int, msg string) {
	enc := parseContentType(req.Header.Get("Content-Type"))
	if enc == encUnknown {
		http.Error(w, msg, code)
		return
	}
	c := codes.InvalidArgument
	switch code {
	case http.StatusUnauthorized:
		c = codes.Unauthenticated
	case http.StatusTooManyRequests:
		c = codes.ResourceExhausted
	}
	r.writeStatus(w, enc, code, status.New(c, msg))
}

// Body reading. Bodies are read into fixed-size chunks from a pool, never into one buffer grown
// by doubling: a decompression bomb cut off at the size limit then leaves no garbage behind (its
// chunks serve the next request), and no buffer larger than a chunk is ever pooled. The
// decompressed size is bounded by the same limit as the body, so that a small compressed request
// cannot expand without bound, and charged to the request's lease on the listener's budget chunk
// by chunk, so that many of them at once cannot either.

var errTooLarge = errors.New("request body is over max_request_body_size")

// chunkSize is the unit bodies are read and charged in: larger than most requests (an SDK's
// batch of 512 spans is 50-300 KB), so that a typical body is one chunk.
const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// body is a request body read into pooled chunks, or, when its length was declared and needs
// no decompression, into one slice of that length (whole) that the batch then keeps; the zero
// value is empty.
type body struct {
	chunks []*[]byte
	n      int // bytes held, across the chunks
	whole  []byte
}

// owned reports whether the body is already a slice of its own, which join hands over as is.
func (b *body) owned() bool { return b.whole != nil }

// join returns the body as one slice of exactly its length, which the caller keeps: whole, or a
// new copy of the chunks.
func (b *body) join() []byte {
	if b.whole != nil {
		w := b.whole
		b.whole = nil
		return w
	}
	out := make([]byte, 0, b.n)
	for i, c := range b.chunks {
		out = append(out, (*c)[:min(chunkSize, b.n-i*chunkSize)]...)
	}
	return out
}

// free gives the chunks back to the pool.
func (b *body) free() {
	b.whole = nil
	for _, c := range b.chunks {
		chunkPool.Put(c)
	}
	b.chunks, b.n = nil, 0
}

// readBody decompresses and reads the body into one slice of its own, which the batch keeps, or
// returns an error with the HTTP status to answer. A body read through the pooled chunks is
// copied out of them in one piece, and that copy is charged to the lease too: the request holds
// it until the hand-off.
func (r *otlp) readBody(req *http.Request) ([]byte, int, error) {
	out := &body{}
	defer out.free()
	if err := r.read(req, out); err != nil {
		code, err := readError(err, strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))))
		return nil, code, err
	}
	if !out.owned() && !server.LeaseOf(req).TryAcquire(int64(out.n)) {
		return nil, http.StatusTooManyRequests, server.ErrInFlightLimit
	}
	return out.join(), 0, nil
}

// errUnsupportedEncoding is a Content-Encoding the receiver does not decode (415).
type errUnsupportedEncoding string

func (e errUnsupportedEncoding) Error() string {
	return fmt.Sprintf("unsupported Content-Encoding %q: use gzip, zstd, deflate or identity", string(e))
}

// read reads the request's body into out, decompressing it.
func (r *otlp) read(req *http.Request, out *body) error {
	var src io.Reader = req.Body
	// The listener reserved the body as it arrives; what decompression produces is charged here.
	var charge *server.Lease
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
		// A declared length (which net/http holds the client to, and which the listener
		// reserved before the body was read) is read straight into a slice of that length:
		// one allocation, which becomes the batch's, and no copy.
		if n := req.ContentLength; n >= 0 && n <= r.maxBody {
			out.whole = make([]byte, n)
			out.n = int(n)
			_, err := io.ReadFull(req.Body, out.whole)
			return err
		}
	case "gzip", "x-gzip":
		zr, err := getGzip(req.Body)
		if err != nil {
			return err
		}
		defer gzipPool.Put(zr)
		src, charge = zr, server.LeaseOf(req)
	case "zstd":
		zr, err := otlpgrpc.NewZstdReader(req.Body, server.LeaseOf(req))
		if err != nil {
			return err
		}
		defer zr.Close()
		src, charge = zr, server.LeaseOf(req)
	case "deflate":
		zr, err := getZlib(req.Body)
		if err != nil {
			return err
		}
		defer zlibPool.Put(zr)
		src, charge = zr, server.LeaseOf(req)
	default:
		return errUnsupportedEncoding(ce)
	}
	return out.readLimited(src, r.maxBody, charge)
}

func readError(err error, encoding string) (int, error) {
	var mbe *http.MaxBytesError
	var unsupported errUnsupportedEncoding
	switch {
	case errors.As(err, &unsupported):
		return http.StatusUnsupportedMediaType, err
	case errors.Is(err, errTooLarge) || errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errTooLarge
	case errors.Is(err, server.ErrInFlightLimit) || errors.Is(err, otlpgrpc.ErrInFlightLimit):
		return http.StatusTooManyRequests, err
	case encoding != "" && encoding != "identity":
		return http.StatusBadRequest, fmt.Errorf("read %s body: %w", encoding, err)
	}
	return http.StatusBadRequest, fmt.Errorf("read body: %w", err)
}

// readLimited reads r to its end into b; more than limit bytes is errTooLarge. With a lease,
// each chunk is charged to it before it is filled (decompressed bytes; the listener reserved
// the body's own bytes), and a chunk the budget has no room for is otlpgrpc.ErrInFlightLimit.
func (b *body) readLimited(r io.Reader, limit int64, lease *server.Lease) error {
	for {
		off := b.n % chunkSize
		if off == 0 && b.n == len(b.chunks)*chunkSize {
			if !lease.TryAcquire(chunkSize) {
				return otlpgrpc.ErrInFlightLimit
			}
			b.chunks = append(b.chunks, chunkPool.Get().(*[]byte))
		}
		// Up to one byte past the limit: reading it tells a body of exactly the limit from a
		// larger one.
		end := int64(chunkSize)
		if room := limit + 1 - int64(b.n); room < end-int64(off) {
			end = int64(off) + room
		}
		n, err := r.Read((*b.chunks[len(b.chunks)-1])[off:end])
		b.n += n
		if int64(b.n) > limit {
			return errTooLarge
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var (
	gzipPool sync.Pool // *gzip.Reader
	zlibPool sync.Pool // io.ReadCloser implementing zlib.Resetter
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
