package promrw

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Label is a name and value, for labels Vigil adds to series.
type Label struct{ Name, Value string }

// AppendWithLabels appends to dst a 1.0 TimeSeries message (not a request field) that is raw
// (SeriesV1.Raw) with extra labels merged in, as Prometheus applies external labels: a label the
// series already has wins. extra must be sorted by name and raw's labels sorted, as remote write
// requires; the result is sorted too. Samples, histograms and exemplars are copied as they are.
func AppendWithLabels(dst, raw []byte, extra []Label) []byte {
	it := LabelIter{body: raw}
	name, value, ok := it.Next()
	for _, x := range extra {
		for ok && string(name) < x.Name {
			dst = appendLabel(dst, v1SeriesLabels, name, value)
			name, value, ok = it.Next()
		}
		if ok && string(name) == x.Name {
			continue // the series' own value wins
		}
		dst = appendLabelString(dst, v1SeriesLabels, x.Name, x.Value)
	}
	for ; ok; name, value, ok = it.Next() {
		dst = appendLabel(dst, v1SeriesLabels, name, value)
	}
	for b := raw; len(b) > 0; {
		num, _, _, _, n, err := readField(b)
		if err != nil {
			break
		}
		if num != v1SeriesLabels {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}

// AppendSeriesPart appends to dst a 1.0 TimeSeries message (not a request field) holding raw's
// labels and the samples and histograms numbered [from, to) among them (counted together, in
// the order they appear); the first part (from == 0) also gets the exemplars and any other
// field. A series with more samples than a request may hold is sent as consecutive parts, which
// keeps its samples in order. It returns the grown dst and the part as a series (Raw points into
// dst, valid until dst is next appended to).
func AppendSeriesPart(dst, raw []byte, from, to int) ([]byte, SeriesV1) {
	start := len(dst)
	s := SeriesV1{}
	k := 0 // samples and histograms seen
	for b := raw; len(b) > 0; {
		num, _, _, _, n, err := readField(b)
		if err != nil {
			break
		}
		switch num {
		case v1SeriesLabels:
			dst = append(dst, b[:n]...)
			s.NumLabels++
		case v1SeriesSamples, v1SeriesHistograms:
			if from <= k && k < to {
				dst = append(dst, b[:n]...)
				if num == v1SeriesSamples {
					s.Samples++
				} else {
					s.Histograms++
				}
			}
			k++
		case v1SeriesExemplars:
			if from == 0 {
				dst = append(dst, b[:n]...)
				s.Exemplars++
			}
		default:
			if from == 0 {
				dst = append(dst, b[:n]...)
			}
		}
		b = b[n:]
	}
	s.Raw = dst[start:len(dst):len(dst)]
	return dst, s
}

// Metadata is the 1.0 metadata entries of a request, by metric family name, for converting its
// series to 2.0, where metadata travels with each series.
type Metadata struct {
	// Raw is every metadata field of the request, as found (for 1.0 requests built from it).
	Raw    []byte
	byName map[string]metadataEntry
}

type metadataEntry struct {
	typ        uint64
	help, unit []byte
}

// MetadataOf collects the metadata entries of a 1.0 body. Malformed entries are skipped, and
// so are exact repeats of an entry (Raw carries each once).
func MetadataOf(body []byte) Metadata {
	var m Metadata
	var seen map[string]struct{} // entries kept, by their bytes
	for b := body; len(b) > 0; {
		// Series are most of a body: skip them with one tag byte and a length.
		if b[0] == v1RequestTimeseries<<3|byte(protowire.BytesType) {
			l, k := protowire.ConsumeVarint(b[1:])
			if k < 0 || uint64(len(b)-1-k) < l {
				break
			}
			b = b[1+k+int(l):]
			continue
		}
		num, typ, v, _, n, err := readField(b)
		if err != nil {
			break
		}
		if num == v1RequestMetadata && typ == protowire.BytesType {
			if _, ok := seen[string(v)]; ok {
				b = b[n:]
				continue // joined batches repeat their families' entries: keep one
			}
			if seen == nil {
				seen = make(map[string]struct{})
			}
			seen[string(v)] = struct{}{}
			m.Raw = append(m.Raw, b[:n]...)
			var e metadataEntry
			var family []byte
			for f := v; len(f) > 0; {
				fn, ft, fv, fu, k, err := readField(f)
				if err != nil {
					break
				}
				switch {
				case fn == 1 && ft == protowire.VarintType:
					e.typ = fu
				case fn == 2 && ft == protowire.BytesType:
					family = fv
				case fn == 4 && ft == protowire.BytesType:
					e.help = fv
				case fn == 5 && ft == protowire.BytesType:
					e.unit = fv
				}
				f = f[k:]
			}
			if len(family) > 0 {
				if m.byName == nil {
					m.byName = make(map[string]metadataEntry)
				}
				m.byName[string(family)] = e
			}
		}
		b = b[n:]
	}
	return m
}

// EachMetadata calls fn for each metadata entry in raw (Metadata.Raw, or any run of 1.0
// request fields) with its metric family name and the whole field, tag included, ready to be
// appended to a request. Entries without a family name, and anything malformed, are skipped.
func EachMetadata(raw []byte, fn func(family, field []byte)) {
	for b := raw; len(b) > 0; {
		num, typ, v, _, n, err := readField(b)
		if err != nil {
			return
		}
		if num == v1RequestMetadata && typ == protowire.BytesType {
			for f := v; len(f) > 0; {
				fn2, ft, fv, _, k, err := readField(f)
				if err != nil {
					break
				}
				if fn2 == 2 && ft == protowire.BytesType {
					if len(fv) > 0 {
						fn(fv, b[:n])
					}
					break
				}
				f = f[k:]
			}
		}
		b = b[n:]
	}
}

// lookup finds the metadata of the family a series belongs to: its name, or its name without
// one of the suffixes classic histograms, summaries and counters add.
func (m Metadata) lookup(name []byte) (metadataEntry, bool) {
	if len(m.byName) == 0 {
		return metadataEntry{}, false
	}
	if e, ok := m.byName[string(name)]; ok {
		return e, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count", "_total", "_created", "_info"} {
		if base, ok := strings.CutSuffix(string(name), suffix); ok {
			if e, ok := m.byName[base]; ok {
				return e, true
			}
		}
	}
	return metadataEntry{}, false
}

// V2Encoder converts 1.0 bodies to 2.0 requests (labels and metadata as references into a
// symbol table). Reuse one to keep its tables; not safe for concurrent use.
type V2Encoder struct {
	syms    map[string]uint32
	list    []string
	series  []byte
	refs    []byte
	scratch []byte
}

// Encode appends to dst the 2.0 request holding the series of a 1.0 body (which must come from
// Vigil or a validating scan), with each series' metadata looked up in meta.
func (e *V2Encoder) Encode(dst, v1 []byte, meta Metadata) []byte {
	if e.syms == nil {
		e.syms = make(map[string]uint32)
	}
	clear(e.syms)
	e.list = append(e.list[:0], "")
	e.syms[""] = 0
	e.series = e.series[:0]
	sc := Scanner{Trusted: true}
	_ = sc.ScanV1(v1, func(s SeriesV1) error {
		e.scratch = e.scratch[:0]
		e.refs = e.refs[:0]
		it := s.Labels()
		var name []byte
		for n, v, ok := it.Next(); ok; n, v, ok = it.Next() {
			if string(n) == MetricNameLabel {
				name = v
			}
			e.refs = protowire.AppendVarint(e.refs, uint64(e.symbol(n)))
			e.refs = protowire.AppendVarint(e.refs, uint64(e.symbol(v)))
		}
		e.scratch = appendField(e.scratch, v2SeriesLabelsRefs, e.refs)
		for b := s.Raw; len(b) > 0; {
			num, _, v, _, n, err := readField(b)
			if err != nil {
				break
			}
			switch num {
			case v1SeriesSamples: // Sample has the same fields in both versions
				e.scratch = appendField(e.scratch, v2SeriesSamples, v)
			case v1SeriesHistograms: // so has Histogram
				e.scratch = appendField(e.scratch, v2SeriesHistograms, v)
			case v1SeriesExemplars:
				e.scratch = e.appendExemplarV2(e.scratch, v)
			}
			b = b[n:]
		}
		if m, ok := meta.lookup(name); ok {
			var mb []byte
			if m.typ != 0 {
				mb = protowire.AppendTag(mb, v2MetadataType, protowire.VarintType)
				mb = protowire.AppendVarint(mb, m.typ) // the enums share their numbers
			}
			if len(m.help) > 0 {
				mb = protowire.AppendTag(mb, v2MetadataHelpRef, protowire.VarintType)
				mb = protowire.AppendVarint(mb, uint64(e.symbol(m.help)))
			}
			if len(m.unit) > 0 {
				mb = protowire.AppendTag(mb, v2MetadataUnitRef, protowire.VarintType)
				mb = protowire.AppendVarint(mb, uint64(e.symbol(m.unit)))
			}
			e.scratch = appendField(e.scratch, v2SeriesMetadata, mb)
		}
		e.series = appendField(e.series, v2RequestTimeseries, e.scratch)
		return nil
	})
	for _, s := range e.list {
		dst = appendStringField(dst, v2RequestSymbols, s)
	}
	return append(dst, e.series...)
}

func (e *V2Encoder) symbol(b []byte) uint32 {
	if ref, ok := e.syms[string(b)]; ok { // no allocation for the lookup
		return ref
	}
	s := string(b)
	ref := uint32(len(e.list))
	e.syms[s] = ref
	e.list = append(e.list, s)
	return ref
}

// appendExemplarV2 converts a 1.0 Exemplar {labels, value, timestamp} to 2.0 {labels_refs,
// value, timestamp}.
func (e *V2Encoder) appendExemplarV2(dst, ex []byte) []byte {
	var refs, rest []byte
	for b := ex; len(b) > 0; {
		num, _, v, _, n, err := readField(b)
		if err != nil {
			break
		}
		if num == v1ExemplarLabels {
			if name, value, err := parseLabelV1(v); err == nil {
				refs = protowire.AppendVarint(refs, uint64(e.symbol(name)))
				refs = protowire.AppendVarint(refs, uint64(e.symbol(value)))
			}
		} else {
			rest = append(rest, b[:n]...)
		}
		b = b[n:]
	}
	size := len(rest)
	if len(refs) > 0 {
		size += fieldSize(1, len(refs))
	}
	dst = protowire.AppendTag(dst, v2SeriesExemplars, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	if len(refs) > 0 {
		dst = appendField(dst, 1, refs)
	}
	return append(dst, rest...)
}
