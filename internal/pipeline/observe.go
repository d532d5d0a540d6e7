package pipeline

import (
	"context"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// countIn counts items entering a component.
type countIn struct {
	next component.Consumer
	c    component.Counters
}

func (o countIn) Consume(ctx context.Context, b *batch.Batch) error {
	o.c.Add(component.Received, b.Signal(), b.Items())
	return o.next.Consume(ctx, b)
}

// countOut counts what happened to the items a component passed on.
type countOut struct {
	next component.Consumer
	c    component.Counters
}

func (o countOut) Consume(ctx context.Context, b *batch.Batch) error {
	sig, n := b.Signal(), b.Items() // read before handing over ownership
	err := o.next.Consume(ctx, b)
	recordOutcome(o.c, sig, n, err)
	return err
}

func recordOutcome(c component.Counters, sig batch.Signal, n int, err error) {
	switch {
	case err == nil:
		c.Add(component.Sent, sig, n)
	case consumererror.IsPermanent(err):
		c.Add(component.Dropped, sig, n)
	default:
		if p, ok := consumererror.AsPartial(err); ok {
			c.Add(component.Sent, sig, n-p.Rejected)
			c.Add(component.Dropped, sig, p.Rejected)
			return
		}
		c.Add(component.Failed, sig, n)
	}
}
