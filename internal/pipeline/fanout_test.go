package pipeline

import (
	"context"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/testdata"
)

// mutator renames every span and passes the batch on.
func mutator(next component.Consumer) component.Consumer {
	return component.ConsumerFunc(func(ctx context.Context, b *batch.Batch) error {
		td, err := b.MutableTraces()
		if err != nil {
			return err
		}
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < spans.Len(); i++ {
			spans.At(i).SetName("mutated")
		}
		return next.Consume(ctx, b)
	})
}

func TestFanoutIsolatesMutatingBranches(t *testing.T) {
	for _, mutatingFirst := range []bool{true, false} {
		var mut, ro componenttest.Sink
		bs := []branch{{c: mutator(&mut), mutates: true}, {c: &ro}}
		if !mutatingFirst {
			bs[0], bs[1] = bs[1], bs[0]
		}
		in := batch.FromTraces(testdata.Traces(1, 3, 0)) // decoded, so branches could share pdata
		if err := newFanout(bs).Consume(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		td, _ := ro.Batches()[0].Traces()
		if name := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name(); name == "mutated" {
			t.Errorf("mutatingFirst=%v: the read-only branch saw the other branch's change", mutatingFirst)
		}
		md, _ := mut.Batches()[0].Traces()
		if md.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name() != "mutated" {
			t.Error("mutating branch lost its change")
		}
	}
}

func TestFanoutLastMutatingTakesOriginal(t *testing.T) {
	var a, b componenttest.Sink
	in := batch.FromTraces(testdata.Traces(1, 2, 0))
	f := newFanout([]branch{{c: mutator(&a), mutates: true}, {c: mutator(&b), mutates: true}})
	if err := f.Consume(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if b.Batches()[0] != in {
		t.Error("with no read-only branch the last mutating branch should get the original, saving a copy")
	}
	if a.Batches()[0] == in {
		t.Error("the first mutating branch must get a clone")
	}
}
