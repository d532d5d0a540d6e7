package queue

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"

	"github.com/vigilhq/vigil/internal/batch"
)

// The on-disk format is described in docs/wal.md; keep the two in step.

const (
	frameLen         = 12 // magic, payload length, payload CRC
	payloadHeaderLen = 24 // version, signal, reserved, items, seq, enqueue time
	recordVersion    = 1
	// maxPayload bounds the length field so that a corrupt length cannot make a reader
	// allocate gigabytes; no sane batch comes close.
	maxPayload = 1 << 30

	ackVersion   = 1
	ackHeaderLen = 28 // magic, version, reserved, acked-below, next seq, count
)

var (
	// recordMagic opens every record so that a reader can resynchronise after a damaged one.
	// The same bytes may well occur inside a payload; such a false start is harmless because
	// a candidate must also pass the length, header and checksum checks.
	recordMagic = [4]byte{0xd9, 'W', 'A', 'L'}
	ackMagic    = [4]byte{0xd9, 'A', 'C', 'K'}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// record is one parsed record; body aliases the buffer it was parsed from.
type record struct {
	off   int // where the frame starts in its segment
	size  int // frame + payload
	sig   batch.Signal
	form  byte // bodyOTLP or bodyPromRW
	items int
	seq   uint64
	at    int64 // enqueue time, unix nanoseconds
	body  []byte
}

// Body formats (payload byte 2).
const (
	bodyOTLP   = 0 // an Export…ServiceRequest
	bodyPromRW = 1 // a remote-write 1.0 WriteRequest (metrics only)
)

// appendRecord frames a batch's encoded request and appends it to dst.
func appendRecord(dst []byte, sig batch.Signal, form byte, items int, seq uint64, at int64, body []byte) []byte {
	start := len(dst)
	dst = append(dst, recordMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(payloadHeaderLen+len(body)))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled in below
	dst = append(dst, recordVersion, byte(sig), form, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(items))
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+8:], crc32.Checksum(dst[start+frameLen:], castagnoli))
	return dst
}

// parseStatus says what parseRecord found.
type parseStatus uint8

const (
	parsed parseStatus = iota
	// short: the bytes look like the start of a record that runs past the end of the data,
	// which is what an interrupted append leaves behind.
	short
	// bad: not a record (wrong magic, impossible length, checksum mismatch, unknown version).
	bad
)

// parseRecord reads the record that starts at data[off:]. why explains anything but parsed.
func parseRecord(data []byte, off int) (r record, st parseStatus, why string) {
	rest := data[off:]
	if len(rest) < frameLen {
		if bytes.HasPrefix(recordMagic[:], rest[:min(len(rest), len(recordMagic))]) {
			return r, short, fmt.Sprintf("%d bytes, less than a record header", len(rest))
		}
		return r, bad, "no record magic"
	}
	if !bytes.Equal(rest[:4], recordMagic[:]) {
		return r, bad, "no record magic"
	}
	n := int(binary.LittleEndian.Uint32(rest[4:]))
	if n < payloadHeaderLen || n > maxPayload {
		return r, bad, fmt.Sprintf("impossible payload length %d", n)
	}
	if len(rest)-frameLen < n {
		return r, short, fmt.Sprintf("record of %d bytes cut off after %d", frameLen+n, len(rest))
	}
	p := rest[frameLen : frameLen+n]
	// Cheap checks first, so that resynchronising through garbage rarely computes a checksum.
	if p[0] != recordVersion {
		return r, bad, fmt.Sprintf("unsupported record version %d (written by a newer vigil?)", p[0])
	}
	sig := batch.Signal(p[1])
	form := p[2]
	if sig < batch.Traces || sig > batch.Logs || p[3] != 0 ||
		(form != bodyOTLP && (form != bodyPromRW || sig != batch.Metrics)) {
		return r, bad, "malformed record header"
	}
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(rest[8:]) {
		return r, bad, "checksum mismatch"
	}
	return record{
		off:   off,
		size:  frameLen + n,
		sig:   sig,
		form:  form,
		items: int(binary.LittleEndian.Uint32(p[4:])),
		seq:   binary.LittleEndian.Uint64(p[8:]),
		at:    int64(binary.LittleEndian.Uint64(p[16:])),
		body:  p[payloadHeaderLen:],
	}, parsed, ""
}

// damage is a stretch of a segment that holds no valid record.
type damage struct {
	off, end int
	// torn: the stretch runs to the end of the segment and starts like a record cut short
	// (or is all zeros), the mark of an append interrupted by a crash rather than of corruption.
	torn bool
	why  string
}

