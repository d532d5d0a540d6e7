package pipeline_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/pipeline"
	"github.com/vigilhq/vigil/internal/selftelemetry"
	"github.com/vigilhq/vigil/internal/testdata"
	batchprocessor "github.com/vigilhq/vigil/processor/batch"
)

// capture is an exporter that keeps the encoded bytes of everything it is sent, and whether the
// batch had been decoded on the way.
type capture struct {
	mu      sync.Mutex
	out     [][]byte
	decoded bool
}

func (c *capture) Start(context.Context, component.Host) error { return nil }
func (c *capture) Shutdown(context.Context) error              { return nil }
func (c *capture) Consume(_ context.Context, b *batch.Batch) error {
	enc, err := b.Encoded()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decoded = c.decoded || b.IsDecoded()
	c.out = append(c.out, enc)
	return nil
}

type procFunc struct{ component.Consumer }

func (procFunc) Start(context.Context, component.Host) error { return nil }
func (procFunc) Shutdown(context.Context) error              { return nil }

// TestPassThroughAndDecodedPathsAgree sends the same encoded requests through
// receiver → batch → exporter twice: once with nothing that reads the data (the bytes are
// concatenated, never decoded), once with a processor that takes the data as mutable pdata
// (decode, merge, re-encode). The exporter must see byte-identical requests.
func TestPassThroughAndDecodedPathsAgree(t *testing.T) {
	for _, sig := range batch.Signals {
		t.Run(sig.String(), func(t *testing.T) {
			var requests []*batch.Batch
			var raw [][]byte
			for i := 0; i < 5; i++ {
				var b *batch.Batch
				switch sig {
				case batch.Traces:
					b = batch.FromTraces(testdata.Traces(2, 7, i*100))
				case batch.Metrics:
					b = batch.FromMetrics(testdata.Metrics(2, 7, i*100))
				default:
					b = batch.FromLogs(testdata.Logs(2, 7, i*100))
				}
				enc, err := b.Encoded()
				if err != nil {
					t.Fatal(err)
				}
				raw = append(raw, enc)
			}
			run := func(processors string) *capture {
				requests = requests[:0]
				for _, r := range raw {
					b, err := batch.FromEncoded(sig, r)
					if err != nil {
						t.Fatal(err)
					}
					requests = append(requests, b)
				}
				return runPipeline(t, sig, processors, requests)
			}
			pass := run("[batch]")
			decoded := run("[touch, batch]")
			if pass.decoded {
				t.Error("pass-through path decoded data")
			}
			if !decoded.decoded {
				t.Error("the mutating path did not decode; the test proves nothing")
			}
			a, b := bytes.Join(pass.out, nil), bytes.Join(decoded.out, nil)
			if len(pass.out) != 1 || len(decoded.out) != 1 {
				t.Fatalf("want one batch on each path, got %d and %d", len(pass.out), len(decoded.out))
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("paths differ: %d bytes vs %d bytes", len(a), len(b))
			}
			if !bytes.Equal(a, bytes.Join(raw, nil)) {
				t.Fatal("the batch is not the concatenation of the requests")
			}
		})
	}
}

func runPipeline(t *testing.T, sig batch.Signal, processors string, in []*batch.Batch) *capture {
	t.Helper()
	sink := &capture{}
	var next map[batch.Signal]component.Consumer
	f, err := component.MakeFactories(
		[]component.ReceiverFactory{{
			Type: "src", Signals: batch.Signals, NewConfig: func() component.Config { return &struct{}{} },
			Create: func(_ component.Settings, _ component.Config, n map[batch.Signal]component.Consumer) (component.Component, error) {
				next = n
				return procFunc{}, nil
			},
		}},
		[]component.ProcessorFactory{batchprocessor.NewFactory(), {
			Type: "touch", Signals: batch.Signals, MutatesData: true, NewConfig: func() component.Config { return &struct{}{} },
			Create: func(_ component.Settings, _ component.Config, _ batch.Signal, n component.Consumer) (component.Processor, error) {
				return procFunc{component.ConsumerFunc(func(ctx context.Context, b *batch.Batch) error {
					var err error
					switch b.Signal() {
					case batch.Traces:
						_, err = b.MutableTraces()
					case batch.Metrics:
						_, err = b.MutableMetrics()
					default:
						_, err = b.MutableLogs()
					}
					if err != nil {
						return err
					}
					return n.Consume(ctx, b)
				})}, nil
			},
		}},
		[]component.ExporterFactory{{
			Type: "capture", Signals: batch.Signals, NewConfig: func() component.Config { return &struct{}{} },
			Create: func(component.Settings, component.Config) (component.Exporter, error) { return sink, nil },
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	yaml := `
receivers: {src: {}}
processors: {batch: {send_batch_size: 100000, timeout: 1h}, touch: {}}
exporters: {capture: {}}
service: {pipelines: {` + sig.String() + `: {receivers: [src], processors: ` + processors + `, exporters: [capture], acknowledgements: none}}}
`
	cfg, err := config.Load("identity.yaml", []byte(yaml), f)
	if err != nil {
		t.Fatal(err)
	}
	// One worker keeps the arrival order at the batch processor equal to the send order, and
	// acknowledgements: none lets each request return before the shutdown flush.
	g, err := pipeline.Build(cfg, f, selftelemetry.New(selftelemetry.Build{}), slog.New(slog.NewTextHandler(io.Discard, nil)),
		pipeline.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx, component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	for _, b := range in {
		if err := next[sig].Consume(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Shutdown(ctx); err != nil { // the batch processor flushes everything as one batch
		t.Fatal(err)
	}
	return sink
}
