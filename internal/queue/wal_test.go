package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/testdata"
)

// reopen closes w (cleanly, or as a crash would) and opens its directory again.
func reopen(t *testing.T, w *wal, crash bool) *wal {
	t.Helper()
	if crash {
		w.crash()
	} else if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, w.opts)
}

// take gets n batches and returns them with their done functions, without acknowledging.
func take(t *testing.T, q Queue, n int) ([]int, []func(bool)) {
	t.Helper()
	var seqs []int
	var dones []func(bool)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, done, ok := q.Get(ctx)
		cancel()
		if !ok {
			t.Fatalf("Get %d of %d: nothing", len(seqs)+1, n)
		}
		seqs = append(seqs, seqOf(t, b))
		dones = append(dones, done)
	}
	return seqs, dones
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	ids, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, id := range ids {
		paths = append(paths, filepath.Join(dir, segmentName(id)))
	}
	return paths
}

func TestWALReplaysUnacknowledged(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			w := open(t, walOpts(t))
			put(t, w, span(0, 10)...)
			_, dones := take(t, w, 4)
			for _, d := range dones {
				d(true)
			}
			w = reopen(t, w, crash)
			want := span(4, 10)
			if crash {
				// Nothing was checkpointed: acknowledged records come back (at-least-once).
				want = span(0, 10)
			}
			if s := w.Stats(); s.Batches != len(want) || s.Items != len(want) {
				t.Fatalf("Stats after reopen = %+v, want %d batches", s, len(want))
			}
			wantSeqs(t, "replayed", drain(t, w), want)
			w = reopen(t, w, false)
			wantSeqs(t, "after acknowledging the replay", drain(t, w), nil)
		})
	}
}

func TestWALCheckpointInBackground(t *testing.T) {
	opts := walOpts(t)
	w, err := openWAL(opts, walConfig{checkpointEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	put(t, w, span(0, 5)...)
	_, dones := take(t, w, 3)
	for _, d := range dones {
		d(true)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(opts.Dir, ackFile))
		if err == nil {
			if ck, err := unmarshalCheckpoint(b); err == nil && ck.below == 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint with the acknowledgements was written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.crash()
	w = open(t, opts)
	wantSeqs(t, "replayed after a crash that followed a checkpoint", drain(t, w), span(3, 5))
}

func TestWALOutOfOrderAcks(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			w := open(t, walOpts(t))
			put(t, w, span(0, 8)...)
			seqs, dones := take(t, w, 6)
			wantSeqs(t, "Get order", seqs, span(0, 6))
			for _, i := range []int{5, 1, 3, 4} {
				dones[i](true)
			}
			// Written by the background loop in production; forced here so a crash is exact.
			if err := w.writeCheckpoint(w.checkpointNow()); err != nil {
				t.Fatal(err)
			}
			dones[0](false)
			dones[2](false)
			if crash {
				w.crash()
				w = open(t, w.opts)
			} else {
				w = reopen(t, w, false)
			}
			wantSeqs(t, "replayed", drain(t, w), []int{0, 2, 6, 7})
		})
	}
}

func TestWALDoneFalseRequeues(t *testing.T) {
	w := open(t, walOpts(t))
	put(t, w, span(0, 5)...)
	_, dones := take(t, w, 3)
	dones[2](false)
	dones[0](false)
	dones[0](true) // a second call is ignored
	seqs, dones2 := take(t, w, 4)
	wantSeqs(t, "returned records come first, in order", seqs, []int{0, 2, 3, 4})
	dones[1](true)
	for _, d := range dones2 {
		d(true)
	}
	if s := w.Stats(); s.Batches != 0 {
		t.Fatalf("Stats = %+v, want empty", s)
	}
}

