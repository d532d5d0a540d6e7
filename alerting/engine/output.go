package engine

import (
	"context"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/promconv"
	"github.com/vigilhq/vigil/internal/ratelog"
)

// OutputFunc takes what one rule group's evaluation wrote (recording rules' results, ALERTS,
// ALERTS_FOR_STATE) as one remote-write batch, to send it down the metrics pipelines of an
// `alerting` receiver: what Prometheus writes to its TSDB and remote-writes, Vigil exports.
type OutputFunc func(ctx context.Context, b *batch.Batch) error

// outputs is the set of receivers rule results go to.
type outputs struct {
	mu   sync.RWMutex
	next map[int]OutputFunc
	seq  int
	log  ratelog.Limiter
}

// AddOutput sends every evaluation's results to fn from now on; the returned func stops it.
func (e *Engine) AddOutput(fn OutputFunc) (remove func()) {
	o := &e.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.next == nil {
		o.next = map[int]OutputFunc{}
	}
	o.seq++
	id := o.seq
	o.next[id] = fn
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.next, id)
	}
}

// send hands the body to every output. A refusal is logged (at most once a minute): the
// results are in the store, and the next evaluation writes new ones.
func (e *Engine) send(ctx context.Context, body promconv.Body) error {
	o := &e.out
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, fn := range o.next {
		b := batch.FromPromRWTrusted(body.Bytes, body.Items())
		if err := fn(ctx, b); err != nil {
			o.log.Warn(e.logger, "rule results refused by the alerting receiver's pipeline", "error", err)
		}
	}
	return nil
}

// ruleStore is what the rule manager writes to: the store, and a copy to the outputs.
type ruleStore struct{ e *Engine }

func (r ruleStore) AppenderV2(ctx context.Context) storage.AppenderV2 {
	a := &teeAppender{db: r.e.store.AppenderV2(ctx)}
	r.e.out.mu.RLock()
	n := len(r.e.out.next)
	r.e.out.mu.RUnlock()
	if n > 0 {
		a.rw = promconv.NewAppender(ctx, r.e.send)
	}
	return a
}

// teeAppender appends to the store and, when there are outputs, encodes the same samples.
type teeAppender struct {
	db storage.AppenderV2
	rw *promconv.Appender
}

func (a *teeAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	r, err := a.db.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil || a.rw == nil {
		return r, err
	}
	// A result the encoder refuses (an invalid label name) is kept in the store only.
	_, _ = a.rw.Append(0, ls, st, t, v, h, fh, storage.AppendV2Options{})
	return r, nil
}

func (a *teeAppender) Commit() error {
	if err := a.db.Commit(); err != nil {
		if a.rw != nil {
			_ = a.rw.Rollback()
		}
		return err
	}
	if a.rw != nil {
		return a.rw.Commit() // calls send, which never fails: the store has the results
	}
	return nil
}

func (a *teeAppender) Rollback() error {
	if a.rw != nil {
		_ = a.rw.Rollback()
	}
	return a.db.Rollback()
}
