package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	batchprocessor "github.com/vigilhq/vigil/processor/batch"
)

// holder is an exporter that behaves like one with a sending queue: Consume takes the batch
// at once, and, for a batch marked end to end, holds its acknowledgements until the test
// delivers it (deliver releases them with the backend's answer). refuse makes Consume itself
// refuse, as a full queue or a permanent encoding error would.
type holder struct {
	mu     sync.Mutex
	got    []*batch.Batch
	e2e    []bool
	refuse error
	// autoDeliver (benchmarks): deliver every batch at once and keep nothing.
	autoDeliver bool
}

func (h *holder) Start(context.Context, component.Host) error { return nil }
func (h *holder) Shutdown(context.Context) error              { return nil }
func (h *holder) Consume(_ context.Context, b *batch.Batch) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return h.refuse
	}
	if h.autoDeliver {
		return nil // delivered before Consume returns: nothing to hold
	}
	if b.EndToEnd() {
		b.Acks().Hold()
	}
	h.got = append(h.got, b)
	h.e2e = append(h.e2e, b.EndToEnd())
	return nil
}

// deliver answers every held batch with err.
func (h *holder) deliver(err error) {
	h.mu.Lock()
	got := h.got
	h.got = nil
	h.mu.Unlock()
	for _, b := range got {
		if b.EndToEnd() {
			b.Acks().Release(err)
		}
	}
}

func (h *holder) marks() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.e2e...)
}

type ackWorld struct {
	receivers map[string]map[batch.Signal]component.Consumer
	exporters map[string]*holder
	tel       *selftelemetry.Telemetry
	cfg       *config.Config
	factories component.Factories
}

