package consumererror

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Permanent marks an error that retrying cannot fix: bad data, rejected credentials, a request
// the peer will never accept. The data is dropped and counted.
type Permanent struct{ Err error }

func (e *Permanent) Error() string { return "permanent error: " + e.Err.Error() }
func (e *Permanent) Unwrap() error { return e.Err }

// NewPermanent wraps err as permanent; nil stays nil.
func NewPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &Permanent{Err: err}
}

// IsPermanent reports whether err, or anything it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *Permanent
	return errors.As(err, &p)
}

// Retryable marks an error worth retrying, optionally after a delay the peer asked for
// (HTTP Retry-After, gRPC RetryInfo) or that Vigil itself suggests to its clients.
type Retryable struct {
	Err   error
	After time.Duration
	// Backpressure says the refusal is because Vigil is full (a sending queue at capacity), not
	// because something failed: receivers answer gRPC RESOURCE_EXHAUSTED with RetryInfo and
	// HTTP 429 with Retry-After, which clients treat as "slow down".
	Backpressure bool
}

func (e *Retryable) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("retryable error (retry after %s): %v", e.After, e.Err)
	}
	return "retryable error: " + e.Err.Error()
}
func (e *Retryable) Unwrap() error { return e.Err }

// NewRetryable wraps err as retryable after the given delay (0: the caller's backoff decides).
func NewRetryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &Retryable{Err: err, After: after}
}

// NewBackpressure wraps err as a retryable refusal because Vigil is full; see Retryable.
func NewBackpressure(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &Retryable{Err: err, After: after, Backpressure: true}
}

// IsBackpressure reports whether err is a refusal because Vigil is full.
func IsBackpressure(err error) bool {
	var r *Retryable
	return errors.As(err, &r) && r.Backpressure
}

// RetryAfter returns the delay a retryable error asks for, and whether err is explicitly retryable.
func RetryAfter(err error) (time.Duration, bool) {
	var r *Retryable
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// Partial reports that a consumer accepted a batch except for Rejected items, which are dropped
// and must not be retried (OTLP partial success).
type Partial struct {
	Rejected int
	Message  string
}

func (e *Partial) Error() string {
	return fmt.Sprintf("partially rejected: %d items: %s", e.Rejected, e.Message)
}

// AsPartial returns the partial-success detail carried by err, if any.
func AsPartial(err error) (*Partial, bool) {
	var p *Partial
	if errors.As(err, &p) {
		return p, true
	}
	return nil, false
}

// IsFinal reports whether err settles the data's fate for good: a permanent refusal or a partial
// success. Any other error (nil aside) says the data may be sent again.
func IsFinal(err error) bool {
	if err == nil {
		return false
	}
	_, partial := AsPartial(err)
	return partial || IsPermanent(err)
}

// Combine joins the outcomes of several consumers of the same data (fan-out branches, the parts
// of a split batch, the sends that carried a client's request) into the one answer its sender
// should hear. nil errors are skipped; nil comes back when all are nil. When some outcome is
// retryable the answer is retryable: a plain errors.Join would let a permanent refusal (or a
// partial success) in one place win the classification, and the sender would drop data that
// another place refused only for now. The final refusals are then kept as text only.
func Combine(errs ...error) error {
	var retry, final []error
	for _, err := range errs {
		switch {
		case err == nil:
		case IsFinal(err):
			final = append(final, err)
		default:
			retry = append(retry, err)
		}
	}
	switch {
	case len(retry) == 0 && len(final) == 0:
		return nil
	case len(retry) == 0:
		if len(final) == 1 {
			return final[0]
		}
		return errors.Join(final...)
	case len(final) == 0:
		if len(retry) == 1 {
			return retry[0]
		}
		return errors.Join(retry...)
	}
	text := make([]string, len(final))
	for i, err := range final {
		text[i] = err.Error()
	}
	return fmt.Errorf("%w\n%s", errors.Join(retry...), strings.Join(text, "\n"))
}
