// Package filelog is the file tailer: it follows the files its globs match through rename and
// copytruncate rotation, knows each file by a fingerprint of its first bytes (not its name),
// and checkpoints offsets that advance only over lines the pipeline acknowledged, so that a
// restart loses none and, after a clean stop, repeats none.
package filelog

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/logparse"
	"github.com/vigilhq/vigil/internal/ratelog"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// Type is the receiver's type name in config.
const Type = "filelog"

// NewFactory returns the factory.
func NewFactory() component.ReceiverFactory {
	return component.ReceiverFactory{
		Type:      Type,
		Signals:   []batch.Signal{batch.Logs},
		NewConfig: func() component.Config { return NewConfig() },
		Create: func(set component.Settings, cfg component.Config, next map[batch.Signal]component.Consumer) (component.Component, error) {
			return newReceiver(set, cfg.(*Config), next)
		},
	}
}

// span is a batch of one file in flight: the bytes [start, end) it covers.
type span struct {
	id   uint64
	end  int64 // the offset acknowledging it commits: before any line the joiner still holds
	gen  int   // the file's truncation generation when read
	done bool
}

// file is one file being followed.
type file struct {
	path     string
	f        *os.File
	dev, ino uint64
	fp       []byte // the first bytes (up to fingerprint_bytes)
	readPos  int64  // next byte to read
	gen      int    // bumped on truncation
	format   string
	pod      *logparse.Pod
	joiner   *logparse.Joiner
	partial  []byte // a line read without its newline yet
	skipping bool   // dropping the rest of a line over max_line_bytes
	// heldSince is when the multiline entry held back in partial was first held.
	heldSince time.Time
	seen      bool // matched by the globs this poll
	mu        sync.Mutex
	spans     []span // in flight, in order
	nextSpan  uint64
	commit    int64 // end of the acknowledged prefix
}

type receiver struct {
	set  component.Settings
	cfg  Config
	next component.Consumer
	now  func() time.Time

	filesMu    sync.Mutex                 // held by each poll: files is the poller's
	files      map[[2]uint64]*file        // by device and inode; the fingerprint identifies a file across restarts
	checkpoint map[string]checkpointEntry // by fingerprint (hex), from the last start
	claimed    map[string]bool            // checkpoint entries a followed file was found for
	first      bool                       // the first poll: start_at applies

	parse     func(string) (logparse.Fields, error) // the line parser, nil without one
	lineStart *regexp.Regexp                        // multiline.line_start_pattern, nil without
	decode    *encoding.Decoder                     // a single-byte encoding's, nil for UTF-8
	utf16     *encoding.Decoder                     // UTF-16's, nil otherwise
	bigEndian bool

	// The poller's scratch for split: each read's lines and where they start, emptied after
	// its records are built (the records keep the read buffer, not these).
	lineBuf  [][]byte
	startBuf []int

	lines, dropped, truncated, unparsed *prometheus.CounterVec
	warn                                ratelog.Limiter

	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
	pending sync.WaitGroup // spans not acknowledged yet
}

