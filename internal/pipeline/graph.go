package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
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

// Graph is a set of built components wired into pipelines. Every edge between components goes
// through a route or a gate, so that a reload (reload.go) can replace what changed and keep
// what did not.
type Graph struct {
	logger *slog.Logger
	tel    *selftelemetry.Telemetry
	f      component.Factories
	opt    Options

	mu        sync.Mutex // serialises Start, Reload and Shutdown
	cfg       *config.Config
	baseline  *config.Config // a load of cfg no component has touched, to compare with (nil: cfg)
	exporters map[component.ID]*expNode
	pipelines map[config.PipelineID]*pipeNode
	receivers map[component.ID]*rcvNode
	host      component.Host
	started   bool
}

// node is one component instance.
type node struct {
	name string // "receiver otlp", "processor batch in traces", "exporter otlp/jaeger"
	comp component.Component
	reg  *tracker
}

type expNode struct {
	node
	signals []batch.Signal
	gate    *gate
	in      component.Consumer // what the gate opens onto: countIn over the exporter
}

type pipeNode struct {
	entry   *entry
	procs   []*node // upstream first
	tail    *route  // after the last processor: the fan-out over the exporters
	reg     *tracker
	mutates bool
}

type rcvNode struct {
	node
	signals []batch.Signal
	routes  map[batch.Signal]*route
}

