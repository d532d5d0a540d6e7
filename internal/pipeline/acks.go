package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// acknowledge is a receiver's consumer for a signal whose pipelines carry acknowledgements. It
// gives each batch the completion handle of its request and answers the receiver only once
// every component that took the data is done with it in the sense of its acknowledgement mode
// (package ack), so that every receiver honours the modes without code of its own. A receiver
// that tracks its requests itself (one that cannot wait in a goroutine per request, like a file
// tailer) attaches its own handle before calling Consume; its batches pass through untouched.
type acknowledge struct {
	next component.Consumer
	obs  selftelemetry.AckObserver
}

func (a acknowledge) Consume(ctx context.Context, b *batch.Batch) error {
	if len(b.Acks()) > 0 {
		return a.next.Consume(ctx, b)
	}
	h := ack.New()
	b.SetAcks(h.Set())
	err := a.next.Consume(ctx, b)
	if err != nil && !consumererror.IsFinal(err) {
		// The client is told to send again. Whatever some branch took is still delivered (at
		// least once); the handle is left to be collected with the batches that carry it.
		return err
	}
	h.Release(err)
	if h.Done() { // nothing held on: the usual case without buffering processors
		a.obs.Waited(0)
		return h.Err()
	}
	start := time.Now()
	err = h.Wait(ctx)
	a.obs.Waited(time.Since(start))
	if errors.Is(err, ack.ErrGaveUp) {
		a.obs.GaveUp()
	}
	return err
}

// endToEnd is the hand-off to an exporter in mode end_to_end: the batch is marked so that the
// exporter holds its acknowledgements until the backend accepted the data.
type endToEnd struct{ next component.Consumer }

func (e endToEnd) Consume(ctx context.Context, b *batch.Batch) error {
	b.SetEndToEnd(true)
	return e.next.Consume(ctx, b)
}
