package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Duration is a time.Duration written in JSON as Go's duration syntax ("1.5s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", s)
	}
	*d = Duration(v)
	return nil
}

// Mode is the fault plan, replaced as a whole by each POST /mode. The percentages are drawn
// once per request, in this order: reject, throttle, fail, hang; what is left is accepted.
type Mode struct {
	// RejectPercent of requests are refused for good: gRPC INVALID_ARGUMENT, HTTP 400.
	RejectPercent float64 `json:"reject_percent"`
	// ThrottlePercent are told to slow down: gRPC RESOURCE_EXHAUSTED with RetryInfo, HTTP 429
	// with Retry-After, asking for RetryAfter (default 1s).
	ThrottlePercent float64  `json:"throttle_percent"`
	RetryAfter      Duration `json:"retry_after"`
	// FailPercent fail retryably: gRPC UNAVAILABLE, HTTP 503.
	FailPercent float64 `json:"fail_percent"`
	// HangPercent are held for Hang (past the client's timeout), then answered UNAVAILABLE and
	// not recorded; with HangAccept they are recorded and answered OK instead, like a backend
	// that did the work but answered too late (the client's retry makes duplicates).
	HangPercent float64  `json:"hang_percent"`
	Hang        Duration `json:"hang"`
	HangAccept  bool     `json:"hang_accept"`
	// Delay holds every request this long before anything else happens: a slow backend.
	Delay Duration `json:"delay"`
	// Refuse closes the OTLP listeners (and every open connection) until a mode without it;
	// RefuseFor closes them for that long only. The control API stays up.
	Refuse    bool     `json:"refuse"`
	RefuseFor Duration `json:"refuse_for"`
}

func (m *Mode) validate() error {
	var errs []error
	total := 0.0
	for _, p := range []struct {
		name string
		v    float64
	}{{"reject_percent", m.RejectPercent}, {"throttle_percent", m.ThrottlePercent}, {"fail_percent", m.FailPercent}, {"hang_percent", m.HangPercent}} {
		if p.v < 0 || p.v > 100 {
			errs = append(errs, fmt.Errorf("%s: must be from 0 to 100, got %g", p.name, p.v))
		}
		total += p.v
	}
	if total > 100 {
		errs = append(errs, fmt.Errorf("the percentages add up to %g, more than 100", total))
	}
	if m.HangPercent > 0 && m.Hang <= 0 {
		errs = append(errs, errors.New("hang: must be > 0 when hang_percent is set"))
	}
	if m.Refuse && m.RefuseFor > 0 {
		errs = append(errs, errors.New("set refuse or refuse_for, not both"))
	}
	return errors.Join(errs...)
}

func (m *Mode) retryAfter() time.Duration {
	if m.RetryAfter > 0 {
		return time.Duration(m.RetryAfter)
	}
	return time.Second
}

// fault is what happens to one request.
type fault int

const (
	accept fault = iota
	reject
	throttle
	fail
	hang
)

var faultNames = [...]string{accept: "accepted", reject: "rejected", throttle: "throttled", fail: "unavailable", hang: "hung"}

func (f fault) String() string { return faultNames[f] }

// pick maps a uniform draw r in [0, 100) onto the mode's fault.
func (m *Mode) pick(r float64) fault {
	for _, c := range []struct {
		p float64
		f fault
	}{{m.RejectPercent, reject}, {m.ThrottlePercent, throttle}, {m.FailPercent, fail}, {m.HangPercent, hang}} {
		if r < c.p {
			return c.f
		}
		r -= c.p
	}
	return accept
}
