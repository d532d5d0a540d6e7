package batch

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/promconv"
	"github.com/vigilhq/vigil/internal/promrw"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Batch holds one signal's items in at least one of these representations:
//   - encoded: the serialized Export…ServiceRequest protobuf, exactly as a client sent it (or
//     several such requests concatenated, which protobuf defines to be one valid request);
//   - remote write (metrics only): an uncompressed Prometheus remote-write 1.0 WriteRequest body,
//     as the remote-write and scrape receivers produce it (concatenable the same way);
//   - decoded: pdata.
//
// Conversions happen lazily and once. Reading the decoded form keeps the encoded bytes valid;
// asking for a mutable decoded form drops them, since they would no longer match.
//
// Ownership: a component that receives a *Batch in Consume owns it and the caller must not touch it
// again. Encoded bytes are never written to after construction, so clones may share them.
//
// Concat of encoded batches copies nothing: the result keeps its parts' requests as pieces, which
// EncodedParts hands to an exporter that can write them one after the other (gRPC compresses and
// frames a message given in pieces); Encoded joins them the first time someone needs one slice.
//
// Acknowledgements: a batch carries the completion handles (Acks) of the client requests whose
// items it holds. Batches made from it (Share, Clone, Split, Concat) carry them too; a processor
// that builds a new batch from an old one passes them on with SetAcks. See package ack for who
// holds them and when.
type Batch struct {
	sig   Signal
	items int

	acks     ack.Set
	endToEnd bool

	enc    []byte  // valid when hasEnc and segs is nil
	segs   *pieces // when hasEnc: the encoded form in pieces (whole requests), joined on demand
	hasEnc bool

	rw    []byte // valid when hasRW
	hasRW bool

	traces  ptrace.Traces
	metrics pmetric.Metrics
	logs    plog.Logs
	hasDec  bool
}

// FromEncoded wraps a serialized Export…ServiceRequest. It scans the bytes to count items and to
// reject malformed input before anything downstream sees it. b must not be modified afterwards.
func FromEncoded(sig Signal, b []byte) (*Batch, error) {
	return FromEncodedLimited(sig, b, Limits{})
}

// FromEncodedLimited is FromEncoded for a request from outside, held to lim (ScanLimited).
func FromEncodedLimited(sig Signal, b []byte, lim Limits) (*Batch, error) {
	n, err := ScanLimited(sig, b, lim)
	if err != nil {
		return nil, err
	}
	return &Batch{sig: sig, items: n, enc: b, hasEnc: true}, nil
}

