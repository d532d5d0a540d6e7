// Package counts keeps an SLO's events in one bucket per minute over its whole window: how
// many there were and how many were bad. Window sums are read from the buckets, and the ring
// is written to disk and read back, so that a restart forgets nothing of a 30-day window.
package counts

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Ring is the per-minute buckets of one SLO. It is safe for concurrent use.
type Ring struct {
	mu    sync.Mutex
	n     int64     // buckets: window / 1m
	head  int64     // unix minute of the newest bucket; 0 before the first event or advance
	bad   []float64 // by minute mod n
	total []float64
	// sumBad and sumTotal are the sums of all buckets, so that the whole window is read
	// without walking it; recomputed every n advances against float drift.
	sumBad, sumTotal float64
	sinceResum       int64
	// Dropped counts events older than the window when they arrived.
	Dropped float64
}

// BytesPerMinute is what one bucket takes: two float64 (bad and total events).
const BytesPerMinute = 16

// New returns an empty ring covering window (rounded up to whole minutes).
func New(window time.Duration) *Ring {
	n := int64((window + time.Minute - 1) / time.Minute)
	if n < 1 {
		n = 1
	}
	return &Ring{n: n, bad: make([]float64, n), total: make([]float64, n)}
}

func minute(t time.Time) int64 { return t.Unix() / 60 }

// advanceTo moves the head to minute m, emptying the buckets it passes (r.mu held).
func (r *Ring) advanceTo(m int64) {
	if r.head == 0 {
		r.head = m
		return
	}
	if m <= r.head {
		return
	}
	steps := m - r.head
	if steps >= r.n {
		clear(r.bad)
		clear(r.total)
		r.sumBad, r.sumTotal = 0, 0
	} else {
		for k := r.head + 1; k <= m; k++ {
			i := k % r.n
			r.sumBad -= r.bad[i]
			r.sumTotal -= r.total[i]
			r.bad[i], r.total[i] = 0, 0
		}
		r.sinceResum += steps
		if r.sinceResum >= r.n {
			r.resum()
		}
	}
	r.head = m
}

// resum recomputes the sums from the buckets (r.mu held).
func (r *Ring) resum() {
	r.sumBad, r.sumTotal = 0, 0
	for i := range r.bad {
		r.sumBad += r.bad[i]
		r.sumTotal += r.total[i]
	}
	r.sinceResum = 0
}

// Add counts total events, bad of them, in the minute of t. An event later than now is counted
// now; one older than the window is dropped (and counted in Dropped). It reports whether the
// events were kept.
func (r *Ring) Add(now, t time.Time, bad, total float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	nm := minute(now)
	r.advanceTo(nm)
	m := minute(t)
	if m > nm {
		m = nm
	}
	if m <= nm-r.n {
		r.Dropped += total
		return false
	}
	i := m % r.n
	r.bad[i] += bad
	r.total[i] += total
	r.sumBad += bad
	r.sumTotal += total
	return true
}

// Sum is the bad and total events of the last w (whole minutes, the current one included)
// as of now.
func (r *Ring) Sum(now time.Time, w time.Duration) (bad, total float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nm := minute(now)
	r.advanceTo(nm)
	k := min(int64(w/time.Minute), r.n)
	if k == r.n {
		return max(r.sumBad, 0), max(r.sumTotal, 0)
	}
	for m := nm - k + 1; m <= nm; m++ {
		i := m % r.n
		bad += r.bad[i]
		total += r.total[i]
	}
	return bad, total
}

// Head is the minute the ring was last advanced to (zero time if never).
func (r *Ring) Head() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.head == 0 {
		return time.Time{}
	}
	return time.Unix(r.head*60, 0)
}

// Window is the span the ring covers.
func (r *Ring) Window() time.Duration { return time.Duration(r.n) * time.Minute }

// Snapshot format: magic, version, the caller's key (a hash of what the counts mean), the
// number of buckets, the head minute, then bad and total of each bucket from the oldest to
// the newest, little-endian float64; all of it zstd-compressed (idle minutes are zeros).
var magic = [8]byte{'v', 'i', 'g', 'i', 'l', 's', 'l', 'o'}

const snapshotVersion = 1

// WriteTo writes the snapshot of the ring, tagged with key.
func (r *Ring) WriteSnapshot(w io.Writer, key uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(zw)
	var hdr [8 + 4 + 8 + 8 + 8]byte
	copy(hdr[:8], magic[:])
	binary.LittleEndian.PutUint32(hdr[8:], snapshotVersion)
	binary.LittleEndian.PutUint64(hdr[12:], key)
	binary.LittleEndian.PutUint64(hdr[20:], uint64(r.n))
	binary.LittleEndian.PutUint64(hdr[28:], uint64(r.head))
	_, _ = bw.Write(hdr[:])
	var b [16]byte
	for k := r.head - r.n + 1; k <= r.head; k++ {
		i := ((k % r.n) + r.n) % r.n
		binary.LittleEndian.PutUint64(b[:8], math.Float64bits(r.bad[i]))
		binary.LittleEndian.PutUint64(b[8:], math.Float64bits(r.total[i]))
		_, _ = bw.Write(b[:])
	}
	if err := bw.Flush(); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// ErrKeyChanged is returned by ReadSnapshot when the snapshot was written for another key:
// the counts meant something else, and are not used.
var ErrKeyChanged = errors.New("the snapshot was taken for another SLI")

// ReadSnapshot replaces the ring's counts with the snapshot's. A snapshot of another window
// length keeps the minutes both cover.
func (r *Ring) ReadSnapshot(rd io.Reader, key uint64) error {
	zr, err := zstd.NewReader(rd, zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return err
	}
	defer zr.Close()
	br := bufio.NewReader(zr)
	var hdr [36]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	if [8]byte(hdr[:8]) != magic {
		return errors.New("not an SLO snapshot")
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != snapshotVersion {
		return fmt.Errorf("snapshot version %d, want %d", v, snapshotVersion)
	}
	if binary.LittleEndian.Uint64(hdr[12:]) != key {
		return ErrKeyChanged
	}
	n := int64(binary.LittleEndian.Uint64(hdr[20:]))
	head := int64(binary.LittleEndian.Uint64(hdr[28:]))
	if n < 1 || n > 366*24*60 {
		return fmt.Errorf("snapshot of %d buckets", n)
	}
	bad, total := make([]float64, r.n), make([]float64, r.n)
	var b [16]byte
	for k := head - n + 1; k <= head; k++ {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return fmt.Errorf("snapshot buckets: %w", err)
		}
		if k <= head-r.n {
			continue // older than this ring's window
		}
		bv := math.Float64frombits(binary.LittleEndian.Uint64(b[:8]))
		tv := math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
		if math.IsNaN(bv) || math.IsNaN(tv) || bv < 0 || tv < 0 {
			return errors.New("snapshot holds invalid counts")
		}
		i := ((k % r.n) + r.n) % r.n
		bad[i], total[i] = bv, tv
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bad, r.total, r.head = bad, total, head
	r.resum()
	return nil
}
