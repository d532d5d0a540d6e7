package relabel

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/vigilhq/vigil/internal/ratelog"

	"github.com/prometheus/prometheus/model/labels"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/promrw"
)

// logEvery bounds how often a recurring problem (malformed series, a rename onto a metric of
// another type) is logged: it recurs with every batch of the same data.
const logEvery = 10 * time.Second

// processor applies the rules to each batch and passes the result on.
type processor struct {
	set   component.Settings
	next  component.Consumer
	rules []*promrelabel.Config
	// states holds per-call scratch (label builders, staging metrics), so that concurrent
	// Consume calls share nothing and a call allocates nothing for series the rules leave alone.
	states sync.Pool
	warn   ratelog.Limiter
}

var _ component.Processor = (*processor)(nil)

func newProcessor(set component.Settings, cfg *Config, next component.Consumer) *processor {
	p := &processor{set: set, next: next, rules: cfg.MetricRelabelConfigs, warn: ratelog.Limiter{Every: logEvery}}
	p.states.New = func() any { return &state{lb: labels.NewBuilder(labels.EmptyLabels())} }
	return p
}

// Start does nothing: the processor has no background work.
func (p *processor) Start(context.Context, component.Host) error { return nil }

// Shutdown does nothing: nothing is held between calls.
func (p *processor) Shutdown(context.Context) error { return nil }

// Consume relabels b and passes it on. A batch whose every item was dropped is not passed on.
func (p *processor) Consume(ctx context.Context, b *batch.Batch) error {
	if len(p.rules) == 0 {
		return p.next.Consume(ctx, b)
	}
	st := p.states.Get().(*state)
	defer p.states.Put(st)
	defer st.release()
	if body, ok := b.PromRW(); ok {
		out, dropped, err := p.relabelRW(st, body)
		if err != nil {
			return consumererror.NewPermanent(fmt.Errorf("%s: %w", p.set.ID, err))
		}
		if out == nil {
			return p.next.Consume(ctx, b) // nothing changed: forward the same bytes
		}
		if dropped > 0 {
			p.set.Counters.Add(component.Dropped, batch.Metrics, dropped)
		}
		items := b.Items() - dropped
		if items <= 0 && dropped > 0 {
			return nil
		}
		nb := batch.FromPromRWTrusted(out, items)
		nb.SetAcks(b.Acks()) // the new body carries the old one's requests
		return p.next.Consume(ctx, nb)
	}
	return p.consumePData(ctx, st, b)
}

// state is one Consume call's scratch space.
type state struct {
	sc promrw.Scanner
	sb labels.ScratchBuilder
	lb *labels.Builder
	in labels.Labels // the series' labels before the rules, in sb's reused buffer
	// maxAdded is the most labels sb held during the call, to clear the strings it still
	// references (they point into the caller's batch) before the state goes back to the pool.
	maxAdded int
	pd       pdataScratch
}

// release drops the state's references into the batch just processed, so that a pooled state
// does not keep a whole request body alive.
func (st *state) release() {
	st.sb.Reset()
	for range st.maxAdded {
		st.sb.Add("", "")
	}
	st.sb.Reset()
	st.maxAdded = 0
	st.in = labels.EmptyLabels()
	st.lb.Reset(labels.EmptyLabels())
	st.pd.reset()
}

// yolo views b as a string without copying. The bytes belong to a batch, which is immutable, and
// the strings only live until the labels are rebuilt for the next series (ScratchBuilder copies).
func yolo(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// loadSeries reads a series' labels into st.in. ok is false when the labels are malformed,
// which only an unvalidated (trusted) body can carry.
func (st *state) loadSeries(s promrw.SeriesV1) (err error) {
	st.sb.Reset()
	it := s.Labels()
	n, sorted := 0, true
	var prev []byte
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		if n > 0 && string(name) <= string(prev) {
			sorted = false
		}
		prev = name
		st.sb.Add(yolo(name), yolo(value))
		n++
	}
	if err := it.Err(); err != nil {
		return err
	}
	st.maxAdded = max(st.maxAdded, n)
	if !sorted {
		// Remote write requires sorted labels and the receivers check it; Vigil-built bodies
		// are sorted too. This keeps labels.Labels' invariant should one slip through.
		st.sb.Sort()
	}
	st.sb.Overwrite(&st.in)
	return nil
}