// Build creates every component the pipelines use and wires them. Nothing is started.
func Build(cfg *config.Config, f component.Factories, tel *selftelemetry.Telemetry, logger *slog.Logger, opt Options) (*Graph, error) {
	if opt.RingCapacity <= 0 {
		opt.RingCapacity = 1024
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	g := &Graph{logger: logger, tel: tel, f: f, opt: opt, cfg: cfg,
		exporters: map[component.ID]*expNode{}, pipelines: map[config.PipelineID]*pipeNode{}, receivers: map[component.ID]*rcvNode{}}
	fail := func(err error) (*Graph, error) {
		g.discard()
		return nil, err
	}
	// Exporters first: everything upstream needs their consumers.
	for _, id := range usedIDs(cfg, exportersOf) {
		n, err := g.newExporter(cfg, id)
		if err != nil {
			return fail(err)
		}
		g.exporters[id] = n
	}
	for _, pid := range sortedPipelines(cfg) {
		p, err := g.newPipeline(cfg, pid, g.exporters)
		if err != nil {
			return fail(err)
		}
		g.pipelines[pid] = p
	}
	for _, id := range usedIDs(cfg, receiversOf) {
		n, err := g.newReceiver(cfg, id, g.pipelines)
		if err != nil {
			return fail(err)
		}
		g.receivers[id] = n
	}
	return g, nil
}

// SetBaseline gives the graph a load of its config that no component has seen, for reloads to
// compare new configs with (components may keep state in their config structs).
func (g *Graph) SetBaseline(c *config.Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.baseline = c
}

func exportersOf(p *config.Pipeline) []component.ID { return p.Exporters }
func receiversOf(p *config.Pipeline) []component.ID { return p.Receivers }

func (g *Graph) settings(kind component.Kind, id component.ID, pipeline string, signals []batch.Signal) (component.Settings, *tracker) {
	attrs := []any{"kind", kind.String(), "component", id.String()}
	if pipeline != "" {
		attrs = append(attrs, "pipeline", pipeline)
	}
	reg := newTracker(g.tel.Registerer(kind, id, pipeline))
	return component.Settings{
		ID: id, Kind: kind, Pipeline: pipeline,
		Logger:     g.logger.With(attrs...),
		Counters:   g.tel.Counters(kind, id, pipeline, signals),
		Registerer: reg,
		ReportHealth: func(err error) {
			if g.opt.Health != nil {
				g.opt.Health.Degrade(kind.String()+" "+id.String(), err)
			}
		},
	}, reg
}

func (g *Graph) newExporter(cfg *config.Config, id component.ID) (*expNode, error) {
	signals := usedSignals(cfg, id, exportersOf)
	set, reg := g.settings(component.KindExporter, id, "", signals)
	exp, err := g.f.Exporters[id.Type].Create(set, cfg.Exporters[id])
	if err != nil {
		reg.withdraw()
		return nil, fmt.Errorf("create exporter %q: %w", id, err)
	}
	in := countIn{next: exp, c: set.Counters}
	return &expNode{node: node{name: "exporter " + id.String(), comp: exp, reg: reg}, signals: signals,
		gate: &gate{next: in}, in: in}, nil
}

// exporterFanout is a pipeline's hand-off to its exporters, through their gates.
func exporterFanout(cfg *config.Config, pid config.PipelineID, exps map[component.ID]*expNode) component.Consumer {
	var branches []branch
	for _, id := range cfg.Service.Pipelines[pid].Exporters {
		var c component.Consumer = exps[id].gate
		if cfg.AckMode(pid, id) == component.AckEndToEnd {
			c = endToEnd{next: c}
		}
		branches = append(branches, branch{c: c})
	}
	return newFanout(branches)
}

// newPipeline builds a pipeline's processors, last to first so each gets its next consumer,
// and its entry, feeding the gates of exps.
func (g *Graph) newPipeline(cfg *config.Config, pid config.PipelineID, exps map[component.ID]*expNode) (*pipeNode, error) {
	p := cfg.Service.Pipelines[pid]
	pn := &pipeNode{tail: newRoute(exporterFanout(cfg, pid, exps)), reg: newTracker(g.tel.Registry)}
	var next component.Consumer = pn.tail
	for i := len(p.Processors) - 1; i >= 0; i-- {
		id := p.Processors[i]
		fac := g.f.Processors[id.Type]
		set, reg := g.settings(component.KindProcessor, id, pid.String(), []batch.Signal{pid.Signal})
		proc, err := fac.Create(set, cfg.Processors[id], pid.Signal, countOut{next: next, c: set.Counters})
		if err != nil {
			reg.withdraw()
			pn.discard()
			return nil, fmt.Errorf("create processor %q in pipeline %q: %w", id, pid, err)
		}
		pn.mutates = pn.mutates || fac.MutatesData
		pn.procs = slices.Insert(pn.procs, 0, &node{name: fmt.Sprintf("processor %s in %s", id, pid), comp: proc, reg: reg})
		next = countIn{next: proc, c: set.Counters}
	}
	pn.entry = newEntry(g.opt.RingCapacity, g.opt.Workers, next)
	pn.entry.dropAcks = cfg.AcksNone(pid)
	registerRingGauges(pn.reg, pid.String(), pn.entry)
	return pn, nil
}

// receiverTarget is a receiver's consumer for one signal: the fan-out over the pipelines of cfg
// it feeds, acknowledged when one of them carries acknowledgements; nil when none uses it.
func (g *Graph) receiverTarget(cfg *config.Config, pipelines map[config.PipelineID]*pipeNode, id component.ID, sig batch.Signal) component.Consumer {
	var branches []branch
	acks := false
	for _, pid := range sortedPipelines(cfg) {
		if pid.Signal != sig || !slices.Contains(cfg.Service.Pipelines[pid].Receivers, id) {
			continue
		}
		pn := pipelines[pid]
		branches = append(branches, branch{c: pn.entry, mutates: pn.mutates})
		acks = acks || !cfg.AcksNone(pid)
	}
	if len(branches) == 0 {
		return nil
	}
	var c component.Consumer = newFanout(branches)
	if acks {
		c = acknowledge{next: c, obs: g.tel.Acknowledgements(id, sig)}
	}
	return c
}

// newReceiver builds one receiver instance, with a route per signal over the pipelines using it.
func (g *Graph) newReceiver(cfg *config.Config, id component.ID, pipes map[config.PipelineID]*pipeNode) (*rcvNode, error) {
	signals := usedSignals(cfg, id, receiversOf)
	set, reg := g.settings(component.KindReceiver, id, "", signals)
	rn := &rcvNode{signals: signals, routes: map[batch.Signal]*route{}}
	next := map[batch.Signal]component.Consumer{}
	for _, sig := range batch.Signals {
		t := g.receiverTarget(cfg, pipes, id, sig)
		if t == nil {
			continue
		}
		r := newRoute(t)
		rn.routes[sig] = r
		next[sig] = countIn{next: countOut{next: r, c: set.Counters}, c: set.Counters}
	}
	rcv, err := g.f.Receivers[id.Type].Create(set, cfg.Receivers[id], next)
	if err != nil {
		reg.withdraw()
		return nil, fmt.Errorf("create receiver %q: %w", id, err)
	}
	rn.node = node{name: "receiver " + id.String(), comp: rcv, reg: reg}
	return rn, nil
}

// Start starts components downstream-first (exporters, then each pipeline from its last
// processor to its entry, then receivers), so that nothing receives data before everything it
// feeds is running. If one fails, those already started are shut down.
func (g *Graph) Start(ctx context.Context, host component.Host) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.host = host
	var started []func(context.Context) error
	undo := func(err error) error {
		for i := len(started) - 1; i >= 0; i-- {
			if serr := started[i](ctx); serr != nil {
				g.logger.Warn("shutdown after failed start", "error", serr)
			}
		}
		return err
	}
	for _, id := range sortedKeys(g.exporters) {
		n := g.exporters[id]
		if err := g.startNode(ctx, &n.node); err != nil {
			return undo(err)
		}
		started = append(started, n.comp.Shutdown)
	}
	for _, pid := range sortedKeys(g.pipelines) {
		pn := g.pipelines[pid]
		if err := g.startPipeline(ctx, pn); err != nil {
			return undo(err)
		}
		started = append(started, func(ctx context.Context) error { return pn.shutdown(ctx, g.logger) })
	}
	for _, id := range sortedKeys(g.receivers) {
		n := g.receivers[id]
		if err := g.startNode(ctx, &n.node); err != nil {
			return undo(err)
		}
		started = append(started, n.comp.Shutdown)
	}
	g.started = true
	return nil
}