// FromPromRW wraps an uncompressed remote-write 1.0 body from outside (a client): it is fully
// validated (label rules, sample order) and its samples and histogram samples are the items.
// b must not be modified afterwards.
func FromPromRW(b []byte) (*Batch, error) {
	samples, hists, _, err := promrw.CountV1(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &Batch{sig: Metrics, items: samples + hists, rw: b, hasRW: true}, nil
}

// FromPromRWTrusted wraps a remote-write 1.0 body Vigil built itself (through promconv), whose
// item count is known. b must not be modified afterwards.
func FromPromRWTrusted(b []byte, items int) *Batch {
	return &Batch{sig: Metrics, items: items, rw: b, hasRW: true}
}

// FromTraces wraps decoded traces.
func FromTraces(td ptrace.Traces) *Batch {
	return &Batch{sig: Traces, items: td.SpanCount(), traces: td, hasDec: true}
}

// FromMetrics wraps decoded metrics.
func FromMetrics(md pmetric.Metrics) *Batch {
	return &Batch{sig: Metrics, items: md.DataPointCount(), metrics: md, hasDec: true}
}

// FromLogs wraps decoded logs.
func FromLogs(ld plog.Logs) *Batch {
	return &Batch{sig: Logs, items: ld.LogRecordCount(), logs: ld, hasDec: true}
}

// Signal reports what the batch carries.
func (b *Batch) Signal() Signal { return b.sig }

// Items is the number of spans, metric data points or log records.
func (b *Batch) Items() int { return b.items }

// Acks returns the completion handles of the requests whose data b holds. The Set is shared:
// callers must not change it.
func (b *Batch) Acks() ack.Set { return b.acks }

// SetAcks makes b carry s: a receiver attaches its request's handle, and a processor that
// replaces a batch with a new one passes the old one's handles on.
func (b *Batch) SetAcks(s ack.Set) { b.acks = s }

// EndToEnd reports whether the exporter taking b must hold its acknowledgements until the
// backend accepted the data (acknowledgements: end_to_end), rather than until the data is in
// its queue. The pipeline sets it on the hand-off to each exporter.
func (b *Batch) EndToEnd() bool { return b.endToEnd }

// SetEndToEnd sets what EndToEnd reports.
func (b *Batch) SetEndToEnd(on bool) { b.endToEnd = on }

// IsEncoded reports whether the encoded form is available without work.
func (b *Batch) IsEncoded() bool { return b.hasEnc }

// IsPromRW reports whether the remote-write form is available without work.
func (b *Batch) IsPromRW() bool { return b.hasRW }

// PromRW returns the remote-write 1.0 body if the batch has one. The bytes are shared: callers
// must not modify them. Converting other forms to remote write is promconv.FromMetrics's job,
// since it takes the exporter's naming settings.
func (b *Batch) PromRW() ([]byte, bool) { return b.rw, b.hasRW }

// Form says which representation a batch would be forwarded in without conversion, so that
// batching joins like with like.
type Form uint8

const (
	FormPData Form = iota
	FormOTLP
	FormPromRW
)

// Form reports the batch's cheapest representation to forward.
func (b *Batch) Form() Form {
	switch {
	case b.hasEnc:
		return FormOTLP
	case b.hasRW:
		return FormPromRW
	}
	return FormPData
}

// IsDecoded reports whether the decoded form is available without work.
func (b *Batch) IsDecoded() bool { return b.hasDec }

// EncodedSize is the size of the encoded form, computed without encoding when only pdata exists.
func (b *Batch) EncodedSize() int {
	if b.hasEnc {
		if b.segs != nil {
			return b.segs.size
		}
		return len(b.enc)
	}
	if b.hasRW && !b.hasDec {
		return len(b.rw)
	}
	switch b.sig {
	case Traces:
		return (&ptrace.ProtoMarshaler{}).TracesSize(b.traces)
	case Metrics:
		return (&pmetric.ProtoMarshaler{}).MetricsSize(b.metrics)
	default:
		return (&plog.ProtoMarshaler{}).LogsSize(b.logs)
	}
}

// Encoded returns the serialized Export…ServiceRequest, encoding the pdata form if needed.
// The returned bytes are shared: callers must not modify them.
func (b *Batch) Encoded() ([]byte, error) {
	if b.hasEnc {
		b.join()
		return b.enc, nil
	}
	if err := b.decode(); err != nil {
		return nil, err
	}
	var (
		buf []byte
		err error
	)
	switch b.sig {
	case Traces:
		buf, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(b.traces)
	case Metrics:
		buf, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(b.metrics)
	default:
		buf, err = (&plog.ProtoMarshaler{}).MarshalLogs(b.logs)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.sig, err)
	}
	b.enc, b.hasEnc = buf, true
	// From now on the bytes and the pdata must agree: a later mutation goes through a copy.
	b.markReadOnly()
	return b.enc, nil
}

// EncodedParts returns the serialized Export…ServiceRequest as pieces whose concatenation is the
// request, without joining them (see Concat); a batch in one piece returns one. The pieces are
// shared: callers must not modify them or the returned slice.
func (b *Batch) EncodedParts() ([][]byte, error) {
	if b.hasEnc && b.segs != nil {
		return b.segs.parts, nil
	}
	enc, err := b.Encoded()
	if err != nil {
		return nil, err
	}
	return [][]byte{enc}, nil
}

// pieces is an encoded request in pieces. Shares and clones of a batch point to the same pieces,
// so that the join happens once however many branches need one slice.
type pieces struct {
	parts  [][]byte
	size   int
	once   sync.Once
	joined []byte
}

func newPieces(parts [][]byte) *pieces {
	p := &pieces{parts: parts}
	for _, part := range parts {
		p.size += len(part)
	}
	return p
}

func (p *pieces) join() []byte {
	p.once.Do(func() { p.joined = bytes.Join(p.parts, nil) }) // Join does not zero before copying
	return p.joined
}

// join makes the encoded form one slice.
func (b *Batch) join() {
	if b.segs != nil {
		b.enc, b.segs = b.segs.join(), nil
	}
}

func (b *Batch) decode() error {
	if b.hasDec {
		return nil
	}
	b.join()
	var err error
	if !b.hasEnc && b.hasRW {
		if b.metrics, err = promconv.ToMetrics(b.rw); err != nil {
			return fmt.Errorf("%w: decode remote write: %v", ErrMalformed, err)
		}
		b.hasDec = true
		return nil
	}
	switch b.sig {
	case Traces:
		b.traces, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b.enc)
	case Metrics:
		b.metrics, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b.enc)
	default:
		b.logs, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b.enc)
	}
	if err != nil {
		return fmt.Errorf("%w: decode %s: %v", ErrMalformed, b.sig, err)
	}
	b.hasDec = true
	return nil
}

