package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// errRemoved answers a batch that reaches an exporter a reload removed (it was on its way
// through a pipeline's old fan-out): the sender may retry, and its retry takes the new routes.
var errRemoved = errors.New("exporter removed by a config reload")

// Change says what a reload did to one component or pipeline.
type Change struct {
	What   string // "receiver otlp", "pipeline traces", "exporter otlp/jaeger"
	Action string // added, replaced, removed (unchanged ones are not listed)
}

func (c Change) String() string { return c.What + ": " + c.Action }

// plan is what a reload builds before it changes anything.
type plan struct {
	cfg, base *config.Config
	exps      map[component.ID]*expNode       // the exporters after the reload (kept ones are the running nodes)
	pipes     map[config.PipelineID]*pipeNode // the pipelines after the reload
	rcvs      map[component.ID]*rcvNode       // the receivers after the reload
	newExp    []component.ID                  // added
	replExp   []component.ID                  // replaced (the old node is in g.exporters)
	newPipe   []config.PipelineID             // added or replaced
	newRcv    []component.ID                  // added or replaced
	withdrawn []*tracker                      // metrics of replaced components, taken away
	changes   []Change
}

// Reload applies cfg to the running graph and rebuilds only what changed; base is a second load
// of the same file that no component has seen, which the next reload compares with. cfg has
// passed config.Load's validation. If the new components cannot be built or started, nothing
// changed and the error says why. Data in flight is not dropped (docs/reload.md).
func (g *Graph) Reload(ctx context.Context, cfg, base *config.Config) ([]Change, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started {
		return nil, errors.New("the pipelines are not running")
	}
	p, err := g.prepare(cfg, base)
	if err != nil {
		return nil, err
	}
	if err := g.startNew(ctx, p); err != nil {
		g.rollback(p)
		return nil, err
	}
	errs := g.switchOver(ctx, p)
	return p.changes, errors.Join(errs...)
}

func (g *Graph) current() *config.Config {
	if g.baseline != nil {
		return g.baseline
	}
	return g.cfg
}

// prepare builds, without starting them, the components of cfg that differ from the running
// ones. On failure everything it built is released and the running graph is as it was.
func (g *Graph) prepare(cfg, base *config.Config) (*plan, error) {
	old := g.current()
	p := &plan{cfg: cfg, base: base, exps: map[component.ID]*expNode{}, pipes: map[config.PipelineID]*pipeNode{}, rcvs: map[component.ID]*rcvNode{}}
	fail := func(err error) (*plan, error) {
		g.rollback(p)
		return nil, err
	}
	for _, id := range usedIDs(cfg, exportersOf) {
		cur, running := g.exporters[id]
		if running && reflect.DeepEqual(old.Exporters[id], base.Exporters[id]) &&
			slices.Equal(cur.signals, usedSignals(cfg, id, exportersOf)) {
			p.exps[id] = cur
			continue
		}
		if running {
			p.withdraw(cur.reg)
		}
		n, err := g.newExporter(cfg, id)
		if err != nil {
			return fail(err)
		}
		p.exps[id] = n
		if running {
			n.gate = cur.gate // pipelines keep their hand-off; it opens onto n once cur stopped
			p.replExp = append(p.replExp, id)
			p.changes = append(p.changes, Change{n.name, "replaced"})
		} else {
			p.newExp = append(p.newExp, id)
			p.changes = append(p.changes, Change{n.name, "added"})
		}
	}
	for _, pid := range sortedPipelines(cfg) {
		cur, running := g.pipelines[pid]
		if running && samePipeline(old, base, pid) {
			p.pipes[pid] = cur
			continue
		}
		if running {
			for _, n := range cur.procs {
				p.withdraw(n.reg)
			}
			p.withdraw(cur.reg)
		}
		pn, err := g.newPipeline(cfg, pid, p.exps)
		if err != nil {
			return fail(err)
		}
		p.pipes[pid] = pn
		p.newPipe = append(p.newPipe, pid)
		p.changes = append(p.changes, Change{"pipeline " + pid.String(), action(running)})
	}
	for _, id := range usedIDs(cfg, receiversOf) {
		cur, running := g.receivers[id]
		if running && reflect.DeepEqual(old.Receivers[id], base.Receivers[id]) &&
			slices.Equal(cur.signals, usedSignals(cfg, id, receiversOf)) {
			p.rcvs[id] = cur
			continue
		}
		if running {
			p.withdraw(cur.reg)
		}
		n, err := g.newReceiver(cfg, id, p.pipes)
		if err != nil {
			return fail(err)
		}
		p.rcvs[id] = n
		p.newRcv = append(p.newRcv, id)
		p.changes = append(p.changes, Change{n.name, action(running)})
	}
	for _, id := range sortedKeys(g.receivers) {
		if _, ok := p.rcvs[id]; !ok {
			p.changes = append(p.changes, Change{g.receivers[id].name, "removed"})
		}
	}
	for _, pid := range sortedKeys(g.pipelines) {
		if _, ok := p.pipes[pid]; !ok {
			p.changes = append(p.changes, Change{"pipeline " + pid.String(), "removed"})
		}
	}
	for _, id := range sortedKeys(g.exporters) {
		if _, ok := p.exps[id]; !ok {
			p.changes = append(p.changes, Change{g.exporters[id].name, "removed"})
		}
	}
	return p, nil
}

