package otlpgrpc

import (
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/grpc/encoding"
	// Imported so that its init (which registers the standard library's gzip) runs before ours
	// and ours replaces it: klauspost's gzip is about twice as fast.
	_ "google.golang.org/grpc/encoding/gzip"
)

// GzipName is the grpc-encoding value for gzip.
const GzipName = "gzip"

func init() {
	encoding.RegisterCompressor(&gzipCompressor{})
}

type gzipCompressor struct {
	writers sync.Pool
	readers sync.Pool
}

func (*gzipCompressor) Name() string { return GzipName }

type pooledGzipWriter struct {
	*gzip.Writer
	pool *sync.Pool
}

func (w *pooledGzipWriter) Close() error {
	err := w.Writer.Close()
	w.pool.Put(w)
	return err
}

func (c *gzipCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if z, ok := c.writers.Get().(*pooledGzipWriter); ok {
		z.Reset(w)
		return z, nil
	}
	z, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	return &pooledGzipWriter{Writer: z, pool: &c.writers}, nil
}

// pooledGzipReader is one message's use of a pooled reader; see chargedReader.
type pooledGzipReader struct {
	*gzip.Reader
	pool *sync.Pool
}

func (p *pooledGzipReader) finish(ok bool) {
	if ok {
		p.pool.Put(p.Reader)
	}
}

// Decompress charges the compressed message and what it produces to the budget of
// ChargeDecompression. A gzip reader holds a 32 KiB window and little else, so readers are
// pooled whatever the message was.
func (c *gzipCompressor) Decompress(r io.Reader) (io.Reader, error) {
	b := chargedBudget()
	compressed := compressedSize(r)
	if !acquire(b, compressed) {
		return refusal(), nil
	}
	z, ok := c.readers.Get().(*gzip.Reader)
	var err error
	if ok {
		if err = z.Reset(r); err != nil {
			c.readers.Put(z)
		}
	} else {
		z, err = gzip.NewReader(r)
	}
	if err != nil {
		release(b, compressed)
		return nil, err
	}
	return &chargedReader{r: &pooledGzipReader{Reader: z, pool: &c.readers}, budget: b, held: compressed}, nil
}
