package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promrw"
)

// ErrDisk is wrapped by every Put error that comes from writing or syncing the WAL. When the
// cause is a full disk or an exhausted quota the error wraps ErrFull as well, so that callers
// push back on clients as they do for a full queue.
var ErrDisk = errors.New("persistent queue: disk write failed")

const (
	defaultFsyncInterval = time.Second
	defaultSegmentBytes  = 64 << 20
	// A segment is reclaimed only when every record in it is acknowledged, so under a byte cap
	// segments must be small beside the cap for dropping and acknowledging to free room.
	minCappedSegmentBytes = 64 << 10
	// checkpointEvery bounds how often the acknowledgement checkpoint is rewritten; what is
	// acknowledged in between may be replayed after a crash.
	checkpointEvery = time.Second
	// cacheBytes is how much of the freshly written data is kept in memory too, so that a
	// consumer keeping up never reads the disk. The rest is read back on Get.
	cacheBytes = 16 << 20
	// bufKeep is the largest write buffer kept for reuse between groups.
	bufKeep = 4 << 20
)

// OpenWAL opens (creating if need be) the persistent queue in opts.Dir and replays what it
// holds: every record not yet acknowledged comes out of Get again, oldest first.
//
// Put returns once the batch is written, and under FsyncAlways once it is fsynced; concurrent
// Puts share one write and one fsync (group commit). A process crash loses nothing that Put
// acknowledged under either policy, since written data sits in the kernel's page cache; a
// power loss or kernel crash can lose up to FsyncInterval of it under FsyncInterval.
//
// Get hands records out in order to any number of consumers. done(true) acknowledges the
// record (possibly out of order); the acknowledged state is checkpointed at most once a
// second and at Close, so a crash can replay records acknowledged since the last checkpoint
// (at-least-once, never lost). done(false) before Close puts the record back at the front of
// the queue; after Close it stays on disk for the next start. Once Close is called, Get hands
// out nothing more: what waits stays on disk.
//
// Capacity (in Sizer units) and MaxBytes (record bytes) both bound the records not yet
// acknowledged; see docs/wal.md for the policies and for why disk use can exceed MaxBytes by
// about one segment. A segment file whose records are all acknowledged is deleted.
func OpenWAL(opts WALOptions) (Queue, error) {
	w, err := openWAL(opts, walConfig{})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// walConfig holds what tests change: the file layer (to inject faults) and timings.
type walConfig struct {
	fs              fileSystem
	checkpointEvery time.Duration
}

// entry is one record's bookkeeping. The record's bytes are on disk; b caches the batch while
// the cache budget allows.
type entry struct {
	seq   uint64
	seg   *segment // nil until written
	off   int64    // in seg; while staged, in the group's buffer
	disk  int64    // frame + payload bytes
	units int64    // in the queue's Sizer
	items int
	at    int64 // enqueue time, unix nanoseconds
	b     *batch.Batch
	// acks are the completion handles the batch carried into Put (an end_to_end exporter holds
	// them until delivery); a batch read back from disk gets them again. Records replayed from
	// an earlier run have none: their clients were answered, or gave up, long ago.
	acks  ack.Set
	state entryState
}

type entryState uint8

const (
	staged   entryState = iota // in a group not yet written
	waiting                    // written, waiting for Get
	inFlight                   // handed out by Get, done not yet called
	kept                       // done(false) after Close: left for the next start
	dropping                   // discarded by DropOldest, OnDrop not yet called
	acked                      // acknowledged, dropped, lost, or never written
)

type segment struct {
	id      uint64
	path    string
	f       segmentFile // nil until first needed, for segments found at open
	size    int64
	live    int  // records in it not yet acknowledged
	sealed  bool // no more appends: deleted once live is 0
	removed bool
	// damaged: replay skipped corrupt data in it. Such a segment is never deleted, so that
	// nothing unreadable disappears unseen; `vigil queue check --repair` cleans it up.
	damaged bool
}

// group is the unit of group commit: the records staged while the previous group was being
// written go out in one write and one fsync.
type group struct {
	buf     []byte
	entries []*entry
	done    chan struct{}
	err     error
}

// wal is the persistent queue; see OpenWAL.
type wal struct {
	opts     WALOptions
	dir      string
	log      *slog.Logger
	fs       fileSystem
	segBytes int64
	lock     *os.File

	mu        sync.Mutex
	space     sync.Cond // Put waits for room
	data      sync.Cond // Get waits for a record
	idle      sync.Cond // Close waits for in-flight records and pending writes
	flushCond sync.Cond // the flusher waits for work

	closed    bool // Put returns ErrClosed, Get returns nothing
	stopFlush bool

	// window holds every entry from the oldest unacknowledged one on, in seq order; the
	// checkpoint is its front seq plus the acknowledged entries in it.
	window  deque[*entry]
	waiting deque[*entry] // in seq order
	retry   []*entry      // done(false) and back: older than anything in waiting, in seq order
	nextSeq uint64

	// Reservations: every entry that is staged, waiting, in flight or kept holds its units
	// and disk bytes against the caps.
	held            int
	used, usedDisk  int64
	nWaiting        int // in waiting and retry
	waitUnits       int64
	waitDisk        int64
	batches, items  int // written and not acknowledged (Stats)
	inflight, busy  int // handed out; being dropped
	cached          int64
	corruptions     int64
	checkpointDirty bool

	segs      []*segment
	diskBytes int64

	// Group commit, guarded by mu: Puts fill stage while the flusher writes the previous group.
	stage      *group
	flushing   bool
	spare      [][]byte // write buffers for reuse: one group is written while the next fills
	syncWanted bool     // FsyncInterval: the ticker asked for an fsync

	// Changed only by the flusher goroutine (with mu held when others may look), so the
	// flusher reads them without mu; Close touches them once the flusher has stopped.
	active    *segment
	nextSegID uint64
	unsynced  bool // FsyncInterval: the active segment was written since its last fsync
	// FsyncInterval: segments sealed since the last tick whose tails still need an fsync. Left
	// to the tick so that rolling over to a new segment never stalls a Put.
	sealedUnsynced []*segment

	checkpointEvery time.Duration
	stop            chan struct{}
	wg              sync.WaitGroup
	closeOnce       sync.Once
	closeErr        error
}

var _ Queue = (*wal)(nil)

func (o WALOptions) normalize() (WALOptions, error) {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("directory must be set"))
	}
	if o.Capacity <= 0 {
		errs = append(errs, fmt.Errorf("capacity must be > 0, got %d", o.Capacity))
	}
	o.Options = o.withDefaults()
	switch o.Sizer {
	case SizeRequests, SizeItems, SizeBytes:
	default:
		errs = append(errs, fmt.Errorf("unknown sizer %q", o.Sizer))
	}
	switch o.WhenFull {
	case Block, DropOldest, DropNewest:
	default:
		errs = append(errs, fmt.Errorf("unknown when_full policy %q", o.WhenFull))
	}
	if o.Fsync == "" {
		o.Fsync = FsyncAlways
	}
	if o.Fsync != FsyncAlways && o.Fsync != FsyncInterval {
		errs = append(errs, fmt.Errorf("unknown fsync policy %q", o.Fsync))
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = defaultFsyncInterval
	}
	if o.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max bytes must be >= 0, got %d", o.MaxBytes))
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = defaultSegmentBytes
		if o.MaxBytes > 0 {
			o.SegmentBytes = min(o.SegmentBytes, max(o.MaxBytes/8, minCappedSegmentBytes))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("persistent queue %s: %w", o.Dir, err)
	}
	return o, nil
}