func TestWALCloseWaitsForInFlight(t *testing.T) {
	w := open(t, walOpts(t))
	put(t, w, 0, 1, 2)
	_, dones := take(t, w, 1)
	closed := make(chan error)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a batch in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	if _, _, ok := w.Get(context.Background()); ok {
		t.Fatal("Get handed out a record after Close")
	}
	if err := w.Put(context.Background(), mk(t, 9, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	dones[0](false) // shutdown cut the delivery short: keep it
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	w = open(t, w.opts)
	wantSeqs(t, "replayed", drain(t, w), []int{0, 1, 2})
}

func TestWALSegmentsRollAndGo(t *testing.T) {
	opts := walOpts(t)
	rec := int64(frameLen + payloadHeaderLen + mk(t, 0, 1).EncodedSize())
	opts.SegmentBytes = 3 * rec // three records a segment
	w := open(t, opts)
	put(t, w, span(0, 10)...)
	if s := w.Stats(); s.Segments != 4 || s.Bytes != 10*rec {
		t.Fatalf("Stats = %+v, want 4 segments and %d bytes", s, 10*rec)
	}
	_, dones := take(t, w, 7)
	for _, i := range []int{0, 1, 3, 4, 5, 6} {
		dones[i](true)
	}
	// Segment 2 (records 3-5) is fully acknowledged; segment 1 still holds record 2.
	if got := len(segmentFiles(t, opts.Dir)); got != 3 {
		t.Fatalf("%d segment files, want 3", got)
	}
	dones[2](true)
	if got := len(segmentFiles(t, opts.Dir)); got != 2 {
		t.Fatalf("%d segment files, want 2", got)
	}
	w = reopen(t, w, false)
	wantSeqs(t, "replayed", drain(t, w), span(7, 10))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, opts.Dir); len(got) != 0 {
		t.Fatalf("segments left after everything was acknowledged: %v", got)
	}
	// Seqs go on after every segment is gone: new records must not match old acknowledgements.
	w = open(t, opts)
	put(t, w, 100, 101)
	w.crash()
	w = open(t, opts)
	wantSeqs(t, "new records after an empty restart", drain(t, w), []int{100, 101})
}

// recordOffsets lists the records of a segment file.
func recordOffsets(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	if dmg := scanSegment(data, func(r record) { recs = append(recs, r) }); len(dmg) > 0 {
		t.Fatalf("damage in a fresh segment: %+v", dmg)
	}
	return recs
}

// cloneDir copies a closed WAL directory, so that each damage gets a fresh copy.
func cloneDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		copyFile(t, filepath.Join(dst, de.Name()), filepath.Join(src, de.Name()))
	}
	return dst
}

