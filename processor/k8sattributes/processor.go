package k8sattributes

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/server"
)

// deleteGrace is how long a deleted pod stays findable.
const deleteGrace = 2 * time.Minute

// watcher feeds a store from the API server until ctx ends; synced is closed after the first
// full list. Built only with Kubernetes support (watch.go).
type watcher interface {
	run(ctx context.Context, s *store, synced chan<- struct{}) error
}

// shared is the pod index of one processor ID: every pipeline using the ID gets its own
// processor instance, and they share one watch and one index.
type shared struct {
	refs   int
	store  *store
	cancel context.CancelFunc
	done   chan struct{}
	synced chan struct{}
	gauge  prometheus.Collector
}

var (
	sharedMu sync.Mutex
	indexes  = map[component.ID]*shared{}
)

type processor struct {
	set     component.Settings
	cfg     *Config
	next    component.Consumer
	newW    func(*Config, *slog.Logger) (watcher, error)
	now     func() time.Time
	sh      *shared
	matched prometheus.Counter
	missed  prometheus.Counter
	refused prometheus.Counter
	started bool
}

var _ component.Processor = (*processor)(nil)

func newProcessor(set component.Settings, cfg *Config, next component.Consumer, newW func(*Config, *slog.Logger) (watcher, error)) (*processor, error) {
	p := &processor{set: set, cfg: cfg, next: next, newW: newW, now: time.Now}
	p.matched = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_k8s_attributes_resources_matched_total",
		Help: "Resources given the metadata of the pod they came from.",
	})
	p.missed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_k8s_attributes_resources_unmatched_total",
		Help: "Resources for which no known pod was found (no association source, or a pod not (yet) indexed).",
	})
	p.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_k8s_attributes_pods_refused_total",
		Help: "Pods not indexed because the index held max_pods already.",
	})
	if set.Registerer != nil {
		for _, c := range []prometheus.Collector{p.matched, p.missed, p.refused} {
			if err := set.Registerer.Register(c); err != nil {
				if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
					// Another pipeline's instance of the same ID: share its counters.
					switch c {
					case p.matched:
						p.matched = are.ExistingCollector.(prometheus.Counter)
					case p.missed:
						p.missed = are.ExistingCollector.(prometheus.Counter)
					default:
						p.refused = are.ExistingCollector.(prometheus.Counter)
					}
					continue
				}
				return nil, err
			}
		}
	}
	return p, nil
}