func openWAL(opts WALOptions, cfg walConfig) (*wal, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if cfg.fs == nil {
		cfg.fs = osFS{}
	}
	if cfg.checkpointEvery <= 0 {
		cfg.checkpointEvery = checkpointEvery
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistent queue %s: %w", opts.Dir, err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	w := &wal{
		opts:            opts,
		dir:             opts.Dir,
		log:             opts.Logger.With("dir", opts.Dir),
		fs:              cfg.fs,
		segBytes:        opts.SegmentBytes,
		lock:            lock,
		checkpointEvery: cfg.checkpointEvery,
		stop:            make(chan struct{}),
	}
	w.space.L = &w.mu
	w.data.L = &w.mu
	w.idle.L = &w.mu
	w.flushCond.L = &w.mu
	// Leftovers of an atomic replace that a crash interrupted; the originals are intact.
	if tmps, _ := filepath.Glob(filepath.Join(opts.Dir, "*"+tmpSuffix)); len(tmps) > 0 {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	scan, err := scanDir(opts.Dir)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("persistent queue %s: replay: %w", opts.Dir, err)
	}
	w.replay(scan)
	w.wg.Add(2)
	go w.flusher()
	go w.background()
	return w, nil
}

// replay rebuilds the queue from what scanDir found: truncates interrupted appends, reports
// corruption, and queues every record the checkpoint does not cover.
func (w *wal) replay(scan *dirScan) {
	if scan.ackErr != nil {
		w.log.Error("persistent queue: acknowledgement checkpoint unreadable; replaying every record, "+
			"so the backend will see duplicates", "file", ackFile, "error", scan.ackErr)
		w.checkpointDirty = true
	}
	var entries []*entry
	for _, s := range scan.segments {
		seg := &segment{id: s.id, path: s.path, size: s.size, sealed: true}
		name := filepath.Base(s.path)
		for _, d := range s.damage {
			if d.torn && d.tail(int(s.size)) {
				// Nothing in it was ever acknowledged to a Put caller: cut it off.
				w.log.Warn("persistent queue: truncating an interrupted append (the process or machine stopped mid-write)",
					"segment", name, "offset", d.off, "bytes", d.end-d.off, "reason", d.why)
				if err := truncateFile(w.fs, s.path, int64(d.off)); err != nil {
					seg.damaged = true
					w.log.Error("persistent queue: cannot truncate segment; its tail will be skipped again next time",
						"segment", name, "error", err)
				} else {
					seg.size = int64(d.off)
				}
				continue
			}
			w.corruptions++
			seg.damaged = true
			w.log.Error("persistent queue: skipping corrupt data; any records in it are lost",
				"segment", name, "offset", d.off, "bytes", d.end-d.off, "reason", d.why)
		}
		if seg.damaged {
			w.log.Warn("persistent queue: keeping a damaged segment on disk for inspection; "+
				"`vigil queue check --repair` removes the damage", "segment", name)
		}
		for _, r := range s.records {
			e := &entry{
				seq:   r.seq,
				seg:   seg,
				off:   int64(r.off),
				disk:  int64(r.size),
				items: r.items,
				at:    r.at,
				state: waiting,
			}
			switch w.opts.Sizer {
			case SizeItems:
				e.units = int64(r.items)
			case SizeBytes:
				e.units = e.bodySize()
			default:
				e.units = 1
			}
			switch {
			case !scan.acked(r.seq):
				seg.live++
			case scan.ack.below <= r.seq:
				// Acknowledged out of order: the next checkpoint must say so again.
				e.state = acked
			default:
				continue
			}
			entries = append(entries, e)
		}
		w.segs = append(w.segs, seg)
		w.diskBytes += seg.size
		w.nextSegID = s.id + 1
	}
	if w.nextSegID == 0 {
		w.nextSegID = 1
	}
	w.nextSeq = scan.nextSeq()
	slices.SortStableFunc(entries, func(a, b *entry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, e := range entries {
		w.window.push(e)
		if e.state == waiting {
			w.waiting.push(e)
			w.hold(e)
			w.nWaiting++
			w.waitUnits += e.units
			w.waitDisk += e.disk
			w.batches++
			w.items += e.items
		}
	}
	w.trimWindow()
	for _, seg := range slices.Clone(w.segs) {
		if seg.live == 0 {
			w.removeSegment(seg)
		}
	}
	if w.batches > 0 || w.corruptions > 0 {
		w.log.Info("persistent queue: replayed", "batches", w.batches, "items", w.items,
			"segments", len(w.segs), "corrupt_stretches", w.corruptions)
	}
}

func (w *wal) hold(e *entry) {
	w.held++
	w.used += e.units
	w.usedDisk += e.disk
}

func (w *wal) unhold(e *entry) {
	w.held--
	w.used -= e.units
	w.usedDisk -= e.disk
	w.space.Broadcast()
}

// fits reports whether a record of u units and d bytes fits beside n held records of used
// units and usedDisk bytes. An empty queue takes anything, so an oversize batch is not refused
// forever.
func (w *wal) fits(n int, used, usedDisk, u, d int64) bool {
	if n == 0 {
		return true
	}
	return used+u <= int64(w.opts.Capacity) && (w.opts.MaxBytes == 0 || usedDisk+d <= w.opts.MaxBytes)
}

// reserve claims room for a record, applying the WhenFull policy. It returns the entries
// DropOldest discarded, for the caller to report once the lock is released. Called with w.mu.
func (w *wal) reserve(ctx context.Context, u, d int64) (dropped []*entry, err error) {
	var stopWait func() bool
	defer func() {
		if stopWait != nil {
			stopWait()
		}
	}()
	for {
		if w.closed {
			return dropped, ErrClosed
		}
		if w.fits(w.held, w.used, w.usedDisk, u, d) {
			w.held++
			w.used += u
			w.usedDisk += d
			return dropped, nil
		}
		switch w.opts.WhenFull {
		case DropOldest:
			// Discard only what waits, and only if that makes room: in-flight records may
			// still be delivered, and dropping without admitting b would lose data for nothing.
			if !w.fits(w.held-w.nWaiting, w.used-w.waitUnits, w.usedDisk-w.waitDisk, u, d) {
				return dropped, ErrFull
			}
			for !w.fits(w.held, w.used, w.usedDisk, u, d) {
				e := w.takeWaiting()
				e.state = dropping
				w.unhold(e)
				w.batches--
				w.items -= e.items
				w.busy++
				dropped = append(dropped, e)
			}
		case Block:
			if ctx.Err() != nil {
				return dropped, errFullAfter(ctx)
			}
			if stopWait == nil {
				stopWait = context.AfterFunc(ctx, func() {
					w.mu.Lock()
					w.space.Broadcast()
					w.mu.Unlock()
				})
			}
			w.space.Wait()
		default:
			return dropped, ErrFull
		}
	}
}

// takeWaiting removes the oldest waiting entry. Called with w.mu and nWaiting > 0.
func (w *wal) takeWaiting() *entry {
	var e *entry
	if len(w.retry) > 0 {
		e = w.retry[0]
		w.retry = slices.Delete(w.retry, 0, 1)
	} else {
		e = w.waiting.popFront()
	}
	w.nWaiting--
	w.waitUnits -= e.units
	w.waitDisk -= e.disk
	return e
}

func (w *wal) Put(ctx context.Context, b *batch.Batch) error {
	form := byte(bodyOTLP)
	enc, isRW := b.PromRW()
	if isRW {
		// Also when the batch has its OTLP form too: its items are counted in samples, and it
		// must come back in the form (and with the count) it went in.
		form = bodyPromRW
	} else {
		var err error
		if enc, err = b.Encoded(); err != nil {
			return fmt.Errorf("persistent queue %s: %w", w.dir, err)
		}
	}
	if payloadHeaderLen+len(enc) > maxPayload {
		return fmt.Errorf("persistent queue %s: batch of %d bytes is larger than a record may be (%d bytes)",
			w.dir, len(enc), maxPayload-payloadHeaderLen)
	}
	e := &entry{
		disk:  int64(frameLen + payloadHeaderLen + len(enc)),
		units: w.opts.units(b, len(enc)),
		items: b.Items(),
		acks:  b.Acks(),
		state: staged,
	}

	w.mu.Lock()
	dropped, err := w.reserve(ctx, e.units, e.disk)
	if err != nil {
		w.mu.Unlock()
		w.reportDrops(dropped)
		return err
	}
	e.seq = w.nextSeq
	w.nextSeq++
	e.at = time.Now().UnixNano()
	w.window.push(e)
	g := w.stage
	if g == nil {
		g = &group{done: make(chan struct{})}
		if n := len(w.spare); n > 0 {
			g.buf, w.spare = w.spare[n-1], w.spare[:n-1]
		}
		w.stage = g
	}
	e.off = int64(len(g.buf))
	g.buf = appendRecord(g.buf, b.Signal(), form, e.items, e.seq, e.at, enc)
	g.entries = append(g.entries, e)
	// A batch that also holds pdata is not kept: the budget counts encoded bytes, and pdata
	// takes several times as much memory. It is read back from disk (the page cache) instead.
	if !b.IsDecoded() && w.cached+int64(len(enc)) <= cacheBytes {
		e.b = b
		w.cached += int64(len(enc))
	}
	w.flushCond.Signal()
	w.mu.Unlock()

	w.reportDrops(dropped)
	<-g.done
	return g.err
}

// reportDrops tells OnDrop about records DropOldest discarded, then retires them. A record
// not cached in memory is read back for the purpose: the exporter counts what it loses.
func (w *wal) reportDrops(dropped []*entry) {
	for _, e := range dropped {
		if w.opts.OnDrop != nil {
			b := e.b
			if b == nil {
				var err error
				if b, err = w.read(e); err != nil {
					w.noteLost(e, err)
				} else {
					b.SetAcks(e.acks)
				}
			}
			if b != nil {
				w.opts.OnDrop(b)
			}
		}
		w.mu.Lock()
		w.retire(e)
		w.busy--
		w.idle.Broadcast()
		w.mu.Unlock()
	}
}

// retire marks e acknowledged: its segment may go, and the checkpoint will say so. Called
// with w.mu; e no longer holds a reservation.
func (w *wal) retire(e *entry) {
	e.state = acked
	e.acks = nil
	w.uncache(e)
	if seg := e.seg; seg != nil {
		seg.live--
		if seg.live == 0 && seg.sealed {
			w.removeSegment(seg)
		}
	}
	w.checkpointDirty = true
	w.trimWindow()
}

// bodySize is the size of the encoded request in the record.
func (e *entry) bodySize() int64 { return e.disk - frameLen - payloadHeaderLen }

// uncache forgets the in-memory copy. Called with w.mu.
func (w *wal) uncache(e *entry) {
	if e.b != nil {
		w.cached -= e.bodySize()
		e.b = nil
	}
}

// trimWindow drops acknowledged entries from the front of the window.
func (w *wal) trimWindow() {
	for w.window.len() > 0 && w.window.front().state == acked {
		w.window.popFront()
	}
}

// removeSegment deletes a sealed segment none of whose records is pending. Called with w.mu.
func (w *wal) removeSegment(seg *segment) {
	if seg.removed || seg.damaged {
		return
	}
	if seg.f != nil {
		_ = seg.f.Close()
		seg.f = nil
	}
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Warn("persistent queue: cannot delete an acknowledged segment", "segment", filepath.Base(seg.path), "error", err)
	}
	seg.removed = true
	w.diskBytes -= seg.size
	w.segs = slices.DeleteFunc(w.segs, func(s *segment) bool { return s == seg })
}

func (w *wal) Get(ctx context.Context) (*batch.Batch, func(bool), bool) {
	for {
		e, ok := w.take(ctx)
		if !ok {
			return nil, nil, false
		}
		b := e.b
		if b == nil {
			var err error
			if b, err = w.read(e); err != nil {
				// The record passed its checksum at open or was written by this process, so the
				// disk changed under us. It cannot be delivered; say so and move on.
				w.noteLost(e, err)
				e.acks.Release(consumererror.NewPermanent(fmt.Errorf("persistent queue lost the record: %w", err)))
				w.mu.Lock()
				w.inflight--
				w.unhold(e)
				w.batches--
				w.items -= e.items
				w.retire(e)
				w.idle.Broadcast()
				w.mu.Unlock()
				continue
			}
			b.SetAcks(e.acks)
		}
		return b, w.doneFunc(e), true
	}
}

// take waits for the next record and marks it in flight.
func (w *wal) take(ctx context.Context) (*entry, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var stopWait func() bool
	defer func() {
		if stopWait != nil {
			stopWait()
		}
	}()
	for w.nWaiting == 0 || w.closed {
		if w.closed || ctx.Err() != nil {
			return nil, false
		}
		if stopWait == nil {
			stopWait = context.AfterFunc(ctx, func() {
				w.mu.Lock()
				w.data.Broadcast()
				w.mu.Unlock()
			})
		}
		w.data.Wait()
	}
	e := w.takeWaiting()
	e.state = inFlight
	w.inflight++
	return e, true
}

func (w *wal) doneFunc(e *entry) func(bool) {
	called := false
	return func(delivered bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if called {
			return
		}
		called = true
		w.inflight--
		switch {
		case delivered:
			w.unhold(e)
			w.batches--
			w.items -= e.items
			w.retire(e)
		case w.closed:
			e.state = kept
		default:
			// Back to the front, in seq order among other returns, to be retried first.
			e.state = waiting
			i, _ := slices.BinarySearchFunc(w.retry, e.seq, func(x *entry, seq uint64) int {
				switch {
				case x.seq < seq:
					return -1
				case x.seq > seq:
					return 1
				}
				return 0
			})
			w.retry = slices.Insert(w.retry, i, e)
			w.nWaiting++
			w.waitUnits += e.units
			w.waitDisk += e.disk
			w.data.Signal()
		}
		if w.inflight == 0 {
			w.idle.Broadcast()
		}
	}
}

// read loads a record from its segment and rebuilds the batch, checking it on the way.
func (w *wal) read(e *entry) (*batch.Batch, error) {
	w.mu.Lock()
	seg := e.seg
	if seg.f == nil && !seg.removed {
		f, err := w.fs.open(seg.path)
		if err != nil {
			w.mu.Unlock()
			return nil, err
		}
		seg.f = f
	}
	f := seg.f
	w.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("segment %s is gone", filepath.Base(seg.path))
	}
	buf := make([]byte, e.disk)
	if _, err := f.ReadAt(buf, e.off); err != nil {
		return nil, err
	}
	r, st, why := parseRecord(buf, 0)
	switch {
	case st != parsed:
		return nil, errors.New(why)
	case r.seq != e.seq || int64(r.size) != e.disk:
		return nil, fmt.Errorf("found record %d where record %d was", r.seq, e.seq)
	}
	if r.form == bodyPromRW {
		// Vigil wrote this body (client bodies were validated at the receiver) and the checksum
		// says it is intact, so only its framing is checked. A full validation would refuse
		// series that Vigil itself makes (UTF-8 names from relabelling, for one) and lose them.
		sc := promrw.Scanner{Trusted: true}
		if err := sc.ScanV1(r.body, nil); err != nil {
			return nil, err
		}
		return batch.FromPromRWTrusted(r.body, r.items), nil
	}
	return batch.FromEncoded(r.sig, r.body)
}