// apply runs the rules on st.in. It returns keep=false for a series to drop (a rule dropped it,
// or it lost every label or its name, which Prometheus refuses to store), and changed=false when
// the labels are as before.
func (p *processor) apply(st *state) (res labels.Labels, keep, changed bool) {
	st.lb.Reset(st.in)
	if !promrelabel.ProcessBuilder(st.lb, p.rules...) {
		return labels.EmptyLabels(), false, true
	}
	res = st.lb.Labels()
	if labels.Equal(res, st.in) {
		return res, true, false
	}
	if res.Get(model.MetricNameLabel) == "" {
		return labels.EmptyLabels(), false, true
	}
	return res, true, true
}

// relabelRW relabels a remote-write body series by series. Runs of series the rules leave alone
// (and metadata between them) are copied as byte ranges; a changed series is re-encoded with its
// new labels and its other fields copied as they are; a dropped one is left out. out is nil when
// nothing changed, so the caller can forward the original batch. dropped counts the samples and
// histogram samples of the dropped series.
func (p *processor) relabelRW(st *state, body []byte) (out []byte, dropped int, err error) {
	st.sc.Trusted = true // receivers validated client bodies; Vigil built the others
	run := 0             // start of the bytes not yet copied to out
	err = st.sc.ScanV1(body, func(s promrw.SeriesV1) error {
		res, keep, changed := labels.EmptyLabels(), false, true
		if lerr := st.loadSeries(s); lerr != nil {
			p.warn.Warn(p.set.Logger, "malformed series labels; series dropped", "error", lerr, "items", s.Samples+s.Histograms)
		} else {
			res, keep, changed = p.apply(st)
		}
		if !changed {
			return nil
		}
		if out == nil {
			out = make([]byte, 0, len(body)+len(body)/8)
		}
		out = append(out, body[run:s.Start]...)
		run = s.End
		if keep {
			var ok bool
			if out, ok = appendSeries(out, res, s.Raw); ok {
				return nil
			}
			p.warn.Warn(p.set.Logger, "malformed series fields; series dropped", "items", s.Samples+s.Histograms)
		}
		dropped += s.Samples + s.Histograms
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("relabel remote write: %w", err)
	}
	if out != nil {
		out = append(out, body[run:]...)
	}
	return out, dropped, nil
}

// Field numbers of prometheus.TimeSeries and prometheus.Label (remote write 1.0).
const (
	seriesLabels = 1
	labelName    = 1
	labelValue   = 2
)

func labelSize(name, value string) int {
	return 1 + protowire.SizeBytes(len(name)) + 1 + protowire.SizeBytes(len(value))
}

// appendSeries appends a timeseries field with the labels ls and every other field of raw (a
// TimeSeries message: samples, exemplars, histograms) copied byte for byte. ok is false if raw's
// framing is broken.
func appendSeries(dst []byte, ls labels.Labels, raw []byte) (_ []byte, ok bool) {
	size := 0
	ls.Range(func(l labels.Label) {
		size += 1 + protowire.SizeBytes(labelSize(l.Name, l.Value))
	})
	for b := raw; len(b) > 0; {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return dst, false
		}
		if num != seriesLabels {
			size += n
		}
		b = b[n:]
	}
	dst = protowire.AppendTag(dst, 1, protowire.BytesType) // WriteRequest.timeseries
	dst = protowire.AppendVarint(dst, uint64(size))
	ls.Range(func(l labels.Label) {
		dst = protowire.AppendTag(dst, seriesLabels, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(labelSize(l.Name, l.Value)))
		dst = protowire.AppendTag(dst, labelName, protowire.BytesType)
		dst = protowire.AppendString(dst, l.Name)
		dst = protowire.AppendTag(dst, labelValue, protowire.BytesType)
		dst = protowire.AppendString(dst, l.Value)
	})
	for b := raw; len(b) > 0; {
		num, _, n := protowire.ConsumeField(b)
		if num != seriesLabels {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst, true
}
