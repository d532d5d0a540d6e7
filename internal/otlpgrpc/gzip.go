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

// pooledGzipReader hands its reader back to the pool at the end of the stream; see pooledDecoder.
type pooledGzipReader struct {
	r    *gzip.Reader
	pool *sync.Pool
}

func (p *pooledGzipReader) Read(b []byte) (int, error) {
	if p.r == nil {
		return 0, io.EOF
	}
	n, err := p.r.Read(b)
	if err != nil {
		if err == io.EOF {
			p.pool.Put(p.r)
		}
		p.r = nil
	}
	return n, err
}

func (c *gzipCompressor) Decompress(r io.Reader) (io.Reader, error) {
	if z, ok := c.readers.Get().(*gzip.Reader); ok {
		if err := z.Reset(r); err != nil {
			c.readers.Put(z)
			return nil, err
		}
		return &pooledGzipReader{r: z, pool: &c.readers}, nil
	}
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	return &pooledGzipReader{r: z, pool: &c.readers}, nil
}