// withdraw takes a replaced component's metrics away before its successor registers the same
// names; rollback gives them back.
func (p *plan) withdraw(r *tracker) {
	r.withdraw()
	p.withdrawn = append(p.withdrawn, r)
}

func action(replacing bool) string {
	if replacing {
		return "replaced"
	}
	return "added"
}

// samePipeline: the same processors, in the same order, with equal configs, and the same
// acknowledgement mode. Its exporters may differ: the tail's route is switched.
func samePipeline(old, base *config.Config, pid config.PipelineID) bool {
	a, b := old.Service.Pipelines[pid], base.Service.Pipelines[pid]
	if a == nil || b == nil || !slices.Equal(a.Processors, b.Processors) || old.AcksNone(pid) != base.AcksNone(pid) {
		return false
	}
	for _, id := range a.Processors {
		if !reflect.DeepEqual(old.Processors[id], base.Processors[id]) {
			return false
		}
	}
	return true
}

// rollback releases what prepare built and gives the replaced components their metrics back.
func (g *Graph) rollback(p *plan) {
	for _, id := range p.newRcv {
		n := p.rcvs[id]
		_ = n.comp.Shutdown(context.Background())
		n.reg.withdraw()
	}
	for _, pid := range p.newPipe {
		p.pipes[pid].discard()
	}
	for _, id := range slices.Concat(p.newExp, p.replExp) {
		n := p.exps[id]
		_ = n.comp.Shutdown(context.Background())
		n.reg.withdraw()
	}
	for _, r := range p.withdrawn {
		r.restore()
	}
}

// startNew starts what no data reaches yet: added exporters, then added and replaced pipelines
// (they feed the exporters' gates), then added receivers on new ports. A failure stops what it
// started; the running graph is untouched.
func (g *Graph) startNew(ctx context.Context, p *plan) error {
	var started []func(context.Context) error
	undo := func(err error) error {
		for i := len(started) - 1; i >= 0; i-- {
			_ = started[i](ctx)
		}
		return err
	}
	for _, id := range p.newExp {
		n := p.exps[id]
		if err := g.startNode(ctx, &n.node); err != nil {
			return undo(err)
		}
		started = append(started, n.comp.Shutdown)
	}
	for _, pid := range p.newPipe {
		pn := p.pipes[pid]
		if err := g.startPipeline(ctx, pn); err != nil {
			return undo(fmt.Errorf("pipeline %s: %w", pid, err))
		}
		started = append(started, func(ctx context.Context) error { return pn.shutdown(ctx, g.logger) })
	}
	for _, id := range p.newRcv {
		if _, replacing := g.receivers[id]; replacing {
			continue // started once the old one released its listener (switchOver)
		}
		n := p.rcvs[id]
		if err := g.startNode(ctx, &n.node); err != nil {
			return undo(err)
		}
		started = append(started, n.comp.Shutdown)
	}
	return nil
}

