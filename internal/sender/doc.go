// Package sender is the plumbing every exporter sends through: a sending queue (memory, or a
// write-ahead log that survives restarts) drained by a pool of consumers that can merge batches,
// retries with exponential backoff that honour server-requested delays, a timeout per attempt,
// backpressure and health, and the Sent/Failed/Dropped accounting that only an exporter can do.
package sender