// noteLost counts and logs a record that could not be read back.
func (w *wal) noteLost(e *entry, err error) {
	w.mu.Lock()
	w.corruptions++
	w.mu.Unlock()
	w.log.Error("persistent queue: cannot read back a record; it is lost", "segment", filepath.Base(e.seg.path),
		"offset", e.off, "items", e.items, "error", err)
}

// flusher writes staged groups, one at a time, in order. It is the only writer of segment
// files, so the active segment needs no other coordination.
func (w *wal) flusher() {
	defer w.wg.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	lastGroup := 0
	for {
		switch {
		case w.stage != nil:
			if len(w.stage.entries) < lastGroup {
				// The writers the last commit woke are about to stage again; a moment's yield
				// lets them join this group instead of waiting a whole fsync for the next.
				w.mu.Unlock()
				runtime.Gosched()
				w.mu.Lock()
			}
			g := w.stage
			lastGroup = len(g.entries)
			w.stage = nil
			w.flushing = true
			w.mu.Unlock()
			seg, off, n, err := w.write(g)
			w.mu.Lock()
			w.commit(g, seg, off, n, err)
			w.flushing = false
			w.idle.Broadcast()
		case w.syncWanted:
			w.syncWanted = false
			w.syncInterval()
		case w.stopFlush:
			return
		default:
			w.flushCond.Wait()
		}
	}
}