// Start starts (or joins) the watch of pods for this processor ID and, with wait_for_metadata,
// waits for the first list of pods.
func (p *processor) Start(ctx context.Context, _ component.Host) error {
	sharedMu.Lock()
	sh := indexes[p.set.ID]
	if sh == nil {
		w, err := p.newW(p.cfg, p.set.Logger)
		if err != nil {
			sharedMu.Unlock()
			return fmt.Errorf("%s: %w", p.set.ID, err)
		}
		refused := p.refused
		sh = &shared{
			store:  newStore(p.cfg, deleteGrace, p.now, refused.Inc),
			done:   make(chan struct{}),
			synced: make(chan struct{}),
		}
		wctx, cancel := context.WithCancel(context.Background())
		sh.cancel = cancel
		go func() {
			defer close(sh.done)
			stop := make(chan struct{})
			defer close(stop)
			go sweep(sh.store, stop)
			if err := w.run(wctx, sh.store, sh.synced); err != nil && wctx.Err() == nil {
				p.set.Logger.Error("pod watch ended; resources get no new metadata", "err", err)
				if p.set.ReportHealth != nil {
					p.set.ReportHealth(fmt.Errorf("pod watch: %w", err))
				}
			}
		}()
		if p.set.Registerer != nil {
			st := sh.store
			g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "vigil_k8s_attributes_pods",
				Help: "Pods in the index, deleted ones still in their grace period included.",
			}, func() float64 { return float64(st.len()) })
			if p.set.Registerer.Register(g) == nil {
				sh.gauge = g
			}
		}
		indexes[p.set.ID] = sh
	}
	sh.refs++
	p.sh = sh
	p.started = true
	sharedMu.Unlock()

	if p.cfg.WaitForMetadata > 0 {
		t := time.NewTimer(p.cfg.WaitForMetadata)
		defer t.Stop()
		select {
		case <-sh.synced:
		case <-t.C:
			return fmt.Errorf("%s: no list of pods from the API server within wait_for_metadata (%s)", p.set.ID, p.cfg.WaitForMetadata)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Shutdown leaves the shared watch; the last instance stops it.
func (p *processor) Shutdown(ctx context.Context) error {
	sharedMu.Lock()
	if !p.started {
		sharedMu.Unlock()
		return nil
	}
	p.started = false
	sh := p.sh
	sh.refs--
	last := sh.refs == 0
	if last {
		delete(indexes, p.set.ID)
	}
	sharedMu.Unlock()
	if !last {
		return nil
	}
	sh.cancel()
	if sh.gauge != nil {
		p.set.Registerer.Unregister(sh.gauge)
	}
	select {
	case <-sh.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Consume adds pod metadata to the resources it can place and passes the batch on. A batch none
// of whose resources matches a pod goes on untouched (its encoded form kept). Remote-write bodies
// carry no resources and pass as they are.
func (p *processor) Consume(ctx context.Context, b *batch.Batch) error {
	if b.IsPromRW() || p.sh == nil {
		return p.next.Consume(ctx, b)
	}
	conn, hasConn := server.ClientAddr(ctx)
	var found []*entry
	var changed bool
	look := func(i int, res pcommon.Resource) {
		e := p.find(res.Attributes(), conn, hasConn)
		if e != nil && missing(res.Attributes(), e) {
			if found == nil {
				found = make([]*entry, i, i+1)
			}
			changed = true
		}
		if found != nil {
			found = append(found, e)
		}
		if e != nil {
			p.matched.Inc()
		} else {
			p.missed.Inc()
		}
	}
	if err := p.scan(b, look); err != nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", p.set.ID, err))
	}
	if !changed {
		return p.next.Consume(ctx, b)
	}
	apply := func(i int, res pcommon.Resource) {
		if i < len(found) && found[i] != nil {
			a := res.Attributes()
			for _, kv := range found[i].attrs {
				if _, ok := a.Get(kv.key); !ok {
					a.PutStr(kv.key, kv.value)
				}
			}
		}
	}
	if err := p.mutate(b, apply); err != nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: %w", p.set.ID, err))
	}
	return p.next.Consume(ctx, b)
}

// sweep drops deleted pods whose grace period is over, until stop closes.
func sweep(s *store, stop <-chan struct{}) {
	t := time.NewTicker(deleteGrace / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// find is the pod of a resource: the first association source that names a known pod.
func (p *processor) find(a pcommon.Map, conn netip.Addr, hasConn bool) *entry {
	for _, as := range p.cfg.PodAssociation {
		switch as.From {
		case "connection":
			if hasConn {
				if e := p.sh.store.byPodIP(conn.String()); e != nil {
					return e
				}
			}
		case "resource_attribute":
			v, ok := a.Get(as.Name)
			if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
				continue
			}
			var e *entry
			if as.Name == PodUID {
				e = p.sh.store.byPodUID(v.Str())
			} else if ip, err := netip.ParseAddr(v.Str()); err == nil {
				e = p.sh.store.byPodIP(ip.Unmap().String())
			}
			if e != nil {
				return e
			}
		}
	}
	return nil
}

// missing reports whether e adds anything a lacks.
func missing(a pcommon.Map, e *entry) bool {
	for _, kv := range e.attrs {
		if _, ok := a.Get(kv.key); !ok {
			return true
		}
	}
	return false
}

// scan calls f with each resource of b, read-only.
func (p *processor) scan(b *batch.Batch, f func(int, pcommon.Resource)) error {
	switch b.Signal() {
	case batch.Traces:
		td, err := b.Traces()
		if err != nil {
			return err
		}
		for i := range td.ResourceSpans().Len() {
			f(i, td.ResourceSpans().At(i).Resource())
		}
	case batch.Metrics:
		md, err := b.Metrics()
		if err != nil {
			return err
		}
		for i := range md.ResourceMetrics().Len() {
			f(i, md.ResourceMetrics().At(i).Resource())
		}
	default:
		ld, err := b.Logs()
		if err != nil {
			return err
		}
		for i := range ld.ResourceLogs().Len() {
			f(i, ld.ResourceLogs().At(i).Resource())
		}
	}
	return nil
}

// mutate calls f with each resource of b, writable.
func (p *processor) mutate(b *batch.Batch, f func(int, pcommon.Resource)) error {
	switch b.Signal() {
	case batch.Traces:
		td, err := b.MutableTraces()
		if err != nil {
			return err
		}
		for i := range td.ResourceSpans().Len() {
			f(i, td.ResourceSpans().At(i).Resource())
		}
	case batch.Metrics:
		md, err := b.MutableMetrics()
		if err != nil {
			return err
		}
		for i := range md.ResourceMetrics().Len() {
			f(i, md.ResourceMetrics().At(i).Resource())
		}
	default:
		ld, err := b.MutableLogs()
		if err != nil {
			return err
		}
		for i := range ld.ResourceLogs().Len() {
			f(i, ld.ResourceLogs().At(i).Resource())
		}
	}
	return nil
}