func TestWALTornTail(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	put(t, w, 0, 1, 2)
	w.crash()
	seg := segmentFiles(t, opts.Dir)[0]
	recs := recordOffsets(t, seg)
	last := recs[len(recs)-1]
	for cut := last.off; cut < last.off+last.size; cut++ {
		dir := cloneDir(t, opts.Dir)
		path := filepath.Join(dir, filepath.Base(seg))
		if err := os.Truncate(path, int64(cut)); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Dir = dir
		w := open(t, o)
		if s := w.Stats(); s.Corruptions != 0 || s.Bytes != int64(last.off) {
			t.Fatalf("cut at %d: Stats = %+v, want no corruption and %d bytes", cut, s, last.off)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != int64(last.off) {
			t.Fatalf("cut at %d: torn tail not truncated", cut)
		}
		got, _ := take(t, w, 2)
		wantSeqs(t, fmt.Sprintf("cut at %d", cut), got, []int{0, 1})
		put(t, w, 3)
		w = reopen(t, w, true)
		wantSeqs(t, fmt.Sprintf("cut at %d, then appended", cut), drain(t, w), []int{0, 1, 3})
		_ = w.Close()
	}
}

func TestWALCorruptRecordSkipped(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	put(t, w, 0, 1, 2)
	w.crash()
	seg := segmentFiles(t, opts.Dir)[0]
	mid := recordOffsets(t, seg)[1]
	// Every byte of the middle record, flipped in turn, costs that record and nothing else.
	for i := mid.off; i < mid.off+mid.size; i++ {
		dir := cloneDir(t, opts.Dir)
		path := filepath.Join(dir, filepath.Base(seg))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[i] ^= 0x5a
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Dir = dir
		w := open(t, o)
		if s := w.Stats(); s.Corruptions != 1 || s.Batches != 2 {
			t.Fatalf("byte %d flipped: Stats = %+v, want 1 corruption and 2 batches", i, s)
		}
		wantSeqs(t, fmt.Sprintf("byte %d flipped", i), drain(t, w), []int{0, 2})
		_ = w.Close()
	}
}

func TestWALUnreadableCheckpointReplaysAll(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	put(t, w, 0, 1, 2)
	drain(t, w)
	_ = w.Close()
	w = open(t, opts)
	put(t, w, 3, 4)
	_, dones := take(t, w, 1)
	dones[0](true)
	_ = w.Close()
	if err := os.WriteFile(filepath.Join(opts.Dir, ackFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	w = open(t, opts)
	wantSeqs(t, "replayed without a checkpoint", drain(t, w), []int{3, 4})
}

func TestWALCapacity(t *testing.T) {
	rec := int64(frameLen + payloadHeaderLen + mk(t, 0, 1).EncodedSize())
	tests := []struct {
		name        string
		opts        Options
		maxBytes    int64
		wantErr     error
		wantDropped []int
		wantLeft    []int
	}{
		{"requests drop_newest", Options{Capacity: 3, WhenFull: DropNewest}, 0, ErrFull, nil, []int{0, 1, 2}},
		{"requests drop_oldest", Options{Capacity: 3, WhenFull: DropOldest}, 0, nil, []int{0}, []int{1, 2, 3}},
		{"requests block", Options{Capacity: 3, WhenFull: Block}, 0, context.DeadlineExceeded, nil, []int{0, 1, 2}},
		{"items", Options{Sizer: SizeItems, Capacity: 3, WhenFull: DropNewest}, 0, ErrFull, nil, []int{0, 1, 2}},
		{"bytes", Options{Sizer: SizeBytes, Capacity: 3 * int(rec-frameLen-payloadHeaderLen), WhenFull: DropNewest}, 0, ErrFull, nil, []int{0, 1, 2}},
		{"max bytes drop_newest", Options{Capacity: 100, WhenFull: DropNewest}, 3 * rec, ErrFull, nil, []int{0, 1, 2}},
		{"max bytes drop_oldest", Options{Capacity: 100, WhenFull: DropOldest}, 3 * rec, nil, []int{0}, []int{1, 2, 3}},
		{"max bytes block", Options{Capacity: 100, WhenFull: Block}, 3 * rec, ErrFull, nil, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var dropped []int
			opts := walOpts(t)
			opts.Options = tt.opts
			opts.MaxBytes = tt.maxBytes
			opts.OnDrop = func(b *batch.Batch) {
				mu.Lock()
				defer mu.Unlock()
				dropped = append(dropped, seqOf(t, b))
			}
			w := open(t, opts)
			put(t, w, 0, 1, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			err := w.Put(ctx, mk(t, 3, 1))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Put into a full queue = %v, want %v", err, tt.wantErr)
			}
			mu.Lock()
			wantSeqs(t, "dropped", dropped, tt.wantDropped)
			mu.Unlock()
			// What is left survives a restart, and what was dropped does not come back.
			w = reopen(t, w, false)
			wantSeqs(t, "left", drain(t, w), tt.wantLeft)
		})
	}
}

func TestWALDropOldestReadsBackForOnDrop(t *testing.T) {
	opts := walOpts(t)
	opts.Capacity = 2
	opts.WhenFull = DropOldest
	var dropped []int
	opts.OnDrop = func(b *batch.Batch) { dropped = append(dropped, seqOf(t, b)) }
	w := open(t, opts)
	put(t, w, 0, 1)
	w = reopen(t, w, false) // replayed records are not cached: OnDrop needs them from disk
	put(t, w, 2, 3)
	wantSeqs(t, "dropped", dropped, []int{0, 1})
	wantSeqs(t, "left", drain(t, w), []int{2, 3})
}

func TestWALBlockWaitsForAck(t *testing.T) {
	opts := walOpts(t)
	opts.Capacity = 1
	opts.WhenFull = Block
	w := open(t, opts)
	put(t, w, 0)
	_, dones := take(t, w, 1)
	errc := make(chan error)
	go func() { errc <- w.Put(context.Background(), mk(t, 1, 1)) }()
	select {
	case err := <-errc:
		t.Fatalf("Put returned %v while the queue was full", err)
	case <-time.After(20 * time.Millisecond):
	}
	dones[0](true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, "left", drain(t, w), []int{1})
}

func TestWALOversizeWhenEmpty(t *testing.T) {
	opts := walOpts(t)
	opts.Sizer = SizeItems
	opts.Capacity = 10
	w := open(t, opts)
	if err := w.Put(context.Background(), mk(t, 0, 50)); err != nil {
		t.Fatalf("oversize into an empty queue: %v", err)
	}
	if err := w.Put(context.Background(), mk(t, 100, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("Put beside an oversize batch = %v, want ErrFull", err)
	}
}

func TestWALLock(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	_, err := openWAL(opts, testCfg)
	if err == nil || !strings.Contains(err.Error(), opts.Dir) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open = %v, want an error naming the directory", err)
	}
	if _, err := Check(opts.Dir, false); err == nil || !strings.Contains(err.Error(), opts.Dir) {
		t.Fatalf("Check on an open queue = %v, want an error naming the directory", err)
	}
	_ = w.Close()
	w = open(t, opts) // released by Close
	w.crash()
	open(t, opts) // and by a crash (the process's fds close)
}

func TestWALOptions(t *testing.T) {
	f := func(mod func(*WALOptions), want string) {
		t.Helper()
		opts := walOpts(t)
		mod(&opts)
		_, err := openWAL(opts, testCfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want an error with %q", err, want)
		}
	}
	f(func(o *WALOptions) { o.Dir = "" }, "directory must be set")
	f(func(o *WALOptions) { o.Capacity = 0 }, "capacity must be > 0")
	f(func(o *WALOptions) { o.Sizer = "bits" }, `unknown sizer "bits"`)
	f(func(o *WALOptions) { o.WhenFull = "panic" }, `unknown when_full policy "panic"`)
	f(func(o *WALOptions) { o.Fsync = "never" }, `unknown fsync policy "never"`)
}

func TestWALStats(t *testing.T) {
	opts := walOpts(t)
	opts.MaxBytes = 1 << 20
	w := open(t, opts)
	if s := w.Stats(); s != (Stats{Capacity: 1000, CapacityBytes: 1 << 20}) {
		t.Fatalf("empty Stats = %+v", s)
	}
	before := time.Now()
	if err := w.Put(context.Background(), mk(t, 0, 3)); err != nil {
		t.Fatal(err)
	}
	put(t, w, 1)
	s := w.Stats()
	if s.Batches != 2 || s.Items != 4 || s.Segments != 1 || s.Bytes == 0 || s.Oldest.Before(before.Truncate(time.Microsecond)) {
		t.Fatalf("Stats = %+v", s)
	}
	_, dones := take(t, w, 1)
	if s2 := w.Stats(); s2.Batches != 2 || !s2.Oldest.Equal(s.Oldest) {
		t.Fatalf("in flight still counts: Stats = %+v", s2)
	}
	dones[0](true)
	if s3 := w.Stats(); s3.Batches != 1 || s3.Items != 1 || !s3.Oldest.After(s.Oldest) {
		t.Fatalf("after ack: Stats = %+v", s3)
	}
	w = reopen(t, w, false)
	if s4 := w.Stats(); s4.Batches != 1 || s4.Oldest.IsZero() {
		t.Fatalf("after reopen: Stats = %+v", s4)
	}
}

// faultFS fails segment writes, syncs or truncates on demand.
type faultFS struct {
	mu           sync.Mutex
	writeBudget  int64 // bytes writes may still take before failing with err; < 0: unlimited
	failSync     bool
	failTruncate bool
	err          error
	failCreate   bool
	syncs        int           // successful fsyncs
	syncDelay    time.Duration // a slow disk
}

func (fs *faultFS) create(path string) (segmentFile, error) {
	fs.mu.Lock()
	fail, ferr := fs.failCreate, fs.err
	fs.mu.Unlock()
	if fail {
		return nil, &os.PathError{Op: "open", Path: path, Err: ferr}
	}
	f, err := osFS{}.create(path)
	return &faultFile{segmentFile: f, fs: fs}, err
}

func (fs *faultFS) open(path string) (segmentFile, error) {
	f, err := osFS{}.open(path)
	return &faultFile{segmentFile: f, fs: fs}, err
}

func (fs *faultFS) set(fn func(*faultFS)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fn(fs)
}

type faultFile struct {
	segmentFile
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	budget, err := f.fs.writeBudget, f.fs.err
	if budget >= 0 && int64(len(p)) > budget {
		f.fs.writeBudget = 0
		f.fs.mu.Unlock()
		n, _ := f.segmentFile.WriteAt(p[:budget], off) // a partial write reaches the file
		return n, err
	}
	if budget >= 0 {
		f.fs.writeBudget -= int64(len(p))
	}
	f.fs.mu.Unlock()
	return f.segmentFile.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail, err, delay := f.fs.failSync, f.fs.err, f.fs.syncDelay
	f.fs.mu.Unlock()
	if fail {
		return err
	}
	time.Sleep(delay)
	if err := f.segmentFile.Sync(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.syncs++
	f.fs.mu.Unlock()
	return nil
}

func (fs *faultFS) syncCount() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncs
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	fail := f.fs.failTruncate
	f.fs.mu.Unlock()
	if fail {
		return f.fs.err
	}
	return f.segmentFile.Truncate(size)
}

func TestWALWriteErrors(t *testing.T) {
	rec := int64(frameLen + payloadHeaderLen + mk(t, 0, 1).EncodedSize())
	tests := []struct {
		name     string
		fault    func(*faultFS)
		wantFull bool // the error also says ErrFull
	}{
		{"disk full mid-record", func(fs *faultFS) { fs.writeBudget, fs.err = rec/2, syscall.ENOSPC }, true},
		{"disk full at a record boundary", func(fs *faultFS) { fs.writeBudget, fs.err = 0, syscall.ENOSPC }, true},
		{"I/O error", func(fs *faultFS) { fs.writeBudget, fs.err = 10, syscall.EIO }, false},
		{"fsync fails", func(fs *faultFS) { fs.failSync, fs.err = true, syscall.EIO }, false},
		{"partial write that cannot be rolled back", func(fs *faultFS) {
			fs.writeBudget, fs.err, fs.failTruncate = rec/2, syscall.EIO, true
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &faultFS{writeBudget: -1}
			opts := walOpts(t)
			w, err := openWAL(opts, walConfig{fs: fs, checkpointEvery: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			put(t, w, 0, 1)
			fs.set(tt.fault)
			err = w.Put(context.Background(), mk(t, 2, 1))
			if !errors.Is(err, ErrDisk) || errors.Is(err, ErrFull) != tt.wantFull {
				t.Fatalf("Put on a failing disk = %v, want ErrDisk (and ErrFull: %v)", err, tt.wantFull)
			}
			if s := w.Stats(); s.Batches != 2 {
				t.Fatalf("Stats after a failed Put = %+v, want 2 batches", s)
			}
			fs.set(func(fs *faultFS) { fs.writeBudget, fs.failSync, fs.failTruncate = -1, false, false })
			put(t, w, 3)
			got, dones := take(t, w, 3)
			wantSeqs(t, "after the failure", got, []int{0, 1, 3})
			dones[0](true)
			dones[1](false)
			dones[2](false)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w2 := open(t, opts)
			if s := w2.Stats(); s.Corruptions != 0 {
				t.Fatalf("a failed write left corruption behind: %+v", s)
			}
			wantSeqs(t, "replayed", drain(t, w2), []int{1, 3})
			rep, err := checkAfterClose(t, w2)
			if err != nil || rep.Corrupt != 0 {
				t.Fatalf("Check after recovery: %v\n%s", err, rep)
			}
		})
	}
}

func (w *wal) checkpointNow() checkpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checkpointLocked()
}

func checkAfterClose(t *testing.T, w *wal) (Report, error) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return Check(w.dir, false)
}

func TestWALSegmentCreateFails(t *testing.T) {
	fs := &faultFS{writeBudget: -1}
	opts := walOpts(t)
	opts.SegmentBytes = 1 // every record starts a segment
	w, err := openWAL(opts, walConfig{fs: fs, checkpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	put(t, w, 0)
	fs.set(func(fs *faultFS) { fs.failCreate, fs.err = true, syscall.ENOSPC })
	if err := w.Put(context.Background(), mk(t, 1, 1)); !errors.Is(err, ErrDisk) || !errors.Is(err, ErrFull) {
		t.Fatalf("Put = %v, want ErrDisk and ErrFull", err)
	}
	fs.set(func(fs *faultFS) { fs.failCreate = false })
	put(t, w, 2)
	wantSeqs(t, "after the failure", drain(t, w), []int{0, 2})
}

func TestWALConcurrent(t *testing.T) {
	opts := walOpts(t)
	opts.Capacity = 50
	opts.WhenFull = Block
	opts.SegmentBytes = 16 << 10
	w := open(t, opts)
	const producers, consumers, each = 4, 4, 150
	var (
		mu   sync.Mutex
		seen = map[int]int{}
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				b, done, ok := w.Get(ctx)
				if !ok {
					return
				}
				delivered := rng.IntN(4) != 0 // a quarter come back for another try
				if delivered {
					mu.Lock()
					seen[seqOf(t, b)]++
					mu.Unlock()
				}
				_ = w.Stats()
				done(delivered)
			}
		}()
	}
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := range each {
				if err := w.Put(context.Background(), mk(t, p*each+i, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	pwg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Batches > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if len(seen) != producers*each {
		t.Fatalf("delivered %d distinct batches, want %d", len(seen), producers*each)
	}
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("batch %d delivered %d times", s, n)
		}
	}
	w = reopen(t, w, false)
	if s := w.Stats(); s.Batches != 0 || s.Segments != 0 {
		t.Fatalf("after delivering everything: %+v", s)
	}
}

func TestWALCheckpointRanges(t *testing.T) {
	ck := checkpoint{below: 10, next: 40}
	for _, s := range []uint64{11, 12, 13, 20, 30, 31} {
		ck.add(s)
	}
	got, err := unmarshalCheckpoint(ck.marshal(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.acked, []seqRange{{11, 14}, {20, 21}, {30, 32}}) || got.below != 10 || got.next != 40 {
		t.Fatalf("round trip: %+v", got)
	}
	for seq, want := range map[uint64]bool{0: true, 9: true, 10: false, 11: true, 13: true, 14: false, 20: true, 21: false, 31: true, 32: false} {
		if got.has(seq) != want {
			t.Errorf("has(%d) = %v, want %v", seq, !want, want)
		}
	}
	raw := ck.marshal(nil)
	raw[10] ^= 1
	if _, err := unmarshalCheckpoint(raw); err == nil {
		t.Fatal("a damaged checkpoint was accepted")
	}
}

func TestWALGroupCommit(t *testing.T) {
	fs := &faultFS{writeBudget: -1, syncDelay: 20 * time.Millisecond}
	w, err := openWAL(walOpts(t), walConfig{fs: fs, checkpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Put(context.Background(), mk(t, i, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The first Put's fsync takes 20ms; the other seven queue up behind it and share one.
	if n := fs.syncCount(); n < 1 || n > writers/2 {
		t.Fatalf("%d fsyncs for %d concurrent Puts: no group commit", n, writers)
	}
	if s := w.Stats(); s.Batches != writers {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestWALFsyncInterval(t *testing.T) {
	f := func(interval time.Duration) (*wal, *faultFS) {
		t.Helper()
		fs := &faultFS{writeBudget: -1}
		opts := walOpts(t)
		opts.Fsync = FsyncInterval
		opts.FsyncInterval = interval
		w, err := openWAL(opts, walConfig{fs: fs, checkpointEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		return w, fs
	}

	w, fs := f(time.Hour)
	put(t, w, 0, 1, 2)
	if n := fs.syncCount(); n != 0 {
		t.Fatalf("%d fsyncs in Put under the interval policy", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.syncCount(); n != 1 {
		t.Fatalf("%d fsyncs at Close, want 1", n)
	}

	w, fs = f(10 * time.Millisecond)
	put(t, w, 0, 1, 2)
	deadline := time.Now().Add(5 * time.Second)
	for fs.syncCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background fsync")
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := fs.syncCount()
	time.Sleep(50 * time.Millisecond)
	if m := fs.syncCount(); m != n {
		t.Fatalf("%d fsyncs while idle: nothing was written", m-n)
	}
	w.crash() // the page cache keeps what was written: a process crash loses nothing
	w = open(t, w.opts)
	wantSeqs(t, "replayed", drain(t, w), []int{0, 1, 2})
}

func TestWALFsyncAlwaysSyncsEveryPut(t *testing.T) {
	fs := &faultFS{writeBudget: -1}
	w, err := openWAL(walOpts(t), walConfig{fs: fs, checkpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		put(t, w, i)
		if n := fs.syncCount(); n != i+1 {
			t.Fatalf("after Put %d: %d fsyncs", i+1, n)
		}
	}
}

func TestWALZeroTailIsTorn(t *testing.T) {
	opts := walOpts(t)
	w := open(t, opts)
	put(t, w, 0, 1)
	w.crash()
	seg := segmentFiles(t, opts.Dir)[0]
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks allocated but never written, as a power loss can leave them.
	if err := os.Truncate(seg, fi.Size()+4096); err != nil {
		t.Fatal(err)
	}
	w = open(t, opts)
	if s := w.Stats(); s.Corruptions != 0 || s.Bytes != fi.Size() {
		t.Fatalf("Stats = %+v, want the zeros cut off and not counted", s)
	}
	wantSeqs(t, "replayed", drain(t, w), []int{0, 1})
}

func TestWALDecodedBatchReadBack(t *testing.T) {
	w := open(t, walOpts(t))
	decoded := batch.FromTraces(testdata.Traces(1, 3, 40))
	if err := w.Put(context.Background(), decoded); err != nil {
		t.Fatal(err)
	}
	b, done, ok := w.Get(context.Background())
	if !ok || b == decoded || b.Items() != 3 || seqOf(t, b) != 40 {
		t.Fatalf("a decoded batch should come back from disk, re-validated: ok=%v same=%v", ok, b == decoded)
	}
	done(true)
}
