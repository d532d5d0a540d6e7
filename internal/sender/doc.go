// Package sender is the plumbing every exporter sends through: a bounded queue drained by a pool
// of consumers, retries with exponential backoff that honour server-requested delays, a timeout
// per attempt, and the Sent/Failed/Dropped accounting that only an exporter can do.
package sender
