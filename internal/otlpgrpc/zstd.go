package otlpgrpc

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
)

// ZstdName is the grpc-encoding value for zstd.
const ZstdName = "zstd"

// Decoder memory. A zstd decoder allocates a history ring of its frame's window (plus two
// blocks) at the first block, whatever the content's size, and keeps it for its next frames:
// a default streaming encoder declares an 8 MiB window even for a 1 KiB body.
const (
	// maxWindow bounds the window a peer can make a decoder allocate. 8 MiB is what the zstd
	// format asks decoders to support (and what klauspost and zstd default to).
	maxWindow = 8 << 20
	// maxPooledWindow is the largest window of the small decoders' pool: the window of Vigil's
	// own encoders (ZstdEncoderOptions) and of most requests sent in one piece (a frame with a
	// declared size uses it as its window).
	maxPooledWindow = 1 << 20
	maxBlock        = 128 << 10
)

// Decoders are pooled in two sync.Pools by window, so that a small request never gets (and
// pins) a decoder with an 8 MiB ring. Pooled decoders live until the garbage collector empties
// the pools (two cycles without use), so a burst of large-window requests leaves nothing pinned
// for long, while during the burst each decoder serves request after request instead of
// becoming garbage: the budget bounds how many are in use at once.
var (
	smallDecoders sync.Pool // *zstd.Decoder, windows ≤ maxPooledWindow
	largeDecoders sync.Pool // *zstd.Decoder, windows ≤ maxWindow
)

// decoderCost is what a decoder holds for a frame with the given window: the ring (window and
// two blocks) and a block buffer.
func decoderCost(window uint64) int64 {
	return int64(window + 3*min(window, maxBlock))
}

// ZstdReader decodes a zstd stream with a pooled decoder whose memory is charged to a budget
// while it is open.
type ZstdReader struct {
	dec    *zstd.Decoder
	large  bool
	budget Budget
	cost   int64
	src    prefixReader
}

// NewZstdReader returns a reader of the zstd stream r. It reads the first frame's header to
// learn its window, charges the decoder's memory for it to b (nil: no budget) and fails with
// ErrInFlightLimit when that does not fit; later frames may not declare a larger window. The
// bytes it produces are the caller's to charge. Close releases the charge and returns the
// decoder to its pool.
func NewZstdReader(r io.Reader, b Budget) (*ZstdReader, error) {
	z := &ZstdReader{budget: b}
	n, err := io.ReadFull(r, z.src.hdr[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	z.src.n, z.src.r = n, r

	window := uint64(maxWindow) // a skippable frame first: assume the worst of what follows
	var h zstd.Header
	switch err := h.Decode(z.src.hdr[:n]); {
	case err != nil:
		// Not zstd, or too short to be: the decoder fails at its first read, before allocating.
		window = zstd.MinWindowSize
	case h.SingleSegment:
		window = max(h.FrameContentSize, zstd.MinWindowSize)
	case !h.Skippable:
		window = h.WindowSize
	}
	if window > maxWindow {
		window = maxWindow + 1 // refused by the decoder, before it allocates
	} else {
		z.cost = decoderCost(window)
	}
	if !acquire(b, z.cost) {
		return nil, ErrInFlightLimit
	}
	z.large = window > maxPooledWindow
	if err := z.getDecoder(window); err != nil {
		unreserve(b, z.cost)
		return nil, err
	}
	return z, nil
}

func (z *ZstdReader) getDecoder(window uint64) error {
	var dec *zstd.Decoder
	pool := &smallDecoders
	if z.large {
		pool = &largeDecoders
	}
	if d, ok := pool.Get().(*zstd.Decoder); ok {
		dec = d
	}
	limit := zstd.WithDecoderMaxWindow(max(window, zstd.MinWindowSize))
	if dec != nil {
		if err := dec.ResetWithOptions(&z.src, limit); err != nil {
			dec.Close()
			return err
		}
		z.dec = dec
		return nil
	}
	// Concurrency 1 decodes synchronously: no goroutines stay behind in the pool. Low-memory
	// mode allocates block buffers as blocks need them rather than at their largest.
	dec, err := zstd.NewReader(&z.src, zstd.WithDecoderConcurrency(1), limit, zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	z.dec = dec
	return nil
}

// Read reads decompressed bytes.
func (z *ZstdReader) Read(p []byte) (int, error) {
	if z.dec == nil {
		return 0, io.EOF
	}
	return z.dec.Read(p)
}

// Close releases the decoder's charge and returns it to its pool; it is safe to call twice.
func (z *ZstdReader) Close() error {
	z.finish(true)
	return nil
}

func (z *ZstdReader) finish(ok bool) {
	if z.dec == nil {
		return
	}
	dec := z.dec
	z.dec, z.src.r = nil, nil
	release(z.budget, z.cost)
	z.cost = 0
	if ok && dec.Reset(nil) == nil { // Reset drops the reference to the source
		if z.large {
			largeDecoders.Put(dec)
		} else {
			smallDecoders.Put(dec)
		}
		return
	}
	dec.Close() // its state is not trusted: its ring goes to the garbage collector
}

// prefixReader gives back the header bytes NewZstdReader read, then the rest of the stream.
type prefixReader struct {
	hdr  [zstd.HeaderMaxSize]byte
	n, i int
	r    io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if p.i < p.n {
		c := copy(b, p.hdr[p.i:p.n])
		p.i += c
		return c, nil
	}
	if p.r == nil {
		return 0, io.EOF
	}
	return p.r.Read(b)
}

func init() {
	// gRPC looks compressors up by name from a process-wide registry; registering in init is the
	// only way its API offers.
	encoding.RegisterCompressor(&zstdCompressor{})
}

type zstdCompressor struct {
	encoders sync.Pool
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

// Decompress charges the compressed message, the decoder and what it produces to the budget of
// ChargeDecompression.
func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	b := chargedBudget()
	compressed := compressedSize(r)
	if !acquire(b, compressed) {
		return refusal(), nil
	}
	z, err := NewZstdReader(r, b)
	if err != nil {
		release(b, compressed)
		if errors.Is(err, ErrInFlightLimit) {
			return refusal(), nil
		}
		return nil, err
	}
	return &chargedReader{r: z, budget: b, held: compressed}, nil
}
