package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world records lifecycle events and gives tests access to what the fakes saw.
type world struct {
	mu        sync.Mutex
	events    []string
	receivers map[string]map[batch.Signal]component.Consumer
	sinks     map[string]*componenttest.Sink
	allSinks  map[string][]*componenttest.Sink // every instance, replaced ones too
	held      map[string][]*batch.Batch        // by holding processors, flushed on shutdown
}

func (w *world) event(s string) {
	w.mu.Lock()
	w.events = append(w.events, s)
	w.mu.Unlock()
}

type lifecycle struct {
	w         *world
	name      string
	stop      func(context.Context) error
	failStart error
}

func (l *lifecycle) Start(context.Context, component.Host) error {
	if l.failStart != nil {
		l.w.event("failed start " + l.name)
		return l.failStart
	}
	l.w.event("start " + l.name)
	return nil
}
func (l *lifecycle) Shutdown(ctx context.Context) error {
	l.w.event("stop " + l.name)
	if l.stop != nil {
		return l.stop(ctx)
	}
	return nil
}

type proc struct {
	lifecycle
	component.Consumer
}

type exp struct {
	lifecycle
	*componenttest.Sink
}

func (w *world) factories(t *testing.T) component.Factories {
	f, err := component.MakeFactories(
		[]component.ReceiverFactory{{
			Type: "src", Signals: batch.Signals,
			NewConfig: func() component.Config { return &srcConfig{} },
			Create: func(set component.Settings, _ component.Config, next map[batch.Signal]component.Consumer) (component.Component, error) {
				w.mu.Lock()
				w.receivers[set.ID.String()] = next
				w.mu.Unlock()
				return &lifecycle{w: w, name: set.ID.String()}, nil
			},
		}},
		[]component.ProcessorFactory{
			{
				// tag mutates: it adds an attribute to every resource.
				Type: "tag", Signals: batch.Signals, MutatesData: true,
				NewConfig: func() component.Config { return &struct{}{} },
				Create: func(set component.Settings, _ component.Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
					return &proc{lifecycle{w: w, name: set.ID.String() + "@" + set.Pipeline}, component.ConsumerFunc(func(ctx context.Context, b *batch.Batch) error {
						td, err := b.MutableTraces()
						if err != nil {
							return err
						}
						for i := 0; i < td.ResourceSpans().Len(); i++ {
							td.ResourceSpans().At(i).Resource().Attributes().PutStr("tagged", set.Pipeline)
						}
						return next.Consume(ctx, b)
					})}, nil
				},
			},
			{
				// hold buffers everything and flushes on shutdown, like a batch processor, but
				// answers at once without holding acknowledgements: a fake for the order of
				// start, stop and flush (acks_test.go runs the real batch processor).
				Type: "hold", Signals: batch.Signals, Buffers: true,
				NewConfig: func() component.Config { return &struct{}{} },
				Create: func(set component.Settings, _ component.Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
					key := set.Pipeline
					p := &proc{lifecycle: lifecycle{w: w, name: set.ID.String() + "@" + key}}
					p.stop = func(ctx context.Context) error {
						w.mu.Lock()
						held := w.held[key]
						w.held[key] = nil
						w.mu.Unlock()
						for _, b := range held {
							if err := next.Consume(ctx, b); err != nil {
								return err
							}
						}
						return nil
					}
					p.Consumer = component.ConsumerFunc(func(_ context.Context, b *batch.Batch) error {
						w.mu.Lock()
						w.held[key] = append(w.held[key], b)
						w.mu.Unlock()
						return nil
					})
					return p, nil
				},
			},
		},
		[]component.ExporterFactory{{
			Type: "sink", Signals: batch.Signals,
			NewConfig: func() component.Config { return &sinkConfig{} },
			Create: func(set component.Settings, c component.Config) (component.Exporter, error) {
				cfg := c.(*sinkConfig)
				if cfg.FailCreate {
					return nil, errors.New("cannot create")
				}
				// A metric of its own: a replacement registers the same name.
				if err := set.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_sink_tag_info",
					ConstLabels: prometheus.Labels{"tag": cfg.Tag}}, func() float64 { return 1 })); err != nil {
					return nil, err
				}
				s := &componenttest.Sink{}
				w.mu.Lock()
				w.sinks[set.ID.String()] = s
				w.allSinks[set.ID.String()] = append(w.allSinks[set.ID.String()], s)
				w.mu.Unlock()
				e := &exp{lifecycle{w: w, name: set.ID.String()}, s}
				if cfg.FailStart {
					e.failStart = errors.New("cannot start")
				}
				return e, nil
			},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type sinkConfig struct {
	Persistent bool   `yaml:"persistent"`
	Tag        string `yaml:"tag"`
	FailCreate bool   `yaml:"fail_create"`
	FailStart  bool   `yaml:"fail_start"`
}

type srcConfig struct {
	Tag string `yaml:"tag"`
}

func build(t *testing.T, yaml string) (*world, *Graph, *selftelemetry.Telemetry) {
	t.Helper()
	return buildWithLogger(t, yaml, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func buildWithLogger(t *testing.T, yaml string, logger *slog.Logger) (*world, *Graph, *selftelemetry.Telemetry) {
	t.Helper()
	w := &world{receivers: map[string]map[batch.Signal]component.Consumer{}, sinks: map[string]*componenttest.Sink{},
		allSinks: map[string][]*componenttest.Sink{}, held: map[string][]*batch.Batch{}}
	f := w.factories(t)
	cfg, err := config.Load("test.yaml", []byte(yaml), f)
	if err != nil {
		t.Fatal(err)
	}
	tel := selftelemetry.New(selftelemetry.Build{Version: "test"})
	g, err := Build(cfg, f, tel, logger, Options{RingCapacity: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return w, g, tel
}

func startStop(t *testing.T, g *Graph) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := g.Start(ctx, component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	return func() {
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func encodedTraces(t *testing.T, n, first int) *batch.Batch {
	t.Helper()
	b, err := batch.FromTraces(testdata.Traces(1, n, first)).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	eb, err := batch.FromEncoded(batch.Traces, b)
	if err != nil {
		t.Fatal(err)
	}
	return eb
}

const twoPipelines = `
receivers: {src: {}, src/b: {}}
processors: {tag: {}, hold: {}}
exporters: {sink/plain: {}, sink/tagged: {}, sink/both: {}}
service:
  pipelines:
    traces/plain:
      receivers: [src, src/b]
      exporters: [sink/plain, sink/both]
    traces/tagged:
      receivers: [src]
      processors: [tag, hold]
      exporters: [sink/tagged, sink/both]
`

func TestStartStopOrder(t *testing.T) {
	w, g, _ := build(t, twoPipelines)
	stop := startStop(t, g)
	stop()
	pos := func(e string) int {
		i := slices.Index(w.events, e)
		if i < 0 {
			t.Fatalf("event %q missing from %v", e, w.events)
		}
		return i
	}
	// Downstream first on start, upstream first on stop.
	for _, pair := range [][2]string{
		{"start sink/tagged", "start hold@traces/tagged"},
		{"start hold@traces/tagged", "start tag@traces/tagged"},
		{"start tag@traces/tagged", "start src"},
		{"start sink/plain", "start src/b"},
		{"stop src", "stop tag@traces/tagged"},
		{"stop tag@traces/tagged", "stop hold@traces/tagged"},
		{"stop hold@traces/tagged", "stop sink/tagged"},
		{"stop src/b", "stop sink/plain"},
	} {
		if pos(pair[0]) > pos(pair[1]) {
			t.Errorf("%q must come before %q; events: %v", pair[0], pair[1], w.events)
		}
	}
}

func TestFanInFanOutAndCloneRules(t *testing.T) {
	w, g, tel := build(t, twoPipelines)
	stop := startStop(t, g)
	ctx := context.Background()
	if err := w.receivers["src"][batch.Traces].Consume(ctx, encodedTraces(t, 3, 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.receivers["src/b"][batch.Traces].Consume(ctx, encodedTraces(t, 2, 100)); err != nil {
		t.Fatal(err)
	}
	stop() // hold flushes on shutdown, before the exporters stop

	plain, tagged, both := w.sinks["sink/plain"], w.sinks["sink/tagged"], w.sinks["sink/both"]
	if plain.Items() != 5 || tagged.Items() != 3 || both.Items() != 8 {
		t.Fatalf("items: plain=%d tagged=%d both=%d; want 5, 3, 8", plain.Items(), tagged.Items(), both.Items())
	}
	// The read-only pipeline shares the original, which the mutating pipeline must not have touched.
	for _, b := range plain.Batches() {
		if !b.IsEncoded() || b.IsDecoded() {
			t.Errorf("read-only path decoded or lost its bytes: encoded=%v decoded=%v", b.IsEncoded(), b.IsDecoded())
		}
		td, _ := b.Traces()
		if _, ok := td.ResourceSpans().At(0).Resource().Attributes().Get("tagged"); ok {
			t.Error("mutation leaked into the read-only pipeline")
		}
	}
	for _, b := range tagged.Batches() {
		td, _ := b.Traces()
		v, ok := td.ResourceSpans().At(0).Resource().Attributes().Get("tagged")
		if !ok || v.Str() != "traces/tagged" {
			t.Error("mutating pipeline's change missing")
		}
	}
	// The framework counted what it saw on the edges.
	metrics := scrape(t, tel)
	for _, want := range []string{
		`vigil_component_received_items_total{component="src",kind="receiver",pipeline="",signal="traces"} 3`,
		`vigil_component_sent_items_total{component="src/b",kind="receiver",pipeline="",signal="traces"} 2`,
		`vigil_component_received_items_total{component="sink/both",kind="exporter",pipeline="",signal="traces"} 8`,
		`vigil_component_received_items_total{component="tag",kind="processor",pipeline="traces/tagged",signal="traces"} 3`,
		`vigil_pipeline_queue_capacity{pipeline="traces/plain"} 8`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestErrorsReachTheReceiver(t *testing.T) {
	w, g, tel := build(t, `
receivers: {src: {}}
exporters: {sink: {}}
service: {pipelines: {logs: {receivers: [src], exporters: [sink]}, traces: {receivers: [src], exporters: [sink]}}}
`)
	stop := startStop(t, g)
	defer stop()
	w.sinks["sink"].Err = consumererror.NewRetryable(errors.New("backend busy"), time.Second)
	err := w.receivers["src"][batch.Traces].Consume(context.Background(), encodedTraces(t, 4, 0))
	if after, ok := consumererror.RetryAfter(err); !ok || after != time.Second {
		t.Fatalf("want the retryable error with its delay, got %v", err)
	}
	if !strings.Contains(scrape(t, tel), `vigil_component_failed_items_total{component="src",kind="receiver",pipeline="",signal="traces"} 4`) {
		t.Error("failed items not counted")
	}
	if _, ok := w.receivers["src"][batch.Metrics]; ok {
		t.Error("receiver got a consumer for a signal no pipeline uses")
	}
}

func TestShutdownRefusesNewData(t *testing.T) {
	w, g, _ := build(t, `
receivers: {src: {}}
exporters: {sink: {}}
service: {pipelines: {traces: {receivers: [src], exporters: [sink]}}}
`)
	stop := startStop(t, g)
	stop()
	err := w.receivers["src"][batch.Traces].Consume(context.Background(), encodedTraces(t, 1, 0))
	if _, ok := consumererror.RetryAfter(err); !ok {
		t.Fatalf("after shutdown, want a retryable refusal, got %v", err)
	}
}
