package component

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
)

// Component is the lifecycle every receiver, processor and exporter has.
//
//   - Start returns quickly; long-running work runs in goroutines that Shutdown stops. The context
//     passed to Start is for start-up only and must not be kept.
//   - Shutdown stops background work, drains what the component holds (a processor hands buffered
//     data downstream, an exporter flushes) within ctx, and returns. It is safe to call without
//     Start and safe to call twice.
type Component interface {
	Start(ctx context.Context, host Host) error
	Shutdown(ctx context.Context) error
}

// Host is what a running component may ask of the agent.
type Host interface {
	// ReportFatal tells the agent that the component cannot go on (a listener died, say);
	// the agent logs it and shuts down with a non-zero exit.
	ReportFatal(err error)
}

// Consumer takes a batch. Ownership moves with the call: once Consume is called the caller must
// not read or change the batch again, whatever the result. A nil error means the consumer has
// taken responsibility for the data; an error says what happened to it (see consumererror):
// permanent (dropped), retryable (the caller may try again), or partial.
//
// Consumers must not mutate a batch through its read-only views (Traces, Metrics, Logs); a
// processor that changes data uses the Mutable… accessors and declares MutatesData in its factory.
type Consumer interface {
	Consume(ctx context.Context, b *batch.Batch) error
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(ctx context.Context, b *batch.Batch) error

// Consume calls f.
func (f ConsumerFunc) Consume(ctx context.Context, b *batch.Batch) error { return f(ctx, b) }

// Processor is a component in a pipeline that consumes and passes batches on.
type Processor interface {
	Component
	Consumer
}

// Exporter is a component at the end of pipelines. One exporter instance serves every pipeline
// that names it, whatever their signal; Consume sees the signal on the batch.
type Exporter interface {
	Component
	Consumer
}

// Outcome classifies what happened to items, for the standard per-component counters.
type Outcome uint8

const (
	Received Outcome = iota // items that entered the component
	Sent                    // items the component passed on and that were accepted
	Failed                  // items refused with a retryable error (the sender may try again)
	Dropped                 // items lost for good: permanent errors, overflow, filtering
)

// Counters records item outcomes. The framework counts what it can see on the consumer edges;
// components report what only they know (an exporter's asynchronous sends, say).
type Counters interface {
	Add(o Outcome, sig batch.Signal, items int)
}

// Settings is what the agent gives a component when it creates it.
type Settings struct {
	ID       ID
	Kind     Kind
	Pipeline string // processors only: the pipeline the instance belongs to
	Logger   *slog.Logger
	Counters Counters
	// Registerer takes a component's own metrics; it adds kind and component labels.
	Registerer prometheus.Registerer
	// ReportHealth marks the component degraded (err != nil) or healthy again (nil): an exporter
	// whose backend keeps failing, a full queue. A degraded component makes /readyz fail and is
	// named on /healthz; unlike Host.ReportFatal it does not stop the agent.
	ReportHealth func(err error)
}

// Config is a component's configuration: a pointer to a struct decoded from YAML. If it
// implements Validator, Validate is called after decoding and before anything is created.
type Config any

// Validator checks a config. Return every problem found (errors.Join) with the field's YAML path
// as prefix: "protocols.grpc.endpoint: must be host:port".
type Validator interface {
	Validate() error
}
