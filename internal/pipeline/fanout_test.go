package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
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

// TestFanoutJoinedErrorClassification checks that when branches disagree, the client is asked to
// retry whenever some branch did not take the batch: a permanent refusal or a partial success in
// another branch must not turn the answer into "do not retry", which would lose the data of the
// branch that failed retryably.
func TestFanoutJoinedErrorClassification(t *testing.T) {
	perm := consumererror.NewPermanent(errors.New("bad data"))
	partial := &consumererror.Partial{Rejected: 1, Message: "one bad span"}
	full := consumererror.NewBackpressure(errors.New("queue full"), 2*time.Second)
	plain := errors.New("connection reset")
	f := func(name string, errs []error, wantPermanent, wantPartial, wantRetry bool) {
		t.Helper()
		var bs []branch
		for _, err := range errs {
			bs = append(bs, branch{c: component.ConsumerFunc(func(context.Context, *batch.Batch) error { return err })})
		}
		err := newFanout(bs).Consume(context.Background(), batch.FromTraces(testdata.Traces(1, 1, 0)))
		_, isPartial := consumererror.AsPartial(err)
		_, isRetry := consumererror.RetryAfter(err)
		if consumererror.IsPermanent(err) != wantPermanent || isPartial != wantPartial || isRetry != wantRetry {
			t.Errorf("%s: %v: permanent=%v partial=%v retryable=%v; want %v %v %v", name, err,
				consumererror.IsPermanent(err), isPartial, isRetry, wantPermanent, wantPartial, wantRetry)
		}
		if err != nil {
			for _, e := range errs {
				if e != nil && !strings.Contains(err.Error(), e.Error()) {
					t.Errorf("%s: %q does not mention %q", name, err, e)
				}
			}
		}
	}
	f("all ok", []error{nil, nil}, false, false, false)
	f("one permanent", []error{nil, perm}, true, false, false)
	f("permanent and partial", []error{perm, partial}, true, true, false)
	f("permanent then full", []error{perm, full}, false, false, true)
	f("full then permanent", []error{full, perm}, false, false, true)
	f("partial then full", []error{partial, full}, false, false, true)
	f("permanent and unclassified", []error{perm, plain}, false, false, false)
	f("all full", []error{full, full}, false, false, true)
}
