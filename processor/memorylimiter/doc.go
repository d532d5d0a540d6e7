// Package memorylimiter is the "memory_limiter" processor: it samples the heap on an interval and,
// above a soft limit, refuses batches with a retryable error so that receivers push back on their
// clients; above the hard limit it also forces a garbage collection.
package memorylimiter
