package batchprocessor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	componenttest.CheckProcessor(t, NewFactory(), nil)
	componenttest.CheckProcessor(t, NewFactory(), &Config{SendBatchSize: 10, SendBatchMaxSize: 20})
}

// encoded returns an encoded traces batch of resources×spans spans, seq from first.
func encoded(t testing.TB, resources, spans, first int) *batch.Batch {
	t.Helper()
	raw, err := batch.FromTraces(testdata.Traces(resources, spans, first)).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Traces, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decoded(resources, spans, first int) *batch.Batch {
	return batch.FromTraces(testdata.Traces(resources, spans, first))
}

// start builds and starts a traces processor that sends to sink.
func start(t *testing.T, cfg *Config, sink component.Consumer, set component.Settings) *processor {
	t.Helper()
	p, err := NewFactory().Create(set, cfg, batch.Traces, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	// Stops the loop even when the test fails early, so a synctest bubble can end cleanly.
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p.(*processor)
}

func settings() component.Settings {
	return component.NopSettings(component.KindProcessor, component.ID{Type: Type})
}

func consume(t *testing.T, p *processor, b *batch.Batch) {
	t.Helper()
	if err := p.Consume(context.Background(), b); err != nil {
		t.Fatalf("Consume: %v", err)
	}
}

func shutdown(t *testing.T, p *processor) {
	t.Helper()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// sizes lists the item counts of the batches that reached the sink.
func sizes(s *componenttest.Sink) []int {
	var out []int
	for _, b := range s.Batches() {
		out = append(out, b.Items())
	}
	return out
}

// seqs collects every span's seq attribute across the sink's batches, in arrival order.
func seqs(t *testing.T, s *componenttest.Sink) []int64 {
	t.Helper()
	var out []int64
	for _, b := range s.Batches() {
		out = append(out, batchSeqs(t, b)...)
	}
	return out
}

// batchSeqs is every span's seq attribute in b, in order.
func batchSeqs(t *testing.T, b *batch.Batch) []int64 {
	t.Helper()
	td, err := b.Traces()
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				v, _ := sp.Attributes().Get("seq")
				out = append(out, v.Int())
			}
		}
	}
	return out
}

func upTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func TestSizeTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, Timeout: time.Hour}, sink, settings())
		for i := range 3 {
			consume(t, p, encoded(t, 1, 3, i*3))
		}
		synctest.Wait()
		if sink.Items() != 0 {
			t.Fatalf("sent %v below the size", sizes(sink))
		}
		consume(t, p, encoded(t, 1, 3, 9)) // 12 ≥ 10: one batch of everything, no cap
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{12}) {
			t.Fatalf("sent %v, want [12]", got)
		}
		if got := seqs(t, sink); !slices.Equal(got, upTo(12)) {
			t.Errorf("seqs %v", got)
		}
		shutdown(t, p)
	})
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 100, Timeout: 200 * time.Millisecond}, sink, settings())
		consume(t, p, encoded(t, 1, 5, 0))
		time.Sleep(100 * time.Millisecond)
		consume(t, p, encoded(t, 1, 5, 5)) // does not move the deadline: it counts from the first item
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if sink.Items() != 0 {
			t.Fatalf("sent %v before the timeout", sizes(sink))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10}) {
			t.Fatalf("at the timeout sent %v, want [10]", got)
		}

		// An idle processor sends nothing; the next item starts a new wait.
		time.Sleep(time.Hour)
		consume(t, p, encoded(t, 1, 1, 10))
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10}) {
			t.Fatalf("sent %v early", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10, 1}) {
			t.Fatalf("sent %v, want [10 1]", got)
		}
		shutdown(t, p)
	})
}

// TestTimeoutAfterSizeSend checks that a size-triggered send resets the wait for what comes next.
func TestTimeoutAfterSizeSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, Timeout: 200 * time.Millisecond}, sink, settings())
		consume(t, p, encoded(t, 1, 5, 0))
		time.Sleep(150 * time.Millisecond)
		consume(t, p, encoded(t, 1, 5, 5)) // size reached: sent now
		consume(t, p, encoded(t, 1, 2, 10))
		time.Sleep(60 * time.Millisecond) // past the first item's deadline, not the new one's
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10}) {
			t.Fatalf("sent %v, want [10]", got)
		}
		time.Sleep(140 * time.Millisecond)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10, 2}) {
			t.Fatalf("sent %v, want [10 2]", got)
		}
		shutdown(t, p)
	})
}