func newReceiver(set component.Settings, cfg *Config, next map[batch.Signal]component.Consumer) (*receiver, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	r := &receiver{set: set, cfg: *cfg, now: time.Now, files: map[[2]uint64]*file{}, first: true,
		stop: make(chan struct{}), done: make(chan struct{}), warn: ratelog.Limiter{Every: time.Minute}}
	for sig, c := range next {
		if sig != batch.Logs {
			return nil, fmt.Errorf("receiver %s: files carry logs, not %s", set.ID, sig)
		}
		r.next = c
	}
	if r.next == nil {
		return nil, fmt.Errorf("receiver %s: no logs pipeline", set.ID)
	}
	switch cfg.Encoding {
	case "latin1", "iso-8859-1":
		r.decode = charmap.ISO8859_1.NewDecoder()
	case "windows-1252":
		r.decode = charmap.Windows1252.NewDecoder()
	case "utf-16le":
		r.utf16 = unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder()
	case "utf-16be":
		r.utf16, r.bigEndian = unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewDecoder(), true
	}
	if m := cfg.Multiline; m != nil {
		re, err := regexp.Compile(m.LineStartPattern)
		if err != nil {
			return nil, fmt.Errorf("receiver %s: multiline.line_start_pattern: %w", set.ID, err)
		}
		r.lineStart = re
	}
	if p := cfg.Parser; p != nil {
		switch p.Type {
		case "json":
			r.parse = logparse.JSON
		case "logfmt":
			r.parse = logparse.Logfmt
		case "regex":
			re, err := logparse.NewRegex(p.Regex)
			if err != nil {
				return nil, fmt.Errorf("receiver %s: parser.regex: %w", set.ID, err)
			}
			r.parse = re.Parse
		}
	}
	var err error
	reg := func(name, help string, labels ...string) *prometheus.CounterVec {
		if err != nil {
			return nil
		}
		var c *prometheus.CounterVec
		c, err = selftelemetry.Register(set.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
		return c
	}
	r.lines = reg("vigil_receiver_filelog_lines_total", "Lines read from files and handed on.")
	r.dropped = reg("vigil_receiver_filelog_dropped_lines_total", "Lines dropped, by reason: too_long (the rest of a line over max_line_bytes), malformed (not in the file's format), refused (refused for good by the pipeline).", "reason")
	r.unparsed = reg("vigil_receiver_filelog_unparsed_lines_total", "Lines the parser could not read: kept as they are, without attributes.")
	r.truncated = reg("vigil_receiver_filelog_truncations_total", "Files found shorter than what was read of them (copytruncate): read again from the start.")
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", set.ID, err)
	}
	return r, nil
}

func (r *receiver) checkpointPath() string {
	return filepath.Join(r.cfg.CheckpointDir, "filelog-"+sanitize(r.set.ID.String())+".json")
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

type checkpointFile struct {
	Files []checkpointEntry `json:"files"`
}

type checkpointEntry struct {
	Fingerprint string `json:"fingerprint"`
	Offset      int64  `json:"offset"`
	Path        string `json:"path"` // where it was last seen by the globs
}

// Start reads the checkpoint and starts polling.
func (r *receiver) Start(_ context.Context, _ component.Host) error {
	if err := os.MkdirAll(r.cfg.CheckpointDir, 0o750); err != nil {
		return fmt.Errorf("receiver %s: checkpoint_dir: %w", r.set.ID, err)
	}
	r.checkpoint, r.claimed = map[string]checkpointEntry{}, map[string]bool{}
	b, err := os.ReadFile(r.checkpointPath())
	switch {
	case err == nil:
		var cf checkpointFile
		if err := json.Unmarshal(b, &cf); err != nil {
			return fmt.Errorf("receiver %s: checkpoint %s is unreadable (move it away to start over): %w", r.set.ID, r.checkpointPath(), err)
		}
		bad := 0
		for _, f := range cf.Files {
			if _, err := hex.DecodeString(f.Fingerprint); err != nil || f.Fingerprint == "" || f.Offset < 0 {
				bad++ // not what this receiver writes: the file is read as a new one
				continue
			}
			r.checkpoint[f.Fingerprint] = f
		}
		if bad > 0 {
			r.set.Logger.Warn("checkpoint entries ignored: no hex fingerprint or a negative offset", "checkpoint", r.checkpointPath(), "entries", bad)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("receiver %s: checkpoint: %w", r.set.ID, err)
	}
	r.started = true
	go r.run()
	r.set.Logger.Info("file tailer started", "include", r.cfg.Include, "exclude", r.cfg.Exclude,
		"checkpoint", r.checkpointPath(), "files_in_checkpoint", len(r.checkpoint), "start_at", r.cfg.StartAt)
	return nil
}

// Shutdown stops reading, waits (within ctx) for the lines in flight to be acknowledged, and
// writes the checkpoint.
func (r *receiver) Shutdown(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		if !r.started {
			return
		}
		<-r.done
		waited := make(chan struct{})
		go func() { r.pending.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			err = fmt.Errorf("receiver %s: lines still in flight at shutdown are read again at the next start: %w", r.set.ID, ctx.Err())
		}
		err = errors.Join(err, r.writeCheckpoint())
		for _, f := range r.files {
			f.f.Close()
		}
	})
	return err
}

