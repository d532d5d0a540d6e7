package queue

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

// Queue holds batches between an exporter's Consume and the consumers that send them.
//
// Put returning nil is the acknowledgement boundary: for a persistent queue the batch is in the
// WAL (fsynced, under fsync: always) and survives a crash of the process; for a memory queue it
// survives only as long as the process. Batches come out of Get in the order they went in.
type Queue interface {
	// Put adds b. When the queue is full, the WhenFull policy applies: Block waits for room until
	// ctx ends and then returns ErrFull; DropNewest returns ErrFull at once (b is refused, the
	// caller counts it); DropOldest makes room by discarding the oldest waiting batches (counted
	// through the OnDrop hook) and accepts b. After Close, Put returns ErrClosed. The queue owns
	// b only if Put returned nil.
	Put(ctx context.Context, b *batch.Batch) error
	// Get waits for the next batch. done must be called exactly once when the batch is finished
	// with: done(true) when delivered or given up on for good (a persistent queue then forgets it),
	// done(false) when delivery was cut short by shutdown (a persistent queue keeps it for the
	// next start; a memory queue loses it). While batches wait, Get returns them even if ctx has
	// ended, so a queue can be drained with a cancelled context. ok is false when ctx ended with
	// nothing waiting, or when the queue is closed and empty.
	Get(ctx context.Context) (b *batch.Batch, done func(delivered bool), ok bool)
	// Close stops Put; Get goes on returning what is left. A persistent queue syncs and closes its
	// files once every batch handed out by Get is done. Close is idempotent.
	Close() error
	// Stats is a snapshot for metrics and health.
	Stats() Stats
}

// Stats describes a queue's occupancy.
type Stats struct {
	Batches, Items int   // waiting (not yet handed out by Get) plus in flight (handed out, not done)
	Bytes          int64 // encoded bytes held (persistent: on disk, including not-yet-truncated records)
	Capacity       int   // in the unit of Sizer
	CapacityBytes  int64 // byte cap (persistent: max_size_mib), 0 = none
	Oldest         time.Time
	// Persistent queues only.
	Segments    int
	Corruptions int64 // records skipped as corrupt since start
}

// WhenFull is the policy for a full queue.
type WhenFull string

const (
	Block      WhenFull = "block"
	DropOldest WhenFull = "drop_oldest"
	DropNewest WhenFull = "drop_newest"
)

// Sizer is the unit queue_size counts in (the OpenTelemetry Collector's sending_queue.sizer).
type Sizer string

const (
	SizeRequests Sizer = "requests"
	SizeItems    Sizer = "items"
	SizeBytes    Sizer = "bytes"
)

// FsyncPolicy says when the WAL is flushed to stable storage.
type FsyncPolicy string

const (
	FsyncAlways   FsyncPolicy = "always"   // every Put is fsynced before it returns
	FsyncInterval FsyncPolicy = "interval" // a background fsync every fsync_interval
)

var (
	// ErrFull is returned by Put on a full queue (Block: after waiting until ctx ended).
	ErrFull = errors.New("sending queue is full")
	// ErrClosed is returned by Put once the queue is closed.
	ErrClosed = errors.New("sending queue is closed: the exporter is shutting down")
)

// Options are the settings every queue has.
type Options struct {
	Sizer    Sizer // unit of Capacity (default requests)
	Capacity int   // queue_size, in Sizer units; > 0
	WhenFull WhenFull
	// OnDrop is told of every batch DropOldest discards, so the exporter can count the items.
	OnDrop func(b *batch.Batch)
}

// WALOptions configure the persistent queue.
type WALOptions struct {
	Options
	Dir           string        // one directory per exporter; created 0700 if missing
	MaxBytes      int64         // max_size_mib in bytes: the cap on disk use; 0 = no cap beyond Capacity
	Fsync         FsyncPolicy   // default always
	FsyncInterval time.Duration // for FsyncInterval (default 1s)
	SegmentBytes  int64         // a segment is closed and a new one started past this size (default 64 MiB)
	Logger        *slog.Logger
}

// Report is what Check finds in a WAL directory (`vigil queue check DIR`).
type Report struct {
	Dir      string
	Segments int
	Records  int   // valid records found
	Pending  int   // records not yet acknowledged by a backend (would be replayed on start)
	Items    int   // items in pending records
	Bytes    int64 // bytes on disk
	Corrupt  int   // records skipped as corrupt or torn
	Oldest   time.Time
	Repaired bool     // --repair truncated a torn tail / rewrote corrupt records out
	Problems []string // human-readable findings, one per problem
}
