package consumererror

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	base := errors.New("boom")
	f := func(err error, permanent, retryable bool, after time.Duration) {
		t.Helper()
		if got := IsPermanent(err); got != permanent {
			t.Errorf("IsPermanent(%v) = %v, want %v", err, got, permanent)
		}
		gotAfter, gotRetry := RetryAfter(err)
		if gotRetry != retryable || gotAfter != after {
			t.Errorf("RetryAfter(%v) = %v, %v; want %v, %v", err, gotAfter, gotRetry, after, retryable)
		}
	}
	f(base, false, false, 0)
	f(NewPermanent(base), true, false, 0)
	f(fmt.Errorf("exporter otlp: %w", NewPermanent(base)), true, false, 0)
	f(NewRetryable(base, 0), false, true, 0)
	f(fmt.Errorf("wrapped: %w", NewRetryable(base, 3*time.Second)), false, true, 3*time.Second)
	bp := fmt.Errorf("exporter: %w", NewBackpressure(base, 2*time.Second))
	f(bp, false, true, 2*time.Second)
	if !IsBackpressure(bp) || IsBackpressure(NewRetryable(base, 0)) || IsBackpressure(base) {
		t.Error("IsBackpressure misclassifies")
	}
	if NewPermanent(nil) != nil || NewRetryable(nil, 1) != nil {
		t.Fatal("nil must stay nil")
	}
	if !errors.Is(NewPermanent(base), base) {
		t.Fatal("permanent must unwrap to its cause")
	}
}

func TestPartial(t *testing.T) {
	err := fmt.Errorf("sink: %w", &Partial{Rejected: 3, Message: "bad ids"})
	p, ok := AsPartial(err)
	if !ok || p.Rejected != 3 || p.Message != "bad ids" {
		t.Fatalf("AsPartial = %+v, %v", p, ok)
	}
	if _, ok := AsPartial(errors.New("x")); ok {
		t.Fatal("plain error is not partial")
	}
}
