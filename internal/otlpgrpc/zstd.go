package otlpgrpc

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
)

// ZstdName is the grpc-encoding value for zstd.
const ZstdName = "zstd"

// maxWindow bounds the memory a peer can make a decoder allocate.
const maxWindow = 8 << 20

func init() {
	// gRPC looks compressors up by name from a process-wide registry; registering in init is the
	// only way its API offers.
	encoding.RegisterCompressor(&zstdCompressor{})
}

type zstdCompressor struct {
	encoders sync.Pool
	decoders sync.Pool
}

func (*zstdCompressor) Name() string { return ZstdName }

type pooledEncoder struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (e *pooledEncoder) Close() error {
	err := e.Encoder.Close()
	e.pool.Put(e)
	return err
}

// ZstdEncoderOptions are the settings of every zstd encoder Vigil sends with (gRPC and HTTP):
// the fastest level, one goroutine per encoder, a 1 MiB window (what decoders must hold), and no
// content checksum: it is optional in a zstd frame, TCP (and TLS) already protect the bytes, and
// hashing every byte was 7% of a relay's CPU at 100k spans/s.
func ZstdEncoderOptions() []zstd.EOption {
	return []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1 << 20), zstd.WithEncoderCRC(false)}
}

func (c *zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if e, ok := c.encoders.Get().(*pooledEncoder); ok {
		e.Reset(w)
		return e, nil
	}
	enc, err := zstd.NewWriter(w, ZstdEncoderOptions()...)
	if err != nil {
		return nil, err
	}
	return &pooledEncoder{Encoder: enc, pool: &c.encoders}, nil
}

// pooledDecoder is a fresh wrapper per stream around a pooled decoder, so that a late Read from
// gRPC after the end of the stream cannot reach a decoder another stream now uses.
type pooledDecoder struct {
	dec  *zstd.Decoder
	pool *sync.Pool
}

// Read returns the decoder to the pool once the stream ends, since gRPC never closes the reader.
func (d *pooledDecoder) Read(p []byte) (int, error) {
	if d.dec == nil {
		return 0, io.EOF
	}
	n, err := d.dec.Read(p)
	if err != nil {
		if err == io.EOF {
			_ = d.dec.Reset(nil) // releases the source reader
			d.pool.Put(d.dec)
		}
		d.dec = nil
	}
	return n, err
}

func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	if dec, ok := c.decoders.Get().(*zstd.Decoder); ok {
		if err := dec.Reset(r); err != nil {
			return nil, err
		}
		return &pooledDecoder{dec: dec, pool: &c.decoders}, nil
	}
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	return &pooledDecoder{dec: dec, pool: &c.decoders}, nil
}