func TestMaxSplit(t *testing.T) {
	f := func(cfg *Config, in []int, wantNow, wantAfterShutdown []int) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			sink := &componenttest.Sink{}
			p := start(t, cfg, sink, settings())
			first := 0
			for _, n := range in {
				consume(t, p, decoded(1, n, first))
				first += n
			}
			synctest.Wait()
			if got := sizes(sink); !slices.Equal(got, wantNow) {
				t.Errorf("%+v %v: sent %v, want %v", *cfg, in, got, wantNow)
			}
			shutdown(t, p)
			if got := sizes(sink); !slices.Equal(got, wantAfterShutdown) {
				t.Errorf("%+v %v: after shutdown sent %v, want %v", *cfg, in, got, wantAfterShutdown)
			}
			if got := seqs(t, sink); !slices.Equal(got, upTo(first)) {
				t.Errorf("%+v %v: seqs %v", *cfg, in, got)
			}
		})
	}
	hour := time.Hour
	// The remainder below send_batch_size waits for more, as in the Collector.
	f(&Config{SendBatchSize: 10, SendBatchMaxSize: 10, Timeout: hour}, []int{25}, []int{10, 10}, []int{10, 10, 5})
	// A remainder that reaches send_batch_size is sent.
	f(&Config{SendBatchSize: 5, SendBatchMaxSize: 8, Timeout: hour}, []int{21}, []int{8, 8, 5}, []int{8, 8, 5})
	// No cap: one batch, however big.
	f(&Config{SendBatchSize: 10, Timeout: hour}, []int{4, 30}, []int{34}, []int{34})
	// Timeout 0: every batch goes at once, split by the cap, nothing kept.
	f(&Config{SendBatchSize: 100, SendBatchMaxSize: 100, Timeout: 0}, []int{3, 250}, []int{3, 100, 100, 50}, []int{3, 100, 100, 50})
	// send_batch_size 0 behaves like timeout 0 (every batch reaches the trigger).
	f(&Config{SendBatchSize: 0, Timeout: hour}, []int{3, 4}, []int{3, 4}, []int{3, 4})
}

// TestRemainderKeepsItsDeadline checks that a kept remainder is sent when its first item's
// timeout expires, not a full timeout after the split.
func TestRemainderKeepsItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, SendBatchMaxSize: 10, Timeout: 200 * time.Millisecond}, sink, settings())
		consume(t, p, decoded(1, 4, 0))
		time.Sleep(150 * time.Millisecond)
		consume(t, p, decoded(1, 9, 4)) // 13: 10 sent, 3 kept
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10}) {
			t.Fatalf("sent %v, want [10]", got)
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if got := sizes(sink); !slices.Equal(got, []int{10, 3}) {
			t.Fatalf("sent %v, want [10 3] at the first item's deadline", got)
		}
		shutdown(t, p)
	})
}

func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 100, Timeout: time.Hour}, sink, settings())
		consume(t, p, encoded(t, 2, 3, 0))
		consume(t, p, decoded(1, 4, 6))
		shutdown(t, p)
		if got := seqs(t, sink); !slices.Equal(got, upTo(10)) {
			t.Fatalf("after shutdown the sink holds %v", got)
		}
		shutdown(t, p) // idempotent
		// After shutdown batches pass straight through instead of being held.
		consume(t, p, encoded(t, 1, 1, 10))
		if sink.Items() != 11 {
			t.Errorf("a batch consumed after shutdown did not pass through: %d items", sink.Items())
		}
	})
}

func TestShutdownWithoutStartDrains(t *testing.T) {
	sink := &componenttest.Sink{}
	p := newProcessor(settings(), &Config{SendBatchSize: 100, Timeout: time.Hour}, batch.Traces, sink)
	consume(t, p, encoded(t, 1, 3, 0))
	shutdown(t, p)
	if sink.Items() != 3 {
		t.Errorf("sink holds %d items, want 3", sink.Items())
	}
}

// TestEncodedStaysEncoded checks the relay path: encoded input reaches the sink encoded and never
// decoded, joined and split included.
func TestEncodedStaysEncoded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 20, SendBatchMaxSize: 30, Timeout: time.Hour}, sink, settings())
		for i := range 10 {
			consume(t, p, encoded(t, 2, 4, i*8)) // resources of 4 spans: splits fall on boundaries
		}
		shutdown(t, p)
		if sink.Items() != 80 {
			t.Fatalf("sink holds %d items, want 80", sink.Items())
		}
		for i, b := range sink.Batches() {
			if !b.IsEncoded() || b.IsDecoded() {
				t.Errorf("batch %d: IsEncoded=%v IsDecoded=%v", i, b.IsEncoded(), b.IsDecoded())
			}
			if b.Items() > 30 {
				t.Errorf("batch %d holds %d items, above the cap", i, b.Items())
			}
		}
		if got := seqs(t, sink); !slices.Equal(got, upTo(80)) {
			t.Errorf("seqs %v", got)
		}
	})
}

