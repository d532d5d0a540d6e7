package promrw

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestSnappy(t *testing.T) {
	body := reqV1(bigSeries(1000, 1)...)
	enc := Encode(nil, body)
	if len(enc) >= len(body)/2 {
		t.Errorf("encoded %d bytes to %d: suspiciously poor ratio", len(body), len(enc))
	}
	// The block must be standard snappy, readable by the strict reference decoder.
	if ref, err := snappy.DecodeStrict(nil, enc); err != nil || !bytes.Equal(ref, body) {
		t.Fatalf("strict snappy decode: %v", err)
	}
	dec, err := Decode(nil, enc, len(body))
	if err != nil || !bytes.Equal(dec, body) {
		t.Fatalf("Decode: %v", err)
	}
	// Buffers are reused when large enough.
	buf := make([]byte, 0, len(body))
	if dec, err := Decode(buf, enc, 0); err != nil || &dec[0] != &buf[:1][0] {
		t.Fatalf("Decode did not reuse dst: %v", err)
	}
	ebuf := make([]byte, 0, snappy.MaxEncodedLen(len(body)))
	if e := Encode(ebuf, body); &e[0] != &ebuf[:1][0] || !bytes.Equal(e, enc) {
		t.Fatal("Encode did not reuse dst or changed output")
	}
	if a := testing.AllocsPerRun(10, func() { buf, _ = Decode(buf, enc, 0) }); a != 0 {
		t.Errorf("Decode into a large enough buffer: %.0f allocations", a)
	}
	if dec, err := Decode(nil, Encode(nil, nil), 10); err != nil || len(dec) != 0 {
		t.Errorf("empty block: %q, %v", dec, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	f := func(name string, src []byte, limit int, wantErr error, want string) {
		t.Helper()
		_, err := Decode(nil, src, limit)
		if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %v containing %q", name, err, wantErr, want)
		}
	}
	good := Encode(nil, []byte(strings.Repeat("abc", 100)))
	f("over limit", good, 299, ErrTooLarge, "declares 300 bytes decoded, the limit is 299")
	f("empty input", nil, 10, ErrMalformed, "snappy")
	f("bad length varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10, ErrMalformed, "corrupt")
	f("truncated", good[:len(good)-3], 0, ErrMalformed, "corrupt")
	f("length lies", append(protowire.AppendVarint(nil, 50), good[2:]...), 0, ErrMalformed, "corrupt")
	f("framed stream", []byte("\xff\x06\x00\x00sNaPpY"), 1<<20, ErrMalformed, "snappy")
}

// TestDecodeBomb: a 7-byte block that claims 4 GiB must cost nothing.
func TestDecodeBomb(t *testing.T) {
	bomb := append(protowire.AppendVarint(nil, 0xffffffff), 0x00)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := Decode(nil, bomb, 64<<20); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("bomb: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("rejecting 100 bombs allocated %d bytes", d)
	}
}