// syncInterval is the FsyncInterval tick: it fsyncs whatever was written since the last one.
// Called by the flusher with w.mu held; drops it while syncing.
func (w *wal) syncInterval() {
	segs := w.sealedUnsynced
	w.sealedUnsynced = nil
	active := w.active
	if active != nil && w.unsynced {
		w.unsynced = false
		segs = append(segs, active)
	}
	for _, seg := range segs {
		f := seg.f
		if f == nil || seg.removed {
			continue // every record in it was acknowledged: nothing left to protect
		}
		w.mu.Unlock()
		err := f.Sync()
		w.mu.Lock()
		if err == nil || seg.removed {
			continue
		}
		// The data was acknowledged already; all that can be done is to stop trusting the file.
		w.log.Error("persistent queue: background fsync failed; data written since the last one may not survive a power loss",
			"segment", filepath.Base(seg.path), "error", err)
		if seg == w.active {
			w.active = nil
			w.seal(seg)
		}
	}
}

// write appends a group to the active segment (starting a new one when it is full) and
// fsyncs it under FsyncAlways. On failure it rolls the segment back to where it was.
func (w *wal) write(g *group) (seg *segment, off, n int64, err error) {
	seg, err = w.writable(int64(len(g.buf)))
	if err != nil {
		return nil, 0, 0, err
	}
	off = seg.size
	written, err := seg.f.WriteAt(g.buf, off)
	if err == nil && w.opts.Fsync == FsyncAlways {
		err = seg.f.Sync()
	}
	if err == nil {
		return seg, off, int64(written), nil
	}
	// Take the partial write back so the segment ends on a record boundary. After a failed
	// fsync the kernel may have dropped pages it could not write, so the file is not trusted
	// with more data either way; commit seals it.
	if terr := seg.f.Truncate(off); terr != nil {
		w.log.Error("persistent queue: cannot roll back a failed write; the next start will skip its remains",
			"segment", filepath.Base(seg.path), "offset", off, "error", terr)
		n = int64(written)
	}
	return seg, off, n, err
}

