// Package consumererror classifies the errors a consumer returns: permanent (drop and count, never
// retry), retryable (with an optional delay the peer asked for) and partial (some items rejected).
// Receivers map these to protocol answers; exporters and senders decide on retries from them.
package consumererror