func (b *Batch) mustBe(sig Signal) error {
	if b.sig != sig {
		return fmt.Errorf("batch carries %s, not %s", b.sig, sig)
	}
	return nil
}

// Traces returns the decoded traces for reading. The result is read-only while the encoded form
// is still valid; use MutableTraces to change it.
func (b *Batch) Traces() (ptrace.Traces, error) {
	if err := b.mustBe(Traces); err != nil {
		return ptrace.Traces{}, err
	}
	if err := b.decode(); err != nil {
		return ptrace.Traces{}, err
	}
	if b.hasEnc && !b.traces.IsReadOnly() {
		b.traces.MarkReadOnly()
	}
	return b.traces, nil
}

// MutableTraces returns decoded traces the caller may change. The encoded form is dropped.
// Call Recount after changing the number of spans.
func (b *Batch) MutableTraces() (ptrace.Traces, error) {
	if err := b.mustBe(Traces); err != nil {
		return ptrace.Traces{}, err
	}
	if err := b.decode(); err != nil {
		return ptrace.Traces{}, err
	}
	if b.traces.IsReadOnly() {
		// Decoded while still read-only: hand out a private copy.
		td := ptrace.NewTraces()
		b.traces.CopyTo(td)
		b.traces = td
	}
	b.enc, b.segs, b.hasEnc = nil, nil, false
	return b.traces, nil
}

// Metrics returns the decoded metrics for reading; see Traces.
func (b *Batch) Metrics() (pmetric.Metrics, error) {
	if err := b.mustBe(Metrics); err != nil {
		return pmetric.Metrics{}, err
	}
	if err := b.decode(); err != nil {
		return pmetric.Metrics{}, err
	}
	if (b.hasEnc || b.hasRW) && !b.metrics.IsReadOnly() {
		b.metrics.MarkReadOnly()
	}
	return b.metrics, nil
}

// MutableMetrics returns decoded metrics the caller may change; see MutableTraces.
func (b *Batch) MutableMetrics() (pmetric.Metrics, error) {
	if err := b.mustBe(Metrics); err != nil {
		return pmetric.Metrics{}, err
	}
	if err := b.decode(); err != nil {
		return pmetric.Metrics{}, err
	}
	if b.metrics.IsReadOnly() {
		md := pmetric.NewMetrics()
		b.metrics.CopyTo(md)
		b.metrics = md
	}
	b.enc, b.segs, b.hasEnc = nil, nil, false
	b.rw, b.hasRW = nil, false
	return b.metrics, nil
}

// Logs returns the decoded logs for reading; see Traces.
func (b *Batch) Logs() (plog.Logs, error) {
	if err := b.mustBe(Logs); err != nil {
		return plog.Logs{}, err
	}
	if err := b.decode(); err != nil {
		return plog.Logs{}, err
	}
	if b.hasEnc && !b.logs.IsReadOnly() {
		b.logs.MarkReadOnly()
	}
	return b.logs, nil
}

// MutableLogs returns decoded logs the caller may change; see MutableTraces.
func (b *Batch) MutableLogs() (plog.Logs, error) {
	if err := b.mustBe(Logs); err != nil {
		return plog.Logs{}, err
	}
	if err := b.decode(); err != nil {
		return plog.Logs{}, err
	}
	if b.logs.IsReadOnly() {
		ld := plog.NewLogs()
		b.logs.CopyTo(ld)
		b.logs = ld
	}
	b.enc, b.segs, b.hasEnc = nil, nil, false
	return b.logs, nil
}

// Recount refreshes the item count after a mutable view changed it.
func (b *Batch) Recount() {
	if !b.hasDec {
		return
	}
	switch b.sig {
	case Traces:
		b.items = b.traces.SpanCount()
	case Metrics:
		b.items = b.metrics.DataPointCount()
	default:
		b.items = b.logs.LogRecordCount()
	}
}

// Clone returns an independent batch with the same content, for fan-out to a branch that mutates.
// Encoded bytes are shared (they are immutable); decoded data is copied only when it is the sole
// representation.
func (b *Batch) Clone() *Batch {
	c := &Batch{sig: b.sig, items: b.items, acks: b.acks, endToEnd: b.endToEnd}
	if b.hasEnc || b.hasRW {
		c.enc, c.segs, c.hasEnc = b.enc, b.segs, b.hasEnc
		c.rw, c.hasRW = b.rw, b.hasRW
		return c
	}
	c.hasDec = true
	switch b.sig {
	case Traces:
		c.traces = ptrace.NewTraces()
		b.traces.CopyTo(c.traces)
	case Metrics:
		c.metrics = pmetric.NewMetrics()
		b.metrics.CopyTo(c.metrics)
	default:
		c.logs = plog.NewLogs()
		b.logs.CopyTo(c.logs)
	}
	return c
}