// writable returns the segment to append n bytes to.
func (w *wal) writable(n int64) (*segment, error) {
	if seg := w.active; seg != nil && (seg.size == 0 || seg.size+n <= w.segBytes) {
		return seg, nil
	}
	path := filepath.Join(w.dir, segmentName(w.nextSegID))
	f, err := w.fs.create(path)
	if err != nil {
		return nil, err
	}
	w.nextSegID++
	if err := syncDir(w.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	seg := &segment{id: w.nextSegID - 1, path: path, f: f}
	w.mu.Lock()
	w.segs = append(w.segs, seg)
	if old := w.active; old != nil {
		if w.unsynced {
			w.sealedUnsynced = append(w.sealedUnsynced, old)
			w.unsynced = false
		}
		w.seal(old)
	}
	w.active = seg
	w.mu.Unlock()
	return seg, nil
}

// seal ends appends to seg and deletes it if nothing in it is pending. Called with w.mu.
func (w *wal) seal(seg *segment) {
	seg.sealed = true
	if seg.live == 0 {
		w.removeSegment(seg)
	}
}

// commit publishes a written group to Get, or undoes it after a failed write. Called with w.mu.
func (w *wal) commit(g *group, seg *segment, off, n int64, err error) {
	if err == nil {
		seg.size += n
		w.diskBytes += n
		for _, e := range g.entries {
			e.seg = seg
			e.off += off
			e.state = waiting
			seg.live++
			w.waiting.push(e)
			w.nWaiting++
			w.waitUnits += e.units
			w.waitDisk += e.disk
			w.batches++
			w.items += e.items
		}
		w.unsynced = w.opts.Fsync == FsyncInterval
		w.data.Broadcast()
	} else {
		g.err = diskError(w.dir, err)
		for _, e := range g.entries {
			w.unhold(e)
			w.uncache(e)
			e.state = acked
		}
		w.trimWindow()
		if seg != nil {
			seg.size += n
			w.diskBytes += n
			if w.active == seg {
				w.active = nil
			}
			w.seal(seg)
		}
	}
	if cap(g.buf) <= bufKeep && len(w.spare) < 2 {
		w.spare = append(w.spare, g.buf[:0])
	}
	g.buf, g.entries = nil, nil
	close(g.done)
}

// diskError wraps a write failure so callers can tell it apart, and see a full disk as a
// full queue.
func diskError(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("persistent queue %s: %w (%w): %w", dir, ErrFull, ErrDisk, err)
	}
	return fmt.Errorf("persistent queue %s: %w: %w", dir, ErrDisk, err)
}