func ackFactories(t testing.TB, w *ackWorld) component.Factories {
	t.Helper()
	f, err := component.MakeFactories(
		[]component.ReceiverFactory{{
			Type: "src", Signals: batch.Signals,
			NewConfig: func() component.Config { return &struct{}{} },
			Create: func(set component.Settings, _ component.Config, next map[batch.Signal]component.Consumer) (component.Component, error) {
				w.receivers[set.ID.String()] = next
				return &holder{}, nil
			},
		}},
		[]component.ProcessorFactory{batchprocessor.NewFactory()},
		[]component.ExporterFactory{{
			Type: "queue", Signals: batch.Signals,
			NewConfig: func() component.Config { return &struct{}{} },
			Create: func(set component.Settings, _ component.Config) (component.Exporter, error) {
				h := &holder{}
				w.exporters[set.ID.String()] = h
				return h, nil
			},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// startAcks builds and starts yaml's graph; the returned stop shuts it down.
func startAcks(t *testing.T, yaml string) (*ackWorld, func()) {
	t.Helper()
	return startAcksB(t, yaml)
}

func startAcksB(t testing.TB, yaml string) (*ackWorld, func()) {
	t.Helper()
	w := &ackWorld{receivers: map[string]map[batch.Signal]component.Consumer{}, exporters: map[string]*holder{}}
	w.factories = ackFactories(t, w)
	cfg, err := config.Load("acks.yaml", []byte(yaml), w.factories)
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.tel = selftelemetry.New(selftelemetry.Build{})
	g, err := Build(cfg, w.factories, w.tel, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{RingCapacity: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	return w, func() {
		if err := g.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// send consumes a request through receiver src in a goroutine and returns where its answer
// will arrive.
func send(ctx context.Context, t *testing.T, w *ackWorld, n, first int) <-chan error {
	b := encodedTraces(t, n, first)
	done := make(chan error, 1)
	go func() { done <- w.receivers["src"][batch.Traces].Consume(ctx, b) }()
	return done
}

func answered(done <-chan error) (error, bool) {
	select {
	case err := <-done:
		return err, true
	default:
		return nil, false
	}
}

// TestClientWaitsForTheBatchProcessor: under the default mode a client's answer waits for the
// batch processor's send (here at its 1s timeout), never comes while its data sits in the
// buffer, and carries what the exporter said of the send.
func TestClientWaitsForTheBatchProcessor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 1s, idle_timeout: 0s}}
exporters: {queue: {}}
service: {pipelines: {traces: {receivers: [src], processors: [batch], exporters: [queue]}}}
`)
		defer stop()
		first := send(context.Background(), t, w, 5, 0)
		time.Sleep(500 * time.Millisecond)
		second := send(context.Background(), t, w, 5, 5)
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		if _, ok := answered(first); ok {
			t.Fatal("a client was answered while its data was in the batch processor")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		for i, c := range []<-chan error{first, second} {
			if err, ok := answered(c); !ok || err != nil {
				t.Fatalf("request %d at the timeout: answered=%v err=%v", i, ok, err)
			}
		}
		out := scrape(t, w.tel)
		if !strings.Contains(out, `vigil_receiver_acknowledgement_wait_seconds_count{component="src",signal="traces"} 2`) {
			t.Errorf("acknowledgement waits not recorded:\n%s", grep(out, "acknowledgement"))
		}

		// A refusal of the send reaches the clients whose data it carried.
		w.exporters["queue"].mu.Lock()
		w.exporters["queue"].refuse = consumererror.NewBackpressure(errors.New("sending queue is full"), time.Second)
		w.exporters["queue"].mu.Unlock()
		third := send(context.Background(), t, w, 5, 10)
		time.Sleep(time.Second)
		synctest.Wait()
		if err, ok := answered(third); !ok || !consumererror.IsBackpressure(err) {
			t.Fatalf("after a refused send: answered=%v err=%v, want backpressure", ok, err)
		}
	})
}

// TestClientDeadline: a client that gives up while its data is in the batch processor is told
// to retry; the data is not lost (it is sent at the timeout) and the give-up is counted.
func TestClientDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 2s, idle_timeout: 0s}}
exporters: {queue: {}}
service: {pipelines: {traces: {receivers: [src], processors: [batch], exporters: [queue]}}}
`)
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		done := send(ctx, t, w, 5, 0)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		err, ok := answered(done)
		if !ok || !errors.Is(err, ack.ErrGaveUp) || consumererror.IsFinal(err) {
			t.Fatalf("at the client's deadline: answered=%v err=%v, want a retryable give-up", ok, err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := len(w.exporters["queue"].marks()); got != 1 {
			t.Fatalf("the exporter got %d batches after the timeout, want the abandoned request's", got)
		}
		if !strings.Contains(scrape(t, w.tel), `vigil_receiver_acknowledgements_abandoned_total{component="src",signal="traces"} 1`) {
			t.Error("the give-up was not counted")
		}
	})
}

// TestEndToEndThroughBatching: with the exporter in end_to_end the client waits through the
// batch processor and then for the delivery, and hears the backend's refusal.
func TestEndToEndThroughBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 1s, idle_timeout: 0s}}
exporters: {queue: {acknowledgements: end_to_end}}
service: {pipelines: {traces: {receivers: [src], processors: [batch], exporters: [queue]}}}
`)
		defer stop()
		done := send(context.Background(), t, w, 5, 0)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, ok := answered(done); ok {
			t.Fatal("answered before the backend took the data")
		}
		w.exporters["queue"].deliver(consumererror.NewPermanent(errors.New("400: bad span")))
		synctest.Wait()
		if err, ok := answered(done); !ok || !consumererror.IsPermanent(err) {
			t.Fatalf("answered=%v err=%v, want the backend's permanent refusal", ok, err)
		}
	})
}

// TestModesPerEdge: end_to_end marks exactly the hand-offs in that mode (an exporter's own key
// wins over its pipeline's); a pipeline whose exporters are all none answers at once although
// it batches; a receiver feeding a none pipeline and a durable one waits for the durable one.
func TestModesPerEdge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 1s, idle_timeout: 0s}}
exporters: {queue/a: {}, queue/b: {acknowledgements: durable}, queue/c: {}}
service:
  pipelines:
    traces/strict: {receivers: [src], processors: [batch], exporters: [queue/a, queue/b], acknowledgements: end_to_end}
    traces/lossy: {receivers: [src], processors: [batch], exporters: [queue/c], acknowledgements: none}
`)
		defer stop()
		a, b, c := w.exporters["queue/a"], w.exporters["queue/b"], w.exporters["queue/c"]
		done := send(context.Background(), t, w, 3, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := a.marks(); len(got) != 1 || !got[0] {
			t.Errorf("queue/a (pipeline end_to_end) marks %v, want [true]", got)
		}
		if got := b.marks(); len(got) != 1 || got[0] {
			t.Errorf("queue/b (own durable wins) marks %v, want [false]", got)
		}
		if got := c.marks(); len(got) != 1 || got[0] {
			t.Errorf("queue/c (none) marks %v, want [false]", got)
		}
		if _, ok := answered(done); ok {
			t.Fatal("answered before the end_to_end exporter delivered")
		}
		a.deliver(nil)
		synctest.Wait()
		if err, ok := answered(done); !ok || err != nil {
			t.Fatalf("after delivery: answered=%v err=%v", ok, err)
		}
		c.mu.Lock()
		for _, got := range c.got {
			if len(got.Acks()) != 0 {
				t.Errorf("a batch of a none pipeline carries %d handles", len(got.Acks()))
			}
		}
		c.mu.Unlock()
	})
}