func (g *Graph) startNode(ctx context.Context, n *node) error {
	g.logger.Debug("starting", "component", n.name)
	if err := n.comp.Start(ctx, g.host); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	return nil
}

// startPipeline starts the processors last to first, then the workers.
func (g *Graph) startPipeline(ctx context.Context, pn *pipeNode) error {
	for i := len(pn.procs) - 1; i >= 0; i-- {
		if err := g.startNode(ctx, pn.procs[i]); err != nil {
			for _, p := range pn.procs[i+1:] {
				_ = p.comp.Shutdown(ctx)
			}
			return err
		}
	}
	pn.entry.start()
	return nil
}

// shutdown stops taking batches, lets the workers finish, then stops the processors first to
// last (each flushes what it holds into the next).
func (pn *pipeNode) shutdown(ctx context.Context, logger *slog.Logger) error {
	var errs []error
	if err := pn.entry.shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, p := range pn.procs {
		logger.Debug("stopping", "component", p.name)
		if err := p.comp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// discard releases a pipeline that was built but never started.
func (pn *pipeNode) discard() {
	for _, p := range pn.procs {
		_ = p.comp.Shutdown(context.Background())
		p.reg.withdraw()
	}
	pn.reg.withdraw()
}

// discard releases everything built (Build failed part way).
func (g *Graph) discard() {
	for _, n := range g.receivers {
		_ = n.comp.Shutdown(context.Background())
		n.reg.withdraw()
	}
	for _, pn := range g.pipelines {
		pn.discard()
	}
	for _, n := range g.exporters {
		_ = n.comp.Shutdown(context.Background())
		n.reg.withdraw()
	}
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
	g.mu.Lock()
	defer g.mu.Unlock()
	g.started = false
	var errs []error
	deadline, bounded := ctx.Deadline()
	receiversBy := time.Now().Add(time.Until(deadline) / 2)
	for _, id := range sortedKeys(g.receivers) {
		n := g.receivers[id]
		g.logger.Debug("stopping", "component", n.name)
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			sctx, cancel = context.WithDeadline(ctx, receiversBy)
		}
		err := n.comp.Shutdown(sctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", n.name, err))
		}
	}
	for _, pid := range sortedKeys(g.pipelines) {
		if err := g.pipelines[pid].shutdown(ctx, g.logger); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", pid, err))
		}
	}
	for _, id := range sortedKeys(g.exporters) {
		n := g.exporters[id]
		g.logger.Debug("stopping", "component", n.name)
		if err := n.comp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

type stringer interface {
	comparable
	String() string
}

func sortedKeys[K stringer, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

func sortedPipelines(cfg *config.Config) []config.PipelineID {
	return sortedKeys(cfg.Service.Pipelines)
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

// usedSignals lists the signals of the pipelines that name id, in batch.Signals order.
func usedSignals(cfg *config.Config, id component.ID, list func(*config.Pipeline) []component.ID) []batch.Signal {
	var out []batch.Signal
	for pid, p := range cfg.Service.Pipelines {
		if slices.Contains(list(p), id) && !slices.Contains(out, pid.Signal) {
			out = append(out, pid.Signal)
		}
	}
	slices.Sort(out)
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