// background runs the periodic work: the acknowledgement checkpoint, and under FsyncInterval
// the fsync (done by the flusher, which owns the file).
func (w *wal) background() {
	defer w.wg.Done()
	ack := time.NewTicker(w.checkpointEvery)
	defer ack.Stop()
	var syncC <-chan time.Time
	if w.opts.Fsync == FsyncInterval {
		t := time.NewTicker(w.opts.FsyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	for {
		select {
		case <-w.stop:
			return
		case <-ack.C:
			w.mu.Lock()
			dirty := w.checkpointDirty
			var ck checkpoint
			if dirty {
				ck = w.checkpointLocked()
				w.checkpointDirty = false
			}
			w.mu.Unlock()
			if !dirty {
				continue
			}
			if err := w.writeCheckpoint(ck); err != nil {
				w.log.Warn("persistent queue: cannot write the acknowledgement checkpoint; will retry", "error", err)
				w.mu.Lock()
				w.checkpointDirty = true
				w.mu.Unlock()
			}
		case <-syncC:
			w.mu.Lock()
			w.syncWanted = true
			w.flushCond.Signal()
			w.mu.Unlock()
		}
	}
}

// checkpointLocked snapshots the acknowledgement state. Called with w.mu.
func (w *wal) checkpointLocked() checkpoint {
	ck := checkpoint{below: w.nextSeq, next: w.nextSeq}
	if w.window.len() > 0 {
		ck.below = w.window.front().seq
	}
	for i := range w.window.len() {
		// Only acknowledgements of records still on disk matter.
		if e := w.window.at(i); e.state == acked && e.seg != nil && !e.seg.removed {
			ck.add(e.seq)
		}
	}
	return ck
}

func (w *wal) writeCheckpoint(ck checkpoint) error {
	return writeFileAtomic(filepath.Join(w.dir, ackFile), ck.marshal(nil))
}

// Close stops Put and Get, waits until every batch handed out is done and every accepted
// write has completed, syncs, writes the final checkpoint and releases the directory.
// Idempotent; concurrent calls wait for the first.
func (w *wal) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.close() })
	return w.closeErr
}

