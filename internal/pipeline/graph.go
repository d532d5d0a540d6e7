package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// Options tune how the graph runs.
type Options struct {
	// RingCapacity is the number of batches each pipeline's ring holds (default 1024).
	RingCapacity int
	// Workers per pipeline (default GOMAXPROCS).
	Workers int
	// Health receives components' degraded reports (nil: ignored).
	Health *selftelemetry.Health
}

// Graph is a set of built components wired into pipelines.
type Graph struct {
	logger *slog.Logger
	nodes  []*node // in topological order: upstream before downstream
	order  []*node // start order: downstream first
}

// node is one component instance in the graph; a pipeline's entry is a node too, so that start
// and stop order treat it like any other stage.
type node struct {
	name  string // "receiver otlp", "processor batch in traces", "exporter otlp/jaeger", "entry traces"
	comp  component.Component
	entry *entry
	edges []*node // downstream nodes
	// receiver: its Shutdown waits for requests in flight, which may wait for their data to be
	// acknowledged; it gets part of the grace period only (see Graph.Shutdown).
	receiver bool
}

func (n *node) start(ctx context.Context, host component.Host) error {
	if n.entry != nil {
		n.entry.start()
		return nil
	}
	return n.comp.Start(ctx, host)
}

func (n *node) shutdown(ctx context.Context) error {
	if n.entry != nil {
		return n.entry.shutdown(ctx)
	}
	return n.comp.Shutdown(ctx)
}

