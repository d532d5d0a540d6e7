package client

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/vigilhq/vigil/internal/otlpgrpc"
)

// Compression names a body or message compression. The names are the Content-Encoding and
// grpc-encoding values, which are also what otelcol configs use.
type Compression string

const (
	None Compression = "none"
	Gzip Compression = "gzip"
	// Zstd comes from otlpgrpc, whose import registers the zstd compressor with gRPC.
	Zstd Compression = otlpgrpc.ZstdName
)

// IsNone reports whether c asks for no compression; "" counts as none, as in otelcol.
func (c Compression) IsNone() bool { return c == "" || c == None }

func (c Compression) validate() error {
	switch c {
	case "", None, Gzip, Zstd:
		return nil
	}
	return fmt.Errorf("compression: must be one of none, gzip, zstd; got %q", string(c))
}

// gzip writers hold about 800 KiB of state each; pooling them keeps a busy exporter from
// allocating that per request.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // BestSpeed is a valid level: no error
	return w
}}

// zstdEncoder is shared: EncodeAll is safe for concurrent use and keeps its own internal pool.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, otlpgrpc.ZstdEncoderOptions()...)
})

// Compress appends src compressed with c to dst and returns the result. With no compression it
// returns src itself, so callers must treat the result as read-only.
func (c Compression) Compress(dst, src []byte) ([]byte, error) {
	switch c {
	case Gzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer func() {
			w.Reset(io.Discard) // do not keep the caller's buffer alive in the pool
			gzipWriters.Put(w)
		}()
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	}
	return src, nil
}
