package promconv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/promrw"
)

// Body is a remote-write 1.0 request body (before snappy) and what it holds.
type Body struct {
	Bytes  []byte
	Counts promrw.Counts
}

// Items is what a batch made from the body counts: samples plus histogram samples.
func (b Body) Items() int { return b.Counts.Samples + b.Counts.Histograms }

// CommitFunc receives the body an Appender built when its user commits. The body is the
// callee's to keep.
type CommitFunc func(ctx context.Context, b Body) error

// Appendable hands out Appenders that call commit with what was appended. It implements the
// upstream storage.AppendableV2, which the scrape manager writes to.
type Appendable struct {
	Commit CommitFunc
}

// AppenderV2 implements storage.AppendableV2.
func (a Appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &Appender{ctx: ctx, commit: a.Commit}
}

// Appender encodes every appended sample as one 1.0 TimeSeries (labels, the sample or native
// histogram, its exemplars) and the metadata of each metric family once, in a body handed to
// the CommitFunc on Commit. It is not safe for concurrent use, like every upstream appender.
type Appender struct {
	ctx    context.Context
	commit CommitFunc

	body   []byte
	counts promrw.Counts
	enc    promrw.SeriesEncoder
	meta   map[string]struct{}
	metaB  []byte
	exLbl  []string
	hist   prompb.Histogram
	histB  []byte
}

// NewAppender returns an appender that calls commit on Commit (commit may be nil, for Take).
func NewAppender(ctx context.Context, commit CommitFunc) *Appender {
	return &Appender{ctx: ctx, commit: commit}
}

var _ storage.AppenderV2 = (*Appender)(nil)

// Append implements storage.AppenderV2.
func (a *Appender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if err := checkLabels(ls); err != nil {
		return 0, err
	}
	a.enc.Reset()
	ls.Range(func(l labels.Label) {
		if l.Value != "" { // an empty value is no label, as in Prometheus's storage
			a.enc.Label(l.Name, l.Value)
		}
	})
	switch {
	case h != nil || fh != nil:
		if h != nil {
			a.hist = prompb.FromIntHistogram(t, h)
		} else {
			a.hist = prompb.FromFloatHistogram(t, fh)
		}
		n := a.hist.Size()
		if cap(a.histB) < n {
			a.histB = make([]byte, n)
		}
		a.histB = a.histB[:n]
		if _, err := a.hist.MarshalToSizedBuffer(a.histB); err != nil {
			return 0, fmt.Errorf("encode histogram: %w", err)
		}
		a.enc.Histogram(a.histB)
		a.counts.Histograms++
	default:
		a.enc.Sample(v, t)
		a.counts.Samples++
	}
	for _, ex := range opts.Exemplars {
		a.exLbl = a.exLbl[:0]
		ex.Labels.Range(func(l labels.Label) { a.exLbl = append(a.exLbl, l.Name, l.Value) })
		ts := ex.Ts
		if !ex.HasTs {
			ts = t
		}
		a.enc.Exemplar(a.exLbl, ex.Value, ts)
		a.counts.Exemplars++
	}
	a.body = a.enc.AppendTo(a.body)
	a.counts.Series++

	// The scrape loop names the families of its own series (up, scrape_duration_seconds, …) with
	// its cache key, the name plus a 0xff byte; written as is, the metadata would not be UTF-8
	// and strict decoders would refuse the whole request.
	if fam := strings.TrimSuffix(opts.MetricFamilyName, "\xff"); fam != "" && !opts.Metadata.IsEmpty() {
		if _, seen := a.meta[fam]; !seen {
			if a.meta == nil {
				a.meta = make(map[string]struct{})
			}
			// The scrape loop passes the family name as a string over its parse buffer, valid
			// only during this call: the key must be a copy.
			a.meta[strings.Clone(fam)] = struct{}{}
			a.metaB = promrw.AppendMetadata(a.metaB, int(prompb.FromMetadataType(opts.Metadata.Type)),
				fam, opts.Metadata.Help, opts.Metadata.Unit)
		}
	}
	// Any non-zero reference will do: Vigil keeps no series index, and the scrape cache only
	// needs to know the append succeeded.
	ref := storage.SeriesRef(ls.Hash())
	if ref == 0 {
		ref = 1
	}
	return ref, nil
}

// ErrInvalidSample is wrapped by the errors of series Prometheus's storage would refuse. The
// scrape loop fails a scrape on such an error (up is 0, nothing of it is sent), as it does when
// Prometheus's head refuses an append.
var ErrInvalidSample = errors.New("invalid sample")

// checkLabels makes the checks Prometheus's storage makes before it creates a series: the label
// set, without empty values, is not empty, and no name occurs twice. Names and values (UTF-8,
// the validation scheme) and the label limits are checked by the scrape loop before Append.
func checkLabels(ls labels.Labels) error {
	empty := true
	ls.Range(func(l labels.Label) { empty = empty && l.Value == "" })
	if empty {
		return fmt.Errorf("empty labelset: %w", ErrInvalidSample)
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("label name %q is not unique: %w", name, ErrInvalidSample)
	}
	return nil
}

// Take returns the body built so far and starts a new one.
func (a *Appender) Take() Body {
	b := Body{Bytes: append(a.body, a.metaB...), Counts: a.counts}
	a.body, a.metaB, a.counts, a.meta = nil, nil, promrw.Counts{}, nil
	return b
}

// Commit implements storage.AppenderTransaction: it hands the body to the CommitFunc. An error
// from it (the pipeline refused the data) fails the commit, which the scrape loop reports as a
// failed scrape.
func (a *Appender) Commit() error {
	b := a.Take()
	if b.Counts.Series == 0 && len(b.Bytes) == 0 {
		return nil
	}
	if a.commit == nil {
		return nil
	}
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return a.commit(ctx, b)
}

// Rollback implements storage.AppenderTransaction.
func (a *Appender) Rollback() error {
	a.Take()
	return nil
}

// isStale reports whether v is Prometheus's staleness marker.
func isStale(v float64) bool { return math.Float64bits(v) == staleNaN }

const staleNaN uint64 = 0x7ff0000000000002