func (r *receiver) run() {
	defer close(r.done)
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	lastCheckpoint := r.now()
	for {
		r.poll()
		if r.now().Sub(lastCheckpoint) >= r.cfg.CheckpointInterval {
			if err := r.writeCheckpoint(); err != nil {
				r.warn.Warn(r.set.Logger, "checkpoint not written", "error", err)
			}
			lastCheckpoint = r.now()
		}
		select {
		case <-r.stop:
			return
		case <-poll.C:
		}
	}
}

func (r *receiver) pollMu() *sync.Mutex { return &r.filesMu }

// matches is every path the globs match now.
func (r *receiver) matches() []string {
	var out []string
	for _, g := range r.cfg.Include {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			excluded := false
			for _, x := range r.cfg.Exclude {
				if ok, _ := filepath.Match(x, p); ok {
					excluded = true
				}
			}
			if !excluded {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func inode(fi os.FileInfo) (uint64, uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// poll finds the files, follows renames and truncation, reads what is new, and lets go of
// files that are gone and fully acknowledged.
func (r *receiver) poll() {
	r.filesMu.Lock()
	defer r.filesMu.Unlock()
	for _, f := range r.files {
		f.seen = false
	}
	for _, path := range r.matches() {
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dev, ino := inode(fi)
		f := r.byInode(dev, ino)
		if f == nil {
			f = r.open(path, fi, false)
			if f == nil {
				continue
			}
		}
		f.seen = true
		f.path = path // a renamed file keeps its reader
	}
	if r.first {
		r.findRotated()
	}
	r.first = false
	for key, f := range r.files {
		select {
		case <-r.stop:
			return
		default:
		}
		r.readFile(f)
		if _, waiting := f.joiner.Since(); waiting && !f.seen && r.readToEnd(f) {
			r.flushJoined(f)
		}
		if !f.seen && r.idle(f) {
			// Rotated away or deleted, read to its end, and every line acknowledged.
			f.f.Close()
			delete(r.files, key)
		}
	}
}

func (r *receiver) byInode(dev, ino uint64) *file { return r.files[[2]uint64{dev, ino}] }

// findRotated looks, at the first poll, for the files of the checkpoint the globs match no
// more: rotated to a name out of them (app.log → app.log.1, 0.log → 0.log.20261203-100000)
// before all their lines were read and acknowledged. They are looked for by fingerprint next to
// the path they were last seen at, under a name that begins with it, and read to their end.
func (r *receiver) findRotated() {
	dirs := map[string][]string{} // directory → the names files were last seen by there
	for key, e := range r.checkpoint {
		if !r.claimed[key] && e.Path != "" {
			dir := filepath.Dir(e.Path)
			dirs[dir] = append(dirs[dir], filepath.Base(e.Path))
		}
	}
	for dir, names := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, de := range entries {
			if !de.Type().IsRegular() || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(de.Name(), n) }) {
				continue
			}
			path := filepath.Join(dir, de.Name())
			fi, err := os.Stat(path)
			if err != nil || r.byInode(inode(fi)) != nil {
				continue
			}
			if f := r.open(path, fi, true); f != nil {
				r.set.Logger.Info("reading the rest of a file rotated out of the globs", "path", path, "offset", f.readPos)
			}
		}
	}
}

// open starts following a file found at path, at its checkpointed offset if its fingerprint
// is known, else at start_at (first poll) or its beginning (a file that appeared later). With
// known set, a file whose fingerprint is not in the checkpoint, or that has nothing after its
// offset, is not followed.
func (r *receiver) open(path string, fi os.FileInfo, known bool) *file {
	fd, err := os.Open(path)
	if err != nil {
		r.warn.Warn(r.set.Logger, "cannot open a file", "path", path, "error", err)
		return nil
	}
	fp := make([]byte, r.cfg.FingerprintBytes)
	n, _ := io.ReadFull(fd, fp)
	fp = fp[:n]
	if n == 0 {
		fd.Close()
		return nil // nothing to know it by yet: next poll
	}
	off, found := r.lookup(fp)
	if known && (!found || off >= fi.Size()) {
		fd.Close()
		return nil
	}
	dev, ino := inode(fi)
	f := &file{path: path, f: fd, dev: dev, ino: ino, fp: fp, joiner: logparse.NewJoiner(r.cfg.MaxLineBytes)}
	if p, ok := logparse.PodFromPath(path); ok {
		f.pod = &p
	}
	if found {
		f.readPos = off
	} else if r.first && r.cfg.StartAt == "end" {
		f.readPos = fi.Size()
	}
	f.commit = f.readPos
	r.files[[2]uint64{dev, ino}] = f
	r.set.Logger.Debug("following a file", "path", path, "offset", f.readPos)
	return f
}

// lookup finds a checkpointed offset for a fingerprint: the same bytes, or a shorter
// fingerprint taken when the file was smaller.
func (r *receiver) lookup(fp []byte) (int64, bool) {
	h := hex.EncodeToString(fp)
	if e, ok := r.checkpoint[h]; ok {
		r.claimed[h] = true
		return e.Offset, true
	}
	for k, e := range r.checkpoint {
		if len(k) < len(h) && h[:len(k)] == k && e.Offset <= int64(len(k)/2) {
			r.claimed[k] = true
			return e.Offset, true
		}
	}
	return 0, false
}

// idle reports whether a file has nothing in flight and nothing unread.
func (r *receiver) idle(f *file) bool {
	f.mu.Lock()
	n := len(f.spans)
	f.mu.Unlock()
	return n == 0 && r.readToEnd(f)
}

// readToEnd reports whether a file has nothing unread.
func (r *receiver) readToEnd(f *file) bool {
	fi, err := f.f.Stat()
	return err != nil || fi.Size() <= f.readPos
}

// readFile reads what is new in f, cut into lines and batches.
func (r *receiver) readFile(f *file) {
	fi, err := f.f.Stat()
	if err != nil {
		return
	}
	if fi.Size() < f.readPos {
		// copytruncate: the file was emptied and written again. Start over; lines in flight
		// of the old content are acknowledged into the old generation.
		r.truncated.WithLabelValues().Inc()
		f.mu.Lock()
		f.gen++
		f.readPos, f.commit, f.partial = 0, 0, nil
		f.spans = nil
		f.mu.Unlock()
		f.joiner.Restore(nil)
	}
	if fi.Size() == f.readPos && len(f.partial) > 0 && r.lineStart != nil && !f.heldSince.IsZero() &&
		r.now().Sub(f.heldSince) >= r.cfg.Multiline.FlushAfter {
		// The last multiline entry: nothing has followed it for flush_after.
		entry := bytes.TrimRight(f.partial, "\r\n")
		start := f.readPos - int64(len(f.partial))
		f.partial, f.heldSince = nil, time.Time{}
		if !r.send(f, func() plog.Logs { return r.toLogs(f, [][]byte{entry}, nil, start) }, f.readPos) {
			return
		}
	}
	for fi.Size() > f.readPos {
		want := min(fi.Size()-f.readPos, int64(r.cfg.MaxReadBytes))
		// Each read gets a buffer of its own, the partial line before it copied in front; it is
		// never written again once its lines are cut, so the records' bodies share its bytes
		// (toLogs).
		buf := make([]byte, len(f.partial)+int(want))
		copy(buf, f.partial)
		n, err := f.f.ReadAt(buf[len(f.partial):], f.readPos)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				r.warn.Warn(r.set.Logger, "cannot read a file", "path", f.path, "error", err)
			}
			return
		}
		start := f.readPos - int64(len(f.partial))
		data := buf[:len(f.partial)+n]
		f.partial = nil
		var lines [][]byte
		var starts []int
		var pos int
		if r.utf16 != nil {
			lines, pos = r.split16(data)
		} else {
			lines, starts, pos = r.split(f, data)
		}
		if r.lineStart != nil {
			lines, pos = r.group(f, lines, starts, pos)
			starts = nil
		}
		if !f.skipping {
			f.partial = slices.Clone(data[pos:])
		}
		f.readPos += int64(n)
		if len(lines) > 0 {
			if !r.send(f, func() plog.Logs { return r.toLogs(f, lines, starts, start) }, start+int64(pos)) {
				return // stopping
			}
		}
		clear(lines)
		r.lineBuf, r.startBuf = lines[:0], starts[:0]
		if int64(n) < want {
			return
		}
	}
}

