package batch

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// slowNext is next without its fast paths: protowire alone.
func slowNext(b []byte) (protowire.Number, protowire.Type, []byte, int, bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, false
	}
	if typ == protowire.BytesType {
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return 0, 0, nil, 0, false
		}
		return num, typ, v, n + m, true
	}
	m := protowire.ConsumeFieldValue(num, typ, b[n:])
	if m < 0 {
		return 0, 0, nil, 0, false
	}
	return num, typ, nil, n + m, true
}

// FuzzNext: the field reader's fast paths read every field as protowire does, and refuse what
// it refuses.
func FuzzNext(f *testing.F) {
	for _, seed := range [][]byte{
		{0x0a, 0x01, 'x'}, {0x0a, 0x80, 0x01}, {0x0a, 0x80, 0x01, 'x'}, {0x08, 0x96, 0x01}, {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0x09, 1, 2, 3, 4, 5, 6, 7, 8}, {0x0d, 1, 2, 3}, {0x0d, 1, 2, 3, 4}, {0x0b, 0x0c}, {0x00, 0x01}, {0x80, 0x01, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		num, typ, v, n, err := next(b)
		wnum, wtyp, wv, wn, ok := slowNext(b)
		if (err == nil) != ok {
			t.Fatalf("%x: next err %v, protowire ok %v", b, err, ok)
		}
		if ok && (num != wnum || typ != wtyp || n != wn || !bytes.Equal(v, wv)) {
			t.Fatalf("%x: next (%d, %d, %x, %d), protowire (%d, %d, %x, %d)", b, num, typ, v, n, wnum, wtyp, wv, wn)
		}
	})
}