// markReadOnly marks the pdata read-only unless it is already. pdata's mark is a plain write to
// state that shares hold in common, so once a share is out it must only ever be read.
func (b *Batch) markReadOnly() {
	switch b.sig {
	case Traces:
		if !b.traces.IsReadOnly() {
			b.traces.MarkReadOnly()
		}
	case Metrics:
		if !b.metrics.IsReadOnly() {
			b.metrics.MarkReadOnly()
		}
	default:
		if !b.logs.IsReadOnly() {
			b.logs.MarkReadOnly()
		}
	}
}

// Share returns a batch that shares this one's content, for read-only branches of a fan-out.
// Neither the original nor the share may be mutated afterwards.
func (b *Batch) Share() *Batch {
	if b.hasDec {
		b.markReadOnly()
	}
	c := *b
	return &c
}

// Concat joins batches of one signal into one, consuming them. When every part has its encoded
// form (or every part its remote-write form) the result is the concatenation of the bytes (a
// valid request, by protobuf's rules for repeated fields) and nothing is decoded; otherwise the
// parts are merged as pdata. The result carries every part's acknowledgements.
func Concat(parts []*Batch) (*Batch, error) {
	switch len(parts) {
	case 0:
		return nil, fmt.Errorf("concat of no batches")
	case 1:
		return parts[0], nil
	}
	out, err := concat(parts)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		out.endToEnd = out.endToEnd || p.endToEnd
	}
	out.acks = ack.Union(parts, (*Batch).Acks)
	return out, nil
}

func concat(parts []*Batch) (*Batch, error) {
	sig := parts[0].sig
	allEnc, allRW, items := true, true, 0
	for _, p := range parts {
		if p.sig != sig {
			return nil, fmt.Errorf("concat of %s and %s", sig, p.sig)
		}
		allEnc = allEnc && p.hasEnc
		allRW = allRW && p.hasRW
		items += p.items
	}
	if allEnc {
		// No copy: the parts' requests become the pieces of the result.
		segs := make([][]byte, 0, len(parts))
		for _, p := range parts {
			if p.segs != nil {
				segs = append(segs, p.segs.parts...)
			} else if len(p.enc) > 0 {
				segs = append(segs, p.enc)
			}
		}
		switch len(segs) {
		case 0:
			return &Batch{sig: sig, items: items, enc: []byte{}, hasEnc: true}, nil
		case 1:
			return &Batch{sig: sig, items: items, enc: segs[0], hasEnc: true}, nil
		}
		return &Batch{sig: sig, items: items, segs: newPieces(segs), hasEnc: true}, nil
	}
	// bytes.Join allocates without zeroing first: these are the largest copies a relay makes.
	if allRW {
		bufs := make([][]byte, len(parts))
		for i, p := range parts {
			bufs[i] = p.rw
		}
		return FromPromRWTrusted(bytes.Join(bufs, nil), items), nil
	}
	switch sig {
	case Traces:
		out := ptrace.NewTraces()
		for _, p := range parts {
			td, err := p.MutableTraces()
			if err != nil {
				return nil, err
			}
			td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
		}
		return FromTraces(out), nil
	case Metrics:
		out := pmetric.NewMetrics()
		for _, p := range parts {
			md, err := p.MutableMetrics()
			if err != nil {
				return nil, err
			}
			md.ResourceMetrics().MoveAndAppendTo(out.ResourceMetrics())
		}
		return FromMetrics(out), nil
	default:
		out := plog.NewLogs()
		for _, p := range parts {
			ld, err := p.MutableLogs()
			if err != nil {
				return nil, err
			}
			ld.ResourceLogs().MoveAndAppendTo(out.ResourceLogs())
		}
		return FromLogs(out), nil
	}
}

// JSON returns the batch as an OTLP/JSON Export…ServiceRequest (decoding it if needed, for
// reading only).
func (b *Batch) JSON() ([]byte, error) {
	switch b.sig {
	case Traces:
		td, err := b.Traces()
		if err != nil {
			return nil, err
		}
		return (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	case Metrics:
		md, err := b.Metrics()
		if err != nil {
			return nil, err
		}
		return (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	default:
		ld, err := b.Logs()
		if err != nil {
			return nil, err
		}
		return (&plog.JSONMarshaler{}).MarshalLogs(ld)
	}
}
