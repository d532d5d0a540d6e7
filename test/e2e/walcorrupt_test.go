//go:build e2e

package e2e

import (
	"bytes"
	le "encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// The WAL's record framing (docs/wal.md; internal/queue/record.go): magic, payload length
// (uint32 LE), payload CRC, then the payload: a 24-byte header and the encoded request. Parsed
// here independently of internal/queue, so that the test damages the record it means to.
var walRecordMagic = []byte{0xd9, 'W', 'A', 'L'}

const (
	walFrameLen         = 12
	walPayloadHeaderLen = 24
)

// walRecords returns the offsets and sizes of the records framed back to back in a segment.
func walRecords(t *testing.T, data []byte) (offs, sizes []int) {
	t.Helper()
	for off := 0; off+walFrameLen <= len(data); {
		if !bytes.Equal(data[off:off+4], walRecordMagic) {
			t.Fatalf("no record magic at offset %d: the WAL framing is not what this test expects", off)
		}
		n := int(le.LittleEndian.Uint32(data[off+4:]))
		if off+walFrameLen+n > len(data) {
			break // a torn tail
		}
		offs, sizes = append(offs, off), append(sizes, walFrameLen+n)
		off += walFrameLen + n
	}
	return offs, sizes
}

// corruptMiddleRecord flips one byte of the middle record of the WAL segment in dir holding
// the most records: where "payload", the middle byte of its encoded request; where "length",
// the high byte of its length field (making the length impossible). It returns the segment,
// the offset of the flipped byte, and the record's index and the segment's record count.
func corruptMiddleRecord(t *testing.T, dir, where string) (seg string, off int64, index, count int) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment (*.wal) in %s (files: %v)", dir, walFiles(t, dir))
	}
	sort.Strings(segs)
	var best []int
	var bestSizes []int
	for _, s := range segs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		offs, sizes := walRecords(t, data)
		if len(offs) > len(best) {
			seg, best, bestSizes = s, offs, sizes
		}
	}
	if len(best) < 3 {
		t.Fatalf("the fullest segment %s holds %d records; need at least 3 to corrupt a middle one", seg, len(best))
	}
	index, count = len(best)/2, len(best)
	switch where {
	case "payload":
		body := bestSizes[index] - walFrameLen - walPayloadHeaderLen
		off = int64(best[index] + walFrameLen + walPayloadHeaderLen + body/2)
	case "length":
		off = int64(best[index] + 4 + 3) // little-endian: the last byte is the high one
	default:
		t.Fatalf("corrupt %q: want payload or length", where)
	}
	flipByte(t, seg, off)
	return seg, off, index, count
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