// TestMixedRepresentations checks that decoded batches do not force encoded ones to decode.
func TestMixedRepresentations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &componenttest.Sink{}
		p := start(t, &Config{SendBatchSize: 10, Timeout: time.Hour}, sink, settings())
		consume(t, p, encoded(t, 1, 3, 0))
		consume(t, p, decoded(1, 3, 3))
		consume(t, p, encoded(t, 1, 4, 6))
		synctest.Wait()
		bs := sink.Batches()
		if len(bs) != 2 {
			t.Fatalf("sent %v, want one encoded and one decoded batch", sizes(sink))
		}
		if !bs[0].IsEncoded() || bs[0].IsDecoded() || bs[0].Items() != 7 {
			t.Errorf("first batch: IsEncoded=%v IsDecoded=%v items=%d, want encoded 7", bs[0].IsEncoded(), bs[0].IsDecoded(), bs[0].Items())
		}
		if bs[1].IsEncoded() || bs[1].Items() != 3 {
			t.Errorf("second batch: IsEncoded=%v items=%d, want decoded 3", bs[1].IsEncoded(), bs[1].Items())
		}
		shutdown(t, p)
	})
}

// TestConcurrentConsume runs many workers against one instance; run with -race.
func TestConcurrentConsume(t *testing.T) {
	sink := &componenttest.Sink{}
	p := start(t, &Config{SendBatchSize: 50, SendBatchMaxSize: 64, Timeout: 5 * time.Millisecond}, sink, settings())
	const workers, perWorker, spans = 8, 100, 7
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				first := (w*perWorker + i) * spans
				var b *batch.Batch
				if i%2 == 0 {
					b = encoded(t, 1, spans, first)
				} else {
					b = decoded(1, spans, first)
				}
				if err := p.Consume(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	shutdown(t, p)
	const total = workers * perWorker * spans
	if sink.Items() != total {
		t.Fatalf("sink holds %d items, want %d", sink.Items(), total)
	}
	got := seqs(t, sink)
	slices.Sort(got)
	if !slices.Equal(got, upTo(total)) {
		t.Error("some items were lost or duplicated")
	}
	for _, n := range sizes(sink) {
		if n > 64 {
			t.Errorf("a batch of %d items passed the cap of 64", n)
		}
	}
}

// TestDownstreamErrors checks that refusals are logged, not returned, and logged at most once per
// interval.
func TestDownstreamErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		set := settings()
		set.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		sink := &componenttest.Sink{Err: errors.New("backend down")}
		p := start(t, &Config{SendBatchSize: 1, Timeout: time.Hour}, sink, set)
		for i := range 3 {
			if err := p.Consume(context.Background(), encoded(t, 1, 1, i)); err != nil {
				t.Fatalf("Consume returned the downstream error: %v", err)
			}
		}
		if n := strings.Count(logs.String(), "downstream refused"); n != 1 {
			t.Fatalf("logged %d times within the interval, want 1:\n%s", n, logs.String())
		}
		time.Sleep(errLogEvery)
		consume(t, p, encoded(t, 1, 1, 3))
		out := logs.String()
		if n := strings.Count(out, "downstream refused"); n != 2 {
			t.Fatalf("logged %d times, want 2:\n%s", n, out)
		}
		if !strings.Contains(out, "suppressed_since_last=2") || !strings.Contains(out, "backend down") {
			t.Errorf("log lacks the error or the suppressed count:\n%s", out)
		}
		shutdown(t, p)
	})
}

func TestWrongSignal(t *testing.T) {
	p := newProcessor(settings(), NewConfig(), batch.Logs, component.Discard)
	if err := p.Consume(context.Background(), encoded(t, 1, 1, 0)); err == nil {
		t.Error("a traces batch was accepted by a logs instance")
	}
	shutdown(t, p)
}

func TestCreateRejectsForeignConfig(t *testing.T) {
	if _, err := NewFactory().Create(settings(), &struct{}{}, batch.Traces, component.Discard); err == nil {
		t.Error("Create accepted a config of another type")
	}
}

// TestSizeTriggeredSendOutlivesTheCaller checks that a send tipped over by one client's request
// does not run under that client's context: the buffer holds other clients' data, already
// acknowledged, and a client that gives up (deadline, disconnect) must not cancel its delivery.
func TestSizeTriggeredSendOutlivesTheCaller(t *testing.T) {
	var sawCancelled bool
	next := component.ConsumerFunc(func(ctx context.Context, b *batch.Batch) error {
		sawCancelled = ctx.Err() != nil
		return ctx.Err()
	})
	p := start(t, &Config{SendBatchSize: 4, Timeout: time.Hour}, next, settings())
	consume(t, p, encoded(t, 1, 2, 0)) // another client's data: buffered and acknowledged
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client that tips the size over has already given up
	if err := p.Consume(ctx, encoded(t, 1, 2, 2)); err != nil {
		t.Fatal(err)
	}
	if sawCancelled {
		t.Error("the size-triggered send ran under the caller's cancelled context; acknowledged data would be lost")
	}
}
