package pipeline

import (
	"context"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// branch is one destination of a fan-out.
type branch struct {
	c       component.Consumer
	mutates bool
}

// fanout hands one batch to several consumers without letting them interfere:
//   - read-only branches share the original (Share marks decoded data read-only);
//   - each mutating branch gets its own Clone, except that when no branch is read-only the last
//     mutating branch may take the original, saving one copy.
//
// Errors from every branch are joined; a retryable error makes the sender retry every branch,
// which can duplicate data in branches that had succeeded (at-least-once).
type fanout struct {
	branches []branch
	readOnly int // number of read-only branches
}

func newFanout(bs []branch) component.Consumer {
	if len(bs) == 1 {
		return bs[0].c
	}
	f := &fanout{branches: bs}
	for _, b := range bs {
		if !b.mutates {
			f.readOnly++
		}
	}
	return f
}

func (f *fanout) Consume(ctx context.Context, b *batch.Batch) error {
	var errs []error
	lastMutating := -1
	if f.readOnly == 0 {
		lastMutating = len(f.branches) - 1
	}
	for i, br := range f.branches {
		var part *batch.Batch
		switch {
		case br.mutates && i == lastMutating:
			part = b
		case br.mutates:
			part = b.Clone()
		default:
			part = b.Share()
		}
		if err := br.c.Consume(ctx, part); err != nil {
			errs = append(errs, err)
		}
	}
	return consumererror.Combine(errs...)
}