// split cuts data into lines; it returns them and how many bytes of data they (and any line
// skipped) took. A line over max_line_bytes is cut there and the rest dropped up to its newline.
func (r *receiver) split(f *file, data []byte) ([][]byte, []int, int) {
	max := r.cfg.MaxLineBytes
	lines, starts := r.lineBuf[:0], r.startBuf[:0] // the poller's own, reused (readFile)
	pos := 0
	for pos < len(data) {
		i := bytes.IndexByte(data[pos:], '\n')
		if f.skipping {
			if i < 0 {
				return lines, starts, len(data)
			}
			pos += i + 1
			f.skipping = false
			continue
		}
		if i < 0 {
			if len(data)-pos > max {
				lines = append(lines, data[pos:pos+max])
				starts = append(starts, pos)
				r.dropped.WithLabelValues("too_long").Inc()
				f.skipping = true
				return lines, starts, len(data)
			}
			break
		}
		line := data[pos : pos+i]
		if len(line) > max {
			line = line[:max]
			r.dropped.WithLabelValues("too_long").Inc()
		}
		lines = append(lines, bytes.TrimSuffix(line, []byte("\r")))
		starts = append(starts, pos)
		pos += i + 1
	}
	return lines, starts, pos
}

// group joins lines into multiline entries: one starts at each line matching
// multiline.line_start_pattern. The last entry may go on in what is not written yet: its lines
// are held back (pos moves to its start, so they are read again with what follows) unless they
// are over max_line_bytes already.
func (r *receiver) group(f *file, lines [][]byte, starts []int, pos int) ([][]byte, int) {
	if r.lineStart == nil || len(lines) == 0 || f.skipping {
		return lines, pos
	}
	last := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if r.lineStart.Match(lines[i]) {
			last = i
			break
		}
	}
	hold := max(last, 0)
	if pos-starts[hold] > r.cfg.MaxLineBytes {
		hold = len(lines) // too much to hold: what is there goes as it is
	}
	var out [][]byte
	for i := 0; i < hold; i++ {
		if i == 0 || r.lineStart.Match(lines[i]) {
			out = append(out, slices.Clone(lines[i]))
			continue
		}
		cur := &out[len(out)-1]
		*cur = append(append(*cur, '\n'), lines[i]...)
	}
	if hold < len(lines) {
		if f.heldSince.IsZero() {
			f.heldSince = r.now()
		}
		return out, starts[hold]
	}
	f.heldSince = time.Time{}
	return out, pos
}

