package promrw

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
)

// Decode decodes a snappy block (the remote-write body encoding; the framed stream format is
// not allowed there) into dst's capacity, or a new buffer if dst is too small, like
// snappy.Decode. It reads the decoded length the block declares first and refuses anything above
// maxSize before allocating, so a small body cannot make the receiver allocate gigabytes.
// maxSize <= 0 means no limit.
func Decode(dst, src []byte, maxSize int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		if errors.Is(err, snappy.ErrTooLarge) {
			return nil, fmt.Errorf("%w: snappy block: %v", ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: snappy block: %v", ErrMalformed, err)
	}
	if maxSize > 0 && n > maxSize {
		return nil, fmt.Errorf("%w: snappy block declares %d bytes decoded, the limit is %d", ErrTooLarge, n, maxSize)
	}
	out, err := snappy.Decode(dst[:cap(dst)], src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy block: %v", ErrMalformed, err)
	}
	return out, nil
}

// Encode encodes src as a snappy block into dst's capacity, or a new buffer if dst is too small
// (it needs snappy.MaxEncodedLen(len(src))), like snappy.Encode. It uses the fast level: a relay's
// CPU is better spent elsewhere than on the last few percent of ratio. src must be under 4 GiB,
// the block format's limit (the snappy encoder panics beyond it); remote-write bodies are far
// smaller.
func Encode(dst, src []byte) []byte {
	return s2.EncodeSnappy(dst[:cap(dst)], src)
}