// Build creates every component the pipelines use and wires them. Nothing is started.
func Build(cfg *config.Config, f component.Factories, tel *selftelemetry.Telemetry, logger *slog.Logger, opt Options) (*Graph, error) {
	if opt.RingCapacity <= 0 {
		opt.RingCapacity = 1024
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	settings := func(kind component.Kind, id component.ID, pipeline string, signals []batch.Signal) component.Settings {
		attrs := []any{"kind", kind.String(), "component", id.String()}
		if pipeline != "" {
			attrs = append(attrs, "pipeline", pipeline)
		}
		return component.Settings{
			ID: id, Kind: kind, Pipeline: pipeline,
			Logger:     logger.With(attrs...),
			Counters:   tel.Counters(kind, id, pipeline, signals),
			Registerer: tel.Registerer(kind, id, pipeline),
			ReportHealth: func(err error) {
				if opt.Health != nil {
					opt.Health.Degrade(kind.String()+" "+id.String(), err)
				}
			},
		}
	}
	g := &Graph{logger: logger}
	var all []*node

	// Exporters first: everything upstream needs their consumers.
	exporters := map[component.ID]*node{}
	expConsumers := map[component.ID]component.Consumer{}
	for _, id := range usedIDs(cfg, func(p *config.Pipeline) []component.ID { return p.Exporters }) {
		set := settings(component.KindExporter, id, "", usedSignals(cfg, id, func(p *config.Pipeline) []component.ID { return p.Exporters }))
		exp, err := f.Exporters[id.Type].Create(set, cfg.Exporters[id])
		if err != nil {
			return nil, fmt.Errorf("create exporter %q: %w", id, err)
		}
		n := &node{name: "exporter " + id.String(), comp: exp}
		exporters[id] = n
		expConsumers[id] = countIn{next: exp, c: set.Counters}
		all = append(all, n)
	}

	// Pipelines: processors built last to first, so each gets its next consumer.
	type built struct {
		entry   component.Consumer
		node    *node
		mutates bool
	}
	pipelines := map[config.PipelineID]built{}
	for _, pid := range sortedPipelines(cfg) {
		p := cfg.Service.Pipelines[pid]
		var branches []branch
		var down []*node
		for _, id := range p.Exporters {
			c := expConsumers[id]
			if cfg.AckMode(pid, id) == component.AckEndToEnd {
				c = endToEnd{next: c}
			}
			branches = append(branches, branch{c: c})
			down = append(down, exporters[id])
		}
		next := newFanout(branches)
		mutates := false
		for i := len(p.Processors) - 1; i >= 0; i-- {
			id := p.Processors[i]
			fac := f.Processors[id.Type]
			set := settings(component.KindProcessor, id, pid.String(), []batch.Signal{pid.Signal})
			proc, err := fac.Create(set, cfg.Processors[id], pid.Signal, countOut{next: next, c: set.Counters})
			if err != nil {
				return nil, fmt.Errorf("create processor %q in pipeline %q: %w", id, pid, err)
			}
			mutates = mutates || fac.MutatesData
			n := &node{name: fmt.Sprintf("processor %s in %s", id, pid), comp: proc, edges: down}
			all = append(all, n)
			down = []*node{n}
			next = countIn{next: proc, c: set.Counters}
		}
		e := newEntry(opt.RingCapacity, opt.Workers, next)
		e.dropAcks = cfg.AcksNone(pid)
		registerRingGauges(tel.Registry, pid.String(), e)
		n := &node{name: "pipeline " + pid.String(), entry: e, edges: down}
		all = append(all, n)
		pipelines[pid] = built{entry: e, node: n, mutates: mutates}
	}

	// Receivers: one instance per id, with one fan-out per signal over the pipelines using it.
	for _, id := range usedIDs(cfg, func(p *config.Pipeline) []component.ID { return p.Receivers }) {
		next := map[batch.Signal]component.Consumer{}
		set := settings(component.KindReceiver, id, "", usedSignals(cfg, id, func(p *config.Pipeline) []component.ID { return p.Receivers }))
		var down []*node
		for _, sig := range batch.Signals {
			var branches []branch
			acks := false // does some pipeline fed by this receiver carry acknowledgements?
			for _, pid := range sortedPipelines(cfg) {
				if pid.Signal != sig || !slices.Contains(cfg.Service.Pipelines[pid].Receivers, id) {
					continue
				}
				b := pipelines[pid]
				branches = append(branches, branch{c: b.entry, mutates: b.mutates})
				down = append(down, b.node)
				acks = acks || !cfg.AcksNone(pid)
			}
			if len(branches) == 0 {
				continue
			}
			var c component.Consumer = countIn{next: countOut{next: newFanout(branches), c: set.Counters}, c: set.Counters}
			if acks {
				c = acknowledge{next: c, obs: tel.Acknowledgements(id, sig)}
			}
			next[sig] = c
		}
		rcv, err := f.Receivers[id.Type].Create(set, cfg.Receivers[id], next)
		if err != nil {
			return nil, fmt.Errorf("create receiver %q: %w", id, err)
		}
		all = append(all, &node{name: "receiver " + id.String(), comp: rcv, edges: down, receiver: true})
	}

	order, err := topoSort(all)
	if err != nil {
		return nil, err
	}
	g.nodes = order
	g.order = slices.Clone(order)
	slices.Reverse(g.order)
	return g, nil
}

// Start starts components downstream-first, so that nothing receives data before everything it
// feeds is running. If one fails, those already started are shut down.
func (g *Graph) Start(ctx context.Context, host component.Host) error {
	for i, n := range g.order {
		g.logger.Debug("starting", "component", n.name)
		if err := n.start(ctx, host); err != nil {
			err = fmt.Errorf("start %s: %w", n.name, err)
			for j := i - 1; j >= 0; j-- {
				if serr := g.order[j].shutdown(ctx); serr != nil {
					g.logger.Warn("shutdown after failed start", "component", g.order[j].name, "error", serr)
				}
			}
			return err
		}
	}
	return nil
}

// Shutdown stops components upstream-first: receivers stop taking data, then each pipeline's
// workers finish what its ring holds, then processors flush what they buffer, then exporters
// drain. Every component is asked to stop even if an earlier one failed.
//
// Receivers get half of what is left of ctx's time: their requests in flight wait for their
// data to be acknowledged, which under end_to_end with a dead backend would otherwise take all
// of it and leave the exporters none to flush. A request cut short is answered with a retryable
// error; its data stays in the pipeline and is delivered (the client's resend is a duplicate).
func (g *Graph) Shutdown(ctx context.Context) error {
	var errs []error
	deadline, bounded := ctx.Deadline()
	receiversBy := time.Now().Add(time.Until(deadline) / 2)
	for _, n := range g.nodes {
		g.logger.Debug("stopping", "component", n.name)
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded && n.receiver {
			sctx, cancel = context.WithDeadline(ctx, receiversBy)
		}
		err := n.shutdown(sctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

// topoSort orders nodes so that every node comes before the nodes it feeds (Kahn's algorithm),
// and reports a cycle by naming the nodes on it.
func topoSort(nodes []*node) ([]*node, error) {
	indeg := map[*node]int{}
	for _, n := range nodes {
		indeg[n] += 0
		for _, d := range n.edges {
			indeg[d]++
		}
	}
	var queue, out []*node
	for _, n := range nodes {
		if indeg[n] == 0 {
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		out = append(out, n)
		for _, d := range n.edges {
			indeg[d]--
			if indeg[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	if len(out) != len(indeg) {
		var cyc []string
		for _, n := range nodes {
			if indeg[n] > 0 {
				cyc = append(cyc, n.name)
			}
		}
		slices.Sort(cyc)
		return nil, fmt.Errorf("pipelines form a cycle through: %s", strings.Join(cyc, ", "))
	}
	return out, nil
}

func sortedPipelines(cfg *config.Config) []config.PipelineID {
	ids := make([]config.PipelineID, 0, len(cfg.Service.Pipelines))
	for id := range cfg.Service.Pipelines {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b config.PipelineID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// usedIDs lists, sorted and once each, the components some pipeline names. Components defined
// but used by no pipeline are not created (as in the OpenTelemetry Collector).
func usedIDs(cfg *config.Config, list func(*config.Pipeline) []component.ID) []component.ID {
	seen := map[component.ID]bool{}
	var ids []component.ID
	for _, pid := range sortedPipelines(cfg) {
		for _, id := range list(cfg.Service.Pipelines[pid]) {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.SortFunc(ids, func(a, b component.ID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// usedSignals lists the signals of the pipelines that name id.
func usedSignals(cfg *config.Config, id component.ID, list func(*config.Pipeline) []component.ID) []batch.Signal {
	var out []batch.Signal
	for pid, p := range cfg.Service.Pipelines {
		if slices.Contains(list(p), id) && !slices.Contains(out, pid.Signal) {
			out = append(out, pid.Signal)
		}
	}
	return out
}

func registerRingGauges(reg prometheus.Registerer, pipeline string, e *entry) {
	labels := prometheus.Labels{"pipeline": pipeline}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_pipeline_queue_length", Help: "Batches waiting in the pipeline's ring for a worker.", ConstLabels: labels,
		}, func() float64 { return float64(e.ring.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_pipeline_queue_capacity", Help: "Capacity of the pipeline's ring, in batches.", ConstLabels: labels,
		}, func() float64 { return float64(e.ring.Cap()) }),
	)
}