// send hands on the records build makes of the lines up to end, retrying while the pipeline
// asks to; it reports false when the receiver is stopping and the lines were not taken. Their
// acknowledgement commits end, or the start of the earliest container line the joiner still
// holds for its rest if that is before: a restart reads that line again rather than lose it.
func (r *receiver) send(f *file, build func() plog.Logs, end int64) bool {
	saved := f.joiner.Save()
	ld := build()
	if off, ok := f.joiner.Since(); ok && off < end {
		end = off
	}
	f.mu.Lock()
	gen := f.gen
	id := f.nextSpan
	f.nextSpan++
	f.spans = append(f.spans, span{id: id, end: end, gen: gen})
	f.mu.Unlock()
	r.pending.Add(1)
	if ld.LogRecordCount() == 0 {
		// Only partial or malformed lines: nothing to hand on, and nothing to wait for.
		r.acked(f, gen, id, nil)
		return true
	}
	backoff := 100 * time.Millisecond
	for {
		var once sync.Once
		h := ack.NewFunc(func(err error) {
			once.Do(func() { r.acked(f, gen, id, err) })
		})
		b := batch.FromLogs(ld)
		b.SetAcks(h.Set())
		err := r.next.Consume(context.Background(), b)
		if err == nil || consumererror.IsFinal(err) {
			h.Release(err)
			n := ld.LogRecordCount()
			r.lines.WithLabelValues().Add(float64(n))
			return true
		}
		// Not taken: the handle is left unreleased (it never completes) and the lines go again.
		select {
		case <-r.stop:
			f.mu.Lock()
			for i, sp := range f.spans {
				if sp.id == id {
					f.spans = f.spans[:i]
					break
				}
			}
			f.mu.Unlock()
			r.pending.Done()
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		f.joiner.Restore(saved) // the same lines go into the joiner again
		ld = build()
	}
}

// acked marks a span done and advances the file's committed offset over the done prefix.
func (r *receiver) acked(f *file, gen int, id uint64, err error) {
	defer r.pending.Done()
	if err != nil {
		r.dropped.WithLabelValues("refused").Inc()
		r.warn.Warn(r.set.Logger, "lines refused for good by the pipeline; not read again", "path", f.path, "error", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen {
		return // the file was truncated since
	}
	for i := range f.spans {
		if f.spans[i].id == id {
			f.spans[i].done = true
			break
		}
	}
	for len(f.spans) > 0 && f.spans[0].done {
		f.commit = f.spans[0].end
		f.spans = f.spans[1:]
	}
}

// writeCheckpoint writes every file's committed offset: a temporary file, fsynced, renamed.
func (r *receiver) writeCheckpoint() error {
	var cf checkpointFile
	for _, f := range r.files {
		key := hex.EncodeToString(f.fp)
		f.mu.Lock()
		off := f.commit
		f.mu.Unlock()
		cf.Files = append(cf.Files, checkpointEntry{key, off, f.path})
	}
	slices.SortFunc(cf.Files, func(a, b checkpointEntry) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	tmp := r.checkpointPath() + ".tmp"
	fd, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fd.Write(b); err != nil {
		fd.Close()
		return err
	}
	if err := fd.Sync(); err != nil {
		fd.Close()
		return err
	}
	if err := fd.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, r.checkpointPath())
}

// toLogs makes the lines of one file into log records, decoding the container formats. Line i
// starts at base+starts[i] in the file (at base, if starts is shorter).
func (r *receiver) toLogs(f *file, lines [][]byte, starts []int, base int64) plog.Logs {
	ld, recs := newLogs(f)
	recs.EnsureCapacity(len(lines))
	now := pcommon.NewTimestampFromTime(r.now())
	name := filepath.Base(f.path)
	if f.format == "" {
		f.format = r.cfg.Format
		if f.format == FormatAuto {
			f.format = detect(lines[0])
		}
	}
	for i, line := range lines {
		// The line's bytes are never written again (readFile), so the body may share them.
		body, ts, stream := unsafe.String(unsafe.SliceData(line), len(line)), time.Time{}, ""
		switch f.format {
		case FormatCRI, FormatDocker:
			var l logparse.ContainerLine
			var err error
			if f.format == FormatCRI {
				l, err = logparse.ParseCRI(line)
			} else {
				l, err = logparse.ParseDocker(line)
			}
			if err != nil {
				r.dropped.WithLabelValues("malformed").Inc()
				r.warn.Warn(r.set.Logger, "a line not in the file's format was dropped", "path", f.path, "format", f.format, "error", err)
				continue
			}
			off := base
			if i < len(starts) {
				off += int64(starts[i])
			}
			msg, at, _, done := f.joiner.Add(l, off)
			if !done {
				continue
			}
			body, ts, stream = msg, at, l.Stream
		}
		r.appendRecord(recs, f, body, ts, stream, now, name)
	}
	return ld
}

func (r *receiver) appendRecord(recs plog.LogRecordSlice, f *file, body string, ts time.Time, stream string, now pcommon.Timestamp, name string) {
	if d := r.decoder(); d != nil {
		if b, err := d.String(body); err == nil {
			body = b
		}
	}
	body, _ = logparse.ValidUTF8(body)
	lr := recs.AppendEmpty()
	lr.Body().SetStr(body)
	lr.SetObservedTimestamp(now)
	if !ts.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	}
	a := lr.Attributes()
	a.EnsureCapacity(3)
	if r.parse != nil {
		r.applyParser(lr, body)
	}
	a.PutStr("log.file.path", f.path)
	a.PutStr("log.file.name", name)
	if stream != "" {
		a.PutStr("log.iostream", stream)
	}
}

// newLogs is a batch for f's records, with its resource.
func newLogs(f *file) (plog.Logs, plog.LogRecordSlice) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if f.pod != nil {
		for k, v := range f.pod.Attributes() {
			rl.Resource().Attributes().PutStr(k, v)
		}
	}
	return ld, rl.ScopeLogs().AppendEmpty().LogRecords()
}

// flushJoined hands on, as they are, the container lines still waiting for their rest in a
// file that has ended: rotated away or deleted, and read to its end.
func (r *receiver) flushJoined(f *file) {
	r.send(f, func() plog.Logs {
		ld, recs := newLogs(f)
		now := pcommon.NewTimestampFromTime(r.now())
		for _, l := range f.joiner.Flush() {
			r.appendRecord(recs, f, l.Message, l.Time, l.Stream, now, filepath.Base(f.path))
		}
		return ld
	}, f.readPos)
}

// detect tells a file's format by its first line.
func detect(line []byte) string {
	if _, err := logparse.ParseCRI(line); err == nil {
		return FormatCRI
	}
	if _, err := logparse.ParseDocker(line); err == nil {
		return FormatDocker
	}
	return FormatNone
}

// applyParser parses the line into the record's attributes, and takes its time, severity and
// body from the fields the config names. A line the parser cannot read is kept as it is.
func (r *receiver) applyParser(lr plog.LogRecord, line string) {
	fields, err := r.parse(line)
	if err != nil {
		r.unparsed.WithLabelValues().Inc()
		return
	}
	p := r.cfg.Parser
	if v, ok := fields[p.Timestamp.Field]; ok && p.Timestamp.Field != "" {
		if t, err := logparse.ParseTime(v, p.Timestamp.Layout); err == nil {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
		}
	}
	if v, ok := fields[p.Severity.Field]; ok && p.Severity.Field != "" {
		text := fmt.Sprint(v)
		lr.SetSeverityText(text)
		lr.SetSeverityNumber(plog.SeverityNumber(logparse.Severity(text)))
	}
	if v, ok := fields[p.Body.Field]; ok && p.Body.Field != "" {
		lr.Body().SetStr(fmt.Sprint(v))
		delete(fields, p.Body.Field)
	}
	a := lr.Attributes()
	for k, v := range fields {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				a.PutInt(k, i)
			} else if f, err := n.Float64(); err == nil {
				a.PutDouble(k, f)
			}
			continue
		}
		_ = a.PutEmpty(k).FromRaw(normalize(v))
	}
}

