package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	segmentSuffix = ".wal"
	ackFile       = "ack"
	lockFile      = "LOCK"
	tmpSuffix     = ".tmp"
)

// segmentFile is what the WAL needs of a segment file. Tests substitute one that fails.
type segmentFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// fileSystem opens segment files: the one seam where tests inject write, sync and truncate
// failures. Everything else (the checkpoint, the lock, directory listing) goes to os directly.
type fileSystem interface {
	create(path string) (segmentFile, error) // a new, empty segment
	open(path string) (segmentFile, error)   // an existing segment, for reading and truncating
}

type osFS struct{}

func (osFS) create(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

func (osFS) open(path string) (segmentFile, error) { return os.OpenFile(path, os.O_RDWR, 0) }

func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

// parseSegmentName returns the id of a segment file name, or false for any other file.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	return id, err == nil
}

// listSegments returns the segment ids in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, de := range des {
		if id, ok := parseSegmentName(de.Name()); ok && de.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces path with data so that a crash leaves either the old or the new
// content: write a temporary file, sync it, rename it over, sync the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// lockDir takes an exclusive flock on dir's lock file so that two processes (or two queues in
// one process) never share a WAL. The lock goes with the process, so a crash cannot leave a
// stale lock behind.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persistent queue %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("persistent queue %s is in use by another vigil process%s or another exporter of this one: "+
				"give each exporter its own directory", dir, holder)
		}
		return nil, fmt.Errorf("persistent queue %s: lock %s: %w", dir, path, err)
	}
	// The pid is a hint for the message above; the flock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// dirScan is what a pass over a WAL directory found. OpenWAL and Check both start from it.
type dirScan struct {
	segments []scannedSegment
	ack      checkpoint
	ackErr   error // the checkpoint exists but cannot be read: everything counts as pending
	maxSeq   uint64
	anyRec   bool
}

type scannedSegment struct {
	id      uint64
	path    string
	size    int64
	records []record // body is not kept: it would pin the whole segment in memory
	damage  []damage
}

// scanDir reads every segment in dir and the acknowledgement checkpoint. It allocates one
// buffer the size of the largest segment and reuses it.
func scanDir(dir string) (*dirScan, error) {
	ids, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	s := &dirScan{}
	switch b, err := os.ReadFile(filepath.Join(dir, ackFile)); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read acknowledgement checkpoint: %w", err)
	default:
		s.ack, s.ackErr = unmarshalCheckpoint(b)
	}
	var buf []byte
	for _, id := range ids {
		seg := scannedSegment{id: id, path: filepath.Join(dir, segmentName(id))}
		buf, err = readInto(buf, seg.path)
		if err != nil {
			return nil, err
		}
		seg.size = int64(len(buf))
		seg.damage = scanSegment(buf, func(r record) {
			r.body = nil
			seg.records = append(seg.records, r)
			if !s.anyRec || r.seq > s.maxSeq {
				s.maxSeq = r.seq
			}
			s.anyRec = true
		})
		s.segments = append(s.segments, seg)
	}
	return s, nil
}

// acked reports whether the checkpoint covers seq. An unreadable checkpoint covers nothing:
// replaying too much beats losing data.
func (s *dirScan) acked(seq uint64) bool { return s.ackErr == nil && s.ack.has(seq) }

// nextSeq is the first seq that no record on disk and no checkpoint entry uses.
func (s *dirScan) nextSeq() uint64 {
	next := uint64(0)
	if s.anyRec {
		next = s.maxSeq + 1
	}
	if s.ackErr == nil {
		next = max(next, s.ack.next, s.ack.below)
		for _, r := range s.ack.acked {
			next = max(next, r.to)
		}
	}
	return next
}

func readInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return buf[:0], fmt.Errorf("read %s: %w", path, err)
	}
	return buf, nil
}

// rewriteSegment replaces a segment with only its valid records, atomically.
func rewriteSegment(path string, size int64, records []record) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	data := make([]byte, 0, size)
	for _, r := range records {
		part := make([]byte, r.size)
		if _, err := src.ReadAt(part, int64(r.off)); err != nil {
			return fmt.Errorf("read %s at %d: %w", path, r.off, err)
		}
		data = append(data, part...)
	}
	return writeFileAtomic(path, data)
}

// truncateFile cuts path at size and syncs it.
func truncateFile(fsys fileSystem, path string, size int64) error {
	f, err := fsys.open(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