// TestNoneAnswersAtOnce: a receiver all of whose pipelines are none gets no handle at all and
// its clients are answered when the pipeline took the request, batch processor or not.
func TestNoneAnswersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 1h}}
exporters: {queue: {}}
service: {pipelines: {traces: {receivers: [src], processors: [batch], exporters: [queue], acknowledgements: none}}}
`)
		defer stop()
		if _, ok := w.receivers["src"][batch.Traces].(acknowledge); ok {
			t.Error("a receiver feeding only none pipelines got the acknowledging edge")
		}
		done := send(context.Background(), t, w, 3, 0)
		synctest.Wait()
		if err, ok := answered(done); !ok || err != nil {
			t.Fatalf("answered=%v err=%v, want an immediate nil", ok, err)
		}
	})
}

// TestFanOutRefusalReachesTheClient: one exporter refuses for good while the other's pipeline
// holds the data in a batch processor: the client waits for both and hears the refusal.
func TestFanOutRefusalReachesTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stop := startAcks(t, `
receivers: {src: {}}
processors: {batch: {send_batch_size: 1000, timeout: 1s, idle_timeout: 0s}}
exporters: {queue/ok: {}, queue/bad: {}}
service:
  pipelines:
    traces/batched: {receivers: [src], processors: [batch], exporters: [queue/ok]}
    traces/direct: {receivers: [src], exporters: [queue/bad]}
`)
		defer stop()
		w.exporters["queue/bad"].refuse = consumererror.NewPermanent(errors.New("unencodable"))
		done := send(context.Background(), t, w, 3, 0)
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if _, ok := answered(done); ok {
			t.Fatal("answered before the batched branch was done")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err, ok := answered(done); !ok || !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "unencodable") {
			t.Fatalf("answered=%v err=%v, want the permanent refusal", ok, err)
		}
	})
}

// TestExplainAcks: validate's explanation names each pipeline's modes and the processors that
// make clients wait.
func TestExplainAcks(t *testing.T) {
	w := &ackWorld{receivers: map[string]map[batch.Signal]component.Consumer{}, exporters: map[string]*holder{}}
	f := ackFactories(t, w)
	cfg, err := config.Load("acks.yaml", []byte(`
receivers: {src: {}}
processors: {batch: {timeout: 5s}}
exporters: {queue/a: {acknowledgements: end_to_end}, queue/b: {}}
service:
  pipelines:
    traces: {receivers: [src], processors: [batch], exporters: [queue/a, queue/b]}
    logs: {receivers: [src], exporters: [queue/b], acknowledgements: none}
`), f)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ExplainAcks(cfg, f), "\n")
	for _, want := range []string{
		"pipeline logs: acknowledgements none",
		"pipeline traces: a client is answered once every exporter has its data:",
		"exporter queue/a: end_to_end",
		"exporter queue/b: durable",
		"processor batch holds data before sending it on; clients wait for its send (up to 5s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
}

func grep(s, part string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