// switchOver moves the data to the new graph and stops what it replaced. From here the reload
// goes through: a replacement that fails to start is replaced by its old config again, and if
// that fails too the agent is told it cannot go on.
func (g *Graph) switchOver(ctx context.Context, p *plan) []error {
	var errs []error
	oldCfg := g.cfg
	// Exporters: close the gate, stop the old one, start the new one, open onto it.
	for _, id := range p.replExp {
		old, n := g.exporters[id], p.exps[id]
		if err := n.gate.close(ctx); err != nil {
			// Batches inside did not finish in time: keep the old instance rather than stop it
			// under them.
			errs = append(errs, fmt.Errorf("%s not replaced: waiting for the batches it is sending: %w", n.name, err))
			_ = n.comp.Shutdown(ctx)
			n.reg.withdraw()
			old.reg.restore()
			p.exps[id] = old
			continue
		}
		if err := old.comp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", old.name, err))
		}
		if err := g.startNode(ctx, &n.node); err != nil {
			errs = append(errs, err)
			n.reg.withdraw()
			if back, berr := g.restartExporter(ctx, oldCfg, id); berr == nil {
				g.logger.Error("reload: the new exporter did not start; running its previous config", "component", n.name, "error", err)
				p.exps[id], n = back, back
				n.gate = old.gate
			} else {
				g.host.ReportFatal(fmt.Errorf("%s: neither the new nor the previous config starts: %w", n.name, errors.Join(err, berr)))
				n.in = component.ConsumerFunc(func(context.Context, *batch.Batch) error {
					return consumererror.NewRetryable(fmt.Errorf("%s is not running", n.name), time.Second)
				})
			}
		}
		n.gate.open(n.in)
	}
	// Pipelines that stay: their exporters may have changed.
	for pid, pn := range p.pipes {
		if !slices.Contains(p.newPipe, pid) {
			pn.tail.set(exporterFanout(p.cfg, pid, p.exps))
		}
	}
	// Receivers: kept ones are switched to the new pipelines; replaced ones restarted.
	for _, id := range sortedKeys(p.rcvs) {
		n := p.rcvs[id]
		old, running := g.receivers[id]
		switch {
		case running && old == n:
			for sig, r := range n.routes {
				r.set(g.receiverTarget(p.cfg, p.pipes, id, sig))
			}
		case running:
			if err := g.stopReceiver(ctx, old); err != nil {
				errs = append(errs, err)
			}
			if err := g.startNode(ctx, &n.node); err != nil {
				errs = append(errs, err)
				n.reg.withdraw()
				back, berr := g.restartReceiver(ctx, oldCfg, p, id)
				if berr != nil {
					g.host.ReportFatal(fmt.Errorf("%s: neither the new nor the previous config starts: %w", n.name, errors.Join(err, berr)))
					delete(p.rcvs, id)
					continue
				}
				g.logger.Error("reload: the new receiver did not start; running its previous config", "component", n.name, "error", err)
				p.rcvs[id] = back
			}
		}
	}
	for _, id := range sortedKeys(g.receivers) {
		if _, ok := p.rcvs[id]; !ok {
			if err := g.stopReceiver(ctx, g.receivers[id]); err != nil {
				errs = append(errs, err)
			}
			g.receivers[id].reg.withdraw()
		}
	}
	// Old pipelines drain into the exporters and stop; a batch that still reaches a replaced
	// one goes to its successor.
	for _, pid := range sortedKeys(g.pipelines) {
		pn := g.pipelines[pid]
		if p.pipes[pid] == pn {
			continue
		}
		if next, ok := p.pipes[pid]; ok {
			pn.entry.successor.Store(next.entry)
		} else {
			pn.reg.withdraw()
			for _, n := range pn.procs {
				n.reg.withdraw()
			}
		}
		if err := pn.shutdown(ctx, g.logger); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s (old): %w", pid, err))
		}
	}
	// Removed exporters last, once nothing drains into them.
	for _, id := range sortedKeys(g.exporters) {
		if _, ok := p.exps[id]; ok {
			continue
		}
		n := g.exporters[id]
		if err := n.gate.close(ctx); err == nil {
			n.gate.open(component.ConsumerFunc(func(context.Context, *batch.Batch) error {
				return consumererror.NewRetryable(errRemoved, 0)
			}))
		}
		if err := n.comp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", n.name, err))
		}
		n.reg.withdraw()
	}
	g.cfg, g.baseline = p.cfg, p.base
	g.exporters, g.pipelines, g.receivers = p.exps, p.pipes, p.rcvs
	return errs
}

// stopReceiver stops a receiver within half of what is left of ctx (as Shutdown does).
func (g *Graph) stopReceiver(ctx context.Context, n *rcvNode) error {
	sctx, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		sctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
	}
	defer cancel()
	if err := n.comp.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", n.name, err)
	}
	return nil
}

// restartExporter builds and starts exporter id from the config that ran before the reload.
func (g *Graph) restartExporter(ctx context.Context, old *config.Config, id component.ID) (*expNode, error) {
	n, err := g.newExporter(old, id)
	if err != nil {
		return nil, err
	}
	if err := g.startNode(ctx, &n.node); err != nil {
		n.reg.withdraw()
		return nil, err
	}
	return n, nil
}

// restartReceiver builds and starts receiver id with its config from before the reload, feeding
// the new pipelines.
func (g *Graph) restartReceiver(ctx context.Context, old *config.Config, p *plan, id component.ID) (*rcvNode, error) {
	mixed := *p.cfg
	mixed.Receivers = maps.Clone(p.cfg.Receivers)
	mixed.Receivers[id] = old.Receivers[id]
	n, err := g.newReceiver(&mixed, id, p.pipes)
	if err != nil {
		return nil, err
	}
	if err := g.startNode(ctx, &n.node); err != nil {
		n.reg.withdraw()
		return nil, err
	}
	return n, nil
}
