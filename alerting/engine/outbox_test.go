package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
)

type fakeNotifier struct {
	mu      sync.Mutex
	verdict notify.NotifyVerdict
	calls   int
	groups  []string
}

func (f *fakeNotifier) Notify(ctx context.Context, _ ...*alert.Alert) notify.NotifyVerdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	gk, _ := notify.GroupKey(ctx)
	f.groups = append(f.groups, gk)
	return f.verdict
}

func (f *fakeNotifier) set(v notify.NotifyVerdict) {
	f.mu.Lock()
	f.verdict = v
	f.mu.Unlock()
}

func (f *fakeNotifier) SendResolved() bool { return true }

// TestOutbox: a notification stays on disk while it is to be retried and goes once delivered
// or refused for good; what is left is sent again by replay, with its group key.
func TestOutbox(t *testing.T) {
	o, err := newOutbox(t.TempDir(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeNotifier{verdict: notify.Retry(0, errors.New("503"), notify.ServerErrorReason)}
	in := notify.NewIntegration(fake, fake, "webhook", 0, "hook")
	wrapped := o.notifier("hook", in)
	ctx := notify.WithGroupKey(context.Background(), "{}:{alertname=\"A\"}")
	// A resolved alert: what only the outbox can deliver after a crash.
	a := alert.New(model.Alert{Labels: model.LabelSet{"alertname": "A"}, StartsAt: time.Now().Add(-time.Minute), EndsAt: time.Now().Add(-time.Second)}, time.Now(), false)

	if v := wrapped.Notify(ctx, a); v.Err() == nil || len(o.files()) != 1 {
		t.Fatalf("a retryable failure: %v, %d files, want an error and 1 file", v.Err(), len(o.files()))
	}
	fake.set(notify.Unrecoverable(errors.New("400"), notify.ClientErrorReason))
	if wrapped.Notify(ctx, a); len(o.files()) != 0 {
		t.Errorf("%d files after a refusal for good, want 0", len(o.files()))
	}
	fake.set(notify.Retry(0, errors.New("503"), notify.ServerErrorReason))
	wrapped.Notify(ctx, a)
	fake.set(notify.Success())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	o.replay(map[string]notify.Integration{integrationKey("hook", in): in}, stop, &wg)
	wg.Wait()
	close(stop)
	if len(o.files()) != 0 || testutil.ToFloat64(o.delivered) != 1 {
		t.Errorf("after replay: %d files, %v delivered; want 0 and 1", len(o.files()), testutil.ToFloat64(o.delivered))
	}
	if last := fake.groups[len(fake.groups)-1]; last != "{}:{alertname=\"A\"}" {
		t.Errorf("replayed with group key %q", last)
	}
	// An entry whose alerts all still fire is not replayed: the restored alerts page again.
	fake.set(notify.Retry(0, errors.New("503"), notify.ServerErrorReason))
	firing := alert.New(model.Alert{Labels: model.LabelSet{"alertname": "B"}, StartsAt: time.Now(), EndsAt: time.Now().Add(4 * time.Minute)}, time.Now(), false)
	wrapped.Notify(ctx, firing)
	calls := fake.calls
	o.replay(map[string]notify.Integration{integrationKey("hook", in): in}, make(chan struct{}), &wg)
	wg.Wait()
	if len(o.files()) != 0 || testutil.ToFloat64(o.superseded) != 1 || fake.calls != calls {
		t.Errorf("still firing: %d files, %v superseded, %d new calls; want 0, 1, 0", len(o.files()), testutil.ToFloat64(o.superseded), fake.calls-calls)
	}
	// An entry for an integration no longer configured is dropped.
	fake.set(notify.Retry(0, errors.New("503"), notify.ServerErrorReason))
	wrapped.Notify(ctx, a)
	o.replay(map[string]notify.Integration{}, make(chan struct{}), &wg)
	if len(o.files()) != 0 || testutil.ToFloat64(o.given) != 1 {
		t.Errorf("unknown integration: %d files, %v dropped; want 0 and 1", len(o.files()), testutil.ToFloat64(o.given))
	}
	// Every attempt counted per receiver by its result: four retryable failures at run
	// time, one refusal for good, one delivery by the replay.
	for result, want := range map[string]float64{"retried": 4, "dropped": 1, "sent": 1} {
		if got := testutil.ToFloat64(o.attempts.WithLabelValues("hook", "webhook", result)); got != want {
			t.Errorf("attempts{receiver_name=hook,integration=webhook,result=%s} = %v, want %v", result, got, want)
		}
	}
}