func (w *wal) close() error {
	w.mu.Lock()
	w.closed = true
	w.space.Broadcast()
	w.data.Broadcast()
	for w.inflight > 0 || w.busy > 0 || w.stage != nil || w.flushing {
		w.idle.Wait()
	}
	w.stopFlush = true
	w.flushCond.Broadcast()
	w.mu.Unlock()
	close(w.stop)
	w.wg.Wait()

	var errs []error
	toSync := w.sealedUnsynced
	if w.active != nil && w.unsynced {
		toSync = append(toSync, w.active)
	}
	for _, seg := range toSync {
		if seg.f != nil && !seg.removed {
			if err := seg.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("fsync %s: %w", filepath.Base(seg.path), err))
			}
		}
	}
	w.mu.Lock()
	if seg := w.active; seg != nil {
		w.active = nil
		w.seal(seg)
	}
	ck := w.checkpointLocked()
	for _, seg := range w.segs {
		if seg.f != nil {
			if err := seg.f.Close(); err != nil {
				errs = append(errs, err)
			}
			seg.f = nil
		}
	}
	w.mu.Unlock()
	if err := w.writeCheckpoint(ck); err != nil {
		errs = append(errs, fmt.Errorf("write acknowledgement checkpoint: %w", err))
	}
	if err := w.lock.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("persistent queue %s: close: %w", w.dir, err)
	}
	return nil
}

// crash stops the queue the way a killed process would: no final sync, no checkpoint.
// Written data stays in the page cache, as it would. For tests.
func (w *wal) crash() {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.stopFlush = true
		w.space.Broadcast()
		w.data.Broadcast()
		w.flushCond.Broadcast()
		w.mu.Unlock()
		close(w.stop)
		w.wg.Wait()
		for _, seg := range w.segs {
			if seg.f != nil {
				_ = seg.f.Close()
			}
		}
		_ = w.lock.Close()
	})
}

func (w *wal) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Stats{
		Batches:       w.batches,
		Items:         w.items,
		Bytes:         w.diskBytes,
		Capacity:      w.opts.Capacity,
		CapacityBytes: w.opts.MaxBytes,
		Segments:      len(w.segs),
		Corruptions:   w.corruptions,
	}
	for i := range w.window.len() {
		if e := w.window.at(i); e.state == waiting || e.state == inFlight || e.state == kept {
			s.Oldest = time.Unix(0, e.at)
			break
		}
	}
	return s
}
