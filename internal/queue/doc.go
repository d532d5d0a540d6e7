// Package queue holds exporters' sending queues: a bounded memory queue, and a persistent one
// backed by a write-ahead log of CRC-checked segment files that survives crashes, replays on
// start and is truncated as the backend acknowledges. See docs/wal.md for the on-disk format.
package queue
