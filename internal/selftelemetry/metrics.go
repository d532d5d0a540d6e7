package selftelemetry

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Build describes the running binary.
type Build struct {
	Version  string
	Revision string
}

// Telemetry owns the registry and the standard counters.
type Telemetry struct {
	Registry *prometheus.Registry
	items    [4]*prometheus.CounterVec // indexed by component.Outcome
	ackWait  *prometheus.HistogramVec
	ackGave  *prometheus.CounterVec
}

var outcomeNames = [4]string{
	component.Received: "received",
	component.Sent:     "sent",
	component.Failed:   "failed",
	component.Dropped:  "dropped",
}

var outcomeHelp = [4]string{
	component.Received: "Items (spans, data points, log records) that entered the component.",
	component.Sent:     "Items the component passed on and that were accepted downstream (exporters: by the backend).",
	component.Failed:   "Items refused with a retryable error; the sender may try them again.",
	component.Dropped:  "Items lost for good: permanent errors, overflow, shutdown.",
}

// New creates a registry with build info, Go runtime and process metrics and the item counters.
func New(build Build) *Telemetry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vigil_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(info)
	t := &Telemetry{Registry: reg}
	for o, name := range outcomeNames {
		t.items[o] = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_component_" + name + "_items_total",
			Help: outcomeHelp[o],
		}, []string{"kind", "component", "pipeline", "signal"})
		reg.MustRegister(t.items[o])
	}
	t.ackWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vigil_receiver_acknowledgement_wait_seconds",
		Help: "How long a receiver's requests waited, after the pipeline took them, for their data to be acknowledged " +
			"(buffering processors done, end_to_end exporters delivered); 0 when nothing held them.",
		Buckets: []float64{0, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"component", "signal"})
	t.ackGave = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_receiver_acknowledgements_abandoned_total",
		Help: "Requests whose client stopped waiting (deadline, disconnect, shutdown) before their data was acknowledged. " +
			"The data is still delivered; the client was told to retry, so expect it again (a duplicate).",
	}, []string{"component", "signal"})
	reg.MustRegister(t.ackWait, t.ackGave)
	return t
}

// AckObserver records the acknowledgement waits of one receiver and signal.
type AckObserver struct {
	wait prometheus.Observer
	gave prometheus.Counter
}

// Acknowledgements returns the observer for receiver id's requests of sig.
func (t *Telemetry) Acknowledgements(id component.ID, sig batch.Signal) AckObserver {
	return AckObserver{
		wait: t.ackWait.WithLabelValues(id.String(), sig.String()),
		gave: t.ackGave.WithLabelValues(id.String(), sig.String()),
	}
}

// Waited records one request's wait.
func (o AckObserver) Waited(d time.Duration) { o.wait.Observe(d.Seconds()) }

// GaveUp records a request whose client stopped waiting.
func (o AckObserver) GaveUp() { o.gave.Inc() }

// Counters returns the counters for one component instance and the signals it handles (other
// signals are not counted, so that no empty series appear). pipeline is empty for receivers and
// exporters, which are shared by pipelines.
func (t *Telemetry) Counters(kind component.Kind, id component.ID, pipeline string, signals []batch.Signal) component.Counters {
	c := &counters{}
	for o := range outcomeNames {
		for _, s := range signals {
			c.c[o][s] = t.items[o].WithLabelValues(kind.String(), id.String(), pipeline, s.String())
		}
	}
	return c
}

// Registerer returns a registerer that labels a component's own metrics with its kind and id.
func (t *Telemetry) Registerer(kind component.Kind, id component.ID, pipeline string) prometheus.Registerer {
	labels := prometheus.Labels{"kind": kind.String(), "component": id.String()}
	if pipeline != "" {
		labels["pipeline"] = pipeline
	}
	return prometheus.WrapRegistererWith(labels, t.Registry)
}

// counters holds pre-resolved children so that the hot path does no label lookups.
type counters struct {
	c [4][4]prometheus.Counter // [outcome][signal]
}

func (c *counters) Add(o component.Outcome, sig batch.Signal, n int) {
	if int(o) < len(c.c) && int(sig) < len(c.c[o]) && c.c[o][sig] != nil && n > 0 {
		c.c[o][sig].Add(float64(n))
	}
}