// normalize turns json.Number inside maps and lists into numbers pcommon takes.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

func (r *receiver) decoder() *encoding.Decoder {
	if r.utf16 != nil {
		return r.utf16
	}
	return r.decode
}

// split16 cuts UTF-16 data into lines: the newline is the code unit 0x000A at an even offset.
// A line over max_line_bytes without its newline is cut into pieces of that size (counted).
func (r *receiver) split16(data []byte) ([][]byte, int) {
	nl := []byte{'\n', 0}
	if r.bigEndian {
		nl = []byte{0, '\n'}
	}
	max := r.cfg.MaxLineBytes &^ 1
	var lines [][]byte
	pos := 0
	if len(data) >= 2 && (data[0] == 0xff && data[1] == 0xfe || data[0] == 0xfe && data[1] == 0xff) && pos == 0 {
		pos = 2 // a byte order mark
	}
	for pos+1 < len(data) {
		end := -1
		for i := pos; i+1 < len(data) && i-pos <= max; i += 2 {
			if data[i] == nl[0] && data[i+1] == nl[1] {
				end = i
				break
			}
		}
		if end < 0 {
			if len(data)-pos > max {
				lines = append(lines, data[pos:pos+max])
				r.dropped.WithLabelValues("too_long").Inc()
				pos += max
				continue
			}
			break
		}
		line := data[pos:end]
		if n := len(line); n >= 2 && (r.bigEndian && line[n-2] == 0 && line[n-1] == '\r' || !r.bigEndian && line[n-2] == '\r' && line[n-1] == 0) {
			line = line[:n-2]
		}
		lines = append(lines, line)
		pos = end + 2
	}
	return lines, pos
}
