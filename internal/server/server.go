package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
)

// Reasons a listener turns a request away before its handler sees it, reported to OnReject.
const (
	ReasonUnauthenticated = "unauthenticated"
	// ReasonForbidden: authenticated, but the credential's grant does not hold the signal.
	ReasonForbidden = "forbidden"
	ReasonTooLarge  = "too_large"
	// ReasonInFlightLimit: the listener's budget of bytes in flight (max_in_flight_bytes) had no
	// room for the request, before or while its body was read and decompressed.
	ReasonInFlightLimit = "in_flight_limit"
)

// Option adjusts how NewServer and ServerOptions treat the requests they turn away.
type Option func(*options)

type options struct {
	onReject   func(reason string)
	writeError func(w http.ResponseWriter, r *http.Request, status int, msg string)
	logger     *slog.Logger
	budget     *Budget
}

// OnReject is called once for every request refused before reaching the handler (bad or missing
// credentials, a declared body over the limit, no room in the budget), so that the component can
// count it.
func OnReject(fn func(reason string)) Option { return func(o *options) { o.onReject = fn } }

// WriteError lets an HTTP component answer refused requests in its own wire format (OTLP wants a
// google.rpc.Status body, for instance). The default writes the message as plain text.
func WriteError(fn func(w http.ResponseWriter, r *http.Request, status int, msg string)) Option {
	return func(o *options) { o.writeError = fn }
}

// ErrorLog sends the http.Server's own messages (TLS handshake failures, broken connections) to l
// at debug level: they are mostly noise from scanners and health checks.
func ErrorLog(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBudget bounds the bytes in flight on the listener by b (see Budget); the receiver creates
// it from InFlightLimit, so that it can count against it while decompressing and report it.
func WithBudget(b *Budget) Option { return func(o *options) { o.budget = b } }

// decoderRoom is what a request may hold beside its bytes while it is decompressed: a zstd
// decoder's window of up to 8 MiB, with room to spare.
const decoderRoom = 16 << 20

// MinInFlight is the smallest budget in which a request of maxRequest bytes fits as sent,
// decompressed to as many, and copied out of the receive buffers for the pipeline: less would
// refuse it (retryably) for ever. The runtime's share (RuntimeShare) comes on top.
func MinInFlight(maxRequest int64) int64 { return LimitFor(3*maxRequest + decoderRoom) }

// validateInFlight checks max_in_flight_bytes against the largest request the listener takes.
func validateInFlight(v, maxRequest int64, limitKey string) error {
	switch {
	case v < 0:
		return fmt.Errorf("max_in_flight_bytes: must be >= 0 (0: a quarter of the memory available, at most 256 MiB), got %d", v)
	case v > 0 && v < MinInFlight(maxRequest):
		return fmt.Errorf("max_in_flight_bytes: must be at least %d (three times %s: as sent, decompressed and copied for the pipeline; plus 16 MiB for a decoder; plus a third of that for the Go runtime's overhead), so that the largest request fits, got %d",
			MinInFlight(maxRequest), limitKey, v)
	}
	return nil
}

func makeOptions(opts []Option) options {
	o := options{
		onReject: func(string) {},
		writeError: func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
			http.Error(w, msg, status)
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// validateEndpoint checks host:port without resolving anything; port 0 asks for any free port.
func validateEndpoint(ep string) error {
	if ep == "" {
		return errors.New("endpoint: required, as host:port (e.g. 127.0.0.1:4318)")
	}
	_, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("endpoint: must be host:port, got %q", ep)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("endpoint: port must be a number from 0 to 65535, got %q", ep)
	}
	return nil
}

// Addr returns an address a client can dial to reach l: the bound address (with the real port
// when the endpoint asked for port 0), with an unspecified host (0.0.0.0, ::) replaced by
// 127.0.0.1.
func Addr(l net.Listener) string {
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return l.Addr().String()
	}
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		// Listen uses "tcp", so a wildcard listener is dual-stack and IPv4 loopback reaches it.
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// Prefix puts path in front of every error joined in err, so that a component can report the
// errors of an embedded block with their full YAML path ("tls" + "cert_file: …" gives
// "tls.cert_file: …"). It returns nil for nil.
func Prefix(path string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		out := make([]error, 0, len(errs))
		for _, e := range errs {
			out = append(out, Prefix(path, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s.%w", path, err)
}