func (d damage) tail(size int) bool { return d.end == size }

// scanSegment calls fn for every valid record in data, in order, and returns the damaged
// stretches in between. After a damaged record it resynchronises at the next magic that
// starts a valid record, so one bad record costs only itself.
func scanSegment(data []byte, fn func(record)) []damage {
	var dmg []damage
	for off := 0; off < len(data); {
		r, st, why := parseRecord(data, off)
		if st == parsed {
			fn(r)
			off += r.size
			continue
		}
		next := resync(data, off+1)
		if next < 0 {
			// Zeros are what some filesystems show for blocks allocated but not yet written
			// when the power went: an interrupted append too.
			torn := st == short || allZero(data[off:])
			if allZero(data[off:]) {
				why = fmt.Sprintf("%d zero bytes", len(data)-off)
			}
			dmg = append(dmg, damage{off: off, end: len(data), torn: torn, why: why})
			break
		}
		dmg = append(dmg, damage{off: off, end: next, why: why})
		off = next
	}
	return dmg
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// resync returns the offset of the first valid record at or after from, or -1.
func resync(data []byte, from int) int {
	for from < len(data) {
		i := bytes.Index(data[from:], recordMagic[:])
		if i < 0 {
			return -1
		}
		if _, st, _ := parseRecord(data, from+i); st == parsed {
			return from + i
		}
		from += i + 1
	}
	return -1
}

// checkpoint is the persisted acknowledgement state.
type checkpoint struct {
	below uint64 // every record with a smaller seq is acknowledged
	// next is the next seq to hand out. Seqs are never reused, so that acknowledgements in an
	// old checkpoint can never match a new record, even after every segment was deleted.
	next  uint64
	acked []seqRange // acknowledged seqs >= below, ascending and disjoint
}

// seqRange is the half-open range [from, to). Acknowledgements behind a batch that is stuck in
// a retry loop are mostly contiguous, so ranges keep the checkpoint small.
type seqRange struct{ from, to uint64 }

func (c checkpoint) has(seq uint64) bool {
	if seq < c.below {
		return true
	}
	i := sort.Search(len(c.acked), func(i int) bool { return c.acked[i].to > seq })
	return i < len(c.acked) && c.acked[i].from <= seq
}

// add records seq as acknowledged; seqs must come in ascending order.
func (c *checkpoint) add(seq uint64) {
	if n := len(c.acked); n > 0 && c.acked[n-1].to == seq {
		c.acked[n-1].to++
		return
	}
	c.acked = append(c.acked, seqRange{seq, seq + 1})
}

func (c checkpoint) marshal(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, ackMagic[:]...)
	dst = append(dst, ackVersion, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, c.below)
	dst = binary.LittleEndian.AppendUint64(dst, c.next)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c.acked)))
	for _, r := range c.acked {
		dst = binary.LittleEndian.AppendUint64(dst, r.from)
		dst = binary.LittleEndian.AppendUint64(dst, r.to)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

var errBadCheckpoint = errors.New("not a valid acknowledgement checkpoint")

func unmarshalCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) < ackHeaderLen+4 || !bytes.Equal(b[:4], ackMagic[:]) {
		return c, errBadCheckpoint
	}
	if b[4] != ackVersion {
		return c, fmt.Errorf("%w: unsupported version %d", errBadCheckpoint, b[4])
	}
	n := uint64(binary.LittleEndian.Uint32(b[24:]))
	if uint64(len(b)) != ackHeaderLen+16*n+4 {
		return c, fmt.Errorf("%w: %d bytes for %d ranges", errBadCheckpoint, len(b), n)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(body):]) {
		return c, fmt.Errorf("%w: checksum mismatch", errBadCheckpoint)
	}
	c.below = binary.LittleEndian.Uint64(b[8:])
	c.next = binary.LittleEndian.Uint64(b[16:])
	c.acked = make([]seqRange, n)
	for i := range c.acked {
		p := b[ackHeaderLen+16*i:]
		c.acked[i] = seqRange{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])}
	}
	// A checksummed file should be well formed; has relies on order, so make sure.
	if !slices.IsSortedFunc(c.acked, func(a, b seqRange) int { return cmp.Compare(a.from, b.from) }) {
		slices.SortFunc(c.acked, func(a, b seqRange) int { return cmp.Compare(a.from, b.from) })
	}
	return c, nil
}
