package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/vigilhq/vigil/internal/consumererror"
)

// Runner runs an HTTP receiver's server: Start opens the listener (so that a taken port fails
// start-up) and serves in the background; Shutdown stops accepting and lets the requests in
// flight get their answer until ctx ends.
type Runner struct {
	mu      sync.Mutex
	started bool
	stopped bool
	srv     *http.Server
	addr    string
	serving sync.WaitGroup
}

// Start listens with h, serves srv in the background, and calls onFatal if serving fails.
func (r *Runner) Start(h *HTTP, newServer func() *http.Server, onFatal func(error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("already started")
	}
	l, err := h.Listen()
	if err != nil {
		return err
	}
	r.srv = newServer()
	r.started = true
	r.addr = Addr(l)
	r.serving.Add(1)
	go func(l net.Listener) {
		defer r.serving.Done()
		if err := r.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			onFatal(err)
		}
	}(l)
	return nil
}

// Shutdown stops the server; it reports whether this call stopped a running server.
func (r *Runner) Shutdown(ctx context.Context) (bool, error) {
	r.mu.Lock()
	first := r.started && !r.stopped
	r.stopped = true
	srv := r.srv
	r.mu.Unlock()
	if !first {
		return false, nil
	}
	var err error
	if err = srv.Shutdown(ctx); err != nil {
		srv.Close()
		err = fmt.Errorf("shutdown: %w", err)
	}
	r.serving.Wait()
	return true, err
}

// Addr is the listener's address ("" before Start).
func (r *Runner) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// AnswerConsumeError maps a pipeline's refusal onto what push clients (remote write, Loki)
// understand: they retry 5xx and 429 (after Retry-After) and drop on other 4xx. A partial
// refusal is a 400: retrying the whole would duplicate what was taken.
func AnswerConsumeError(w http.ResponseWriter, err error) {
	code := http.StatusServiceUnavailable
	switch {
	case consumererror.IsPermanent(err):
		code = http.StatusBadRequest
	case consumererror.IsBackpressure(err):
		code = http.StatusTooManyRequests
	}
	if _, ok := consumererror.AsPartial(err); ok {
		code = http.StatusBadRequest
	}
	if after, ok := consumererror.RetryAfter(err); ok && after > 0 && code != http.StatusBadRequest {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(after.Seconds())), 10))
	} else if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, err.Error(), code)
}
