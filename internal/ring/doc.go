// Package ring is a bounded, lock-free MPMC queue (Vyukov's array of sequence-numbered cells).
// Receivers hand batches to pipeline workers through it so the hot path takes no mutex or channel lock;
// goroutines park on a channel only when the ring is full or empty, and only then does the other side signal.
package ring
