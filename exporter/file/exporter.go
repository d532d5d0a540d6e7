package file

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// bufferSize is the write buffer: big enough that small batches cost one write per flush, not
// one per batch.
const bufferSize = 256 << 10

var (
	errNotStarted = errors.New("file exporter not started")
	errClosed     = errors.New("file exporter shut down")
)

// exporter appends records to a rotating file. Records are built (marshalled, compressed)
// outside the lock; only the write into the buffer is serialised, so a record is never
// interleaved with another.
type exporter struct {
	set      component.Settings
	cfg      Config
	maxBytes int64

	mu      sync.Mutex
	started bool
	closed  bool
	f       *os.File
	w       *bufio.Writer
	size    int64 // bytes in the current file, buffered ones included

	zenc *zstd.Encoder // nil without compression

	stop chan struct{}
	done chan struct{}
}

var _ component.Exporter = (*exporter)(nil)

func newExporter(set component.Settings, cfg *Config) (*exporter, error) {
	e := &exporter{
		set:      set,
		cfg:      *cfg,
		maxBytes: int64(cfg.Rotation.MaxMegabytes) << 20,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.Compression == Zstd {
		// Used only through EncodeAll, which is safe for concurrent use and holds no goroutine,
		// so it needs no Close and a Consume racing Shutdown cannot hit a closed encoder.
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", set.ID, err)
		}
		e.zenc = enc
	}
	return e, nil
}

// Start opens the file, so that a path that cannot be written fails the agent at start rather
// than at the first batch, and runs the flush loop.
func (e *exporter) Start(context.Context, component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return nil
	}
	if err := e.open(); err != nil {
		return fmt.Errorf("%s: %w", e.set.ID, err)
	}
	e.started = true
	go e.loop()
	return nil
}

func (e *exporter) loop() {
	defer close(e.done)
	t := time.NewTicker(e.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.mu.Lock()
			e.flush()
			e.mu.Unlock()
		}
	}
}

// Consume writes b as one record. Items count as sent once the record is in the write buffer;
// it reaches the file within flush_interval. Failures are permanent: the file is local, and a
// retry would only write the same record again.
func (e *exporter) Consume(_ context.Context, b *batch.Batch) error {
	sig, n := b.Signal(), b.Items()
	parts, err := e.record(b)
	if err == nil {
		err = e.write(parts...)
	}
	if err != nil {
		e.set.Counters.Add(component.Dropped, sig, n)
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", e.set.ID, err))
	}
	e.set.Counters.Add(component.Sent, sig, n)
	return nil
}

// record returns the pieces of b's record, to be written in order. Pieces may be shared with
// the batch and are never modified.
func (e *exporter) record(b *batch.Batch) ([][]byte, error) {
	var (
		payload []byte
		err     error
	)
	if e.cfg.Format == FormatProto {
		payload, err = b.Encoded() // the request bytes as received: no decoding
	} else {
		payload, err = b.JSON()
	}
	if err != nil {
		return nil, err
	}
	if e.zenc != nil {
		payload = e.zenc.EncodeAll(payload, nil)
	}
	if e.cfg.Format == FormatJSON && e.zenc == nil {
		return [][]byte{payload, {'\n'}}, nil
	}
	if len(payload) > math.MaxUint32 {
		return nil, fmt.Errorf("record of %d bytes does not fit a 4-byte length", len(payload))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	return [][]byte{hdr[:], payload}, nil
}

func (e *exporter) write(parts ...[]byte) error {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return errClosed
	case !e.started:
		return errNotStarted
	}
	if e.w == nil {
		// An earlier error dropped the file; try again.
		if err := e.open(); err != nil {
			return err
		}
	}
	if e.size > 0 && e.size+n > e.maxBytes {
		if err := e.rotate(); err != nil {
			return err
		}
	}
	for _, p := range parts {
		if _, err := e.w.Write(p); err != nil {
			e.drop(err)
			return err
		}
	}
	e.size += n
	return nil
}

// open opens (creating if needed) the file for appending; the caller holds mu.
func (e *exporter) open() error {
	if err := os.MkdirAll(filepath.Dir(e.cfg.Path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(e.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	e.f, e.w, e.size = f, bufio.NewWriterSize(f, bufferSize), st.Size()
	return nil
}

// flush writes the buffer to the file; the caller holds mu.
func (e *exporter) flush() {
	if e.w == nil {
		return
	}
	if err := e.w.Flush(); err != nil {
		e.drop(err)
	}
}

// drop closes the file after a write error: bufio keeps failing once it failed, so the next
// record reopens the file instead. What was buffered is lost, and logged.
func (e *exporter) drop(err error) {
	e.set.Logger.Error("cannot write to file; buffered records lost", "path", e.cfg.Path, "error", err)
	e.f.Close()
	e.f, e.w, e.size = nil, nil, 0
}

// closeFile flushes and closes the current file; the caller holds mu.
func (e *exporter) closeFile() error {
	if e.w == nil {
		return nil
	}
	err := e.w.Flush()
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	e.f, e.w, e.size = nil, nil, 0
	return err
}

// rotate moves the full file to path.1 (shifting older backups up, dropping what max_backups
// and max_days no longer allow) and opens a fresh file; the caller holds mu.
func (e *exporter) rotate() error {
	if err := e.closeFile(); err != nil {
		e.set.Logger.Error("cannot flush file before rotating", "path", e.cfg.Path, "error", err)
	}
	if err := shiftBackups(e.cfg.Path, e.cfg.Rotation, time.Now()); err != nil {
		// Keep writing: appending to an unrotated file beats losing data.
		e.set.Logger.Warn("cannot rotate file", "path", e.cfg.Path, "error", err)
	}
	return e.open()
}

// Shutdown stops the flush loop, flushes and closes the file; safe without Start and twice.
func (e *exporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started := e.started
	e.mu.Unlock()
	if !started {
		return nil
	}
	close(e.stop)
	select {
	case <-e.done:
	case <-ctx.Done():
		return fmt.Errorf("%s: stopping the flush loop: %w", e.set.ID, ctx.Err())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.closeFile(); err != nil {
		return fmt.Errorf("%s: closing %s: %w", e.set.ID, e.cfg.Path, err)
	}
	return nil
}
