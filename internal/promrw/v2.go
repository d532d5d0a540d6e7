package promrw

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of remote write 2.0 (io.prometheus.write.v2.Request and the messages inside it).
// Fields 1–3 of Request are reserved so that a 1.0 body never parses as a 2.0 one.
const (
	v2RequestSymbols    = 4
	v2RequestTimeseries = 5

	v2SeriesLabelsRefs = 1
	v2SeriesSamples    = 2
	v2SeriesHistograms = 3
	v2SeriesExemplars  = 4
	v2SeriesMetadata   = 5
	v2SeriesCreated    = 6

	v2MetadataType    = 1
	v2MetadataHelpRef = 3
	v2MetadataUnitRef = 4
)

// SeriesV2 is one io.prometheus.write.v2.TimeSeries inside a 2.0 request, seen in place. Its
// slices point into the request body and into the scanner's symbol table, which is only valid
// until the scanner's next ScanV2: copy what must outlive the callback (AppendV2AsV1 does).
type SeriesV2 struct {
	// Start and End are the byte range of the whole timeseries field inside the request.
	Start, End int
	// Raw is the TimeSeries message itself. Its label refs mean nothing without the symbols.
	Raw []byte

	Samples, Histograms, Exemplars int

	syms [][]byte
}

// Labels iterates over the series' labels, resolved through the symbol table.
func (s SeriesV2) Labels() LabelIter { return LabelIter{body: s.Raw, syms: s.syms, v2: true} }

// Hash is the 64-bit hash of the label set; it equals the Hash of the same series in 1.0.
func (s SeriesV2) Hash() uint64 { return hashLabels(s.Labels()) }

// MetricName returns the __name__ label's value, or nil.
func (s SeriesV2) MetricName() []byte { return metricName(s.Labels()) }

// Metadata returns the series' metadata, which 2.0 carries with each series: its type, in the
// numbering 1.0's MetricMetadata shares (MetadataCounter…), and its help and unit resolved
// through the symbols. ok is false when the series has none, or only an empty one.
func (s SeriesV2) Metadata() (typ int, help, unit []byte, ok bool) {
	sym := func(ref uint64) []byte {
		if ref < uint64(len(s.syms)) {
			return s.syms[ref]
		}
		return nil
	}
	for b := s.Raw; len(b) > 0; {
		num, typ2, v, _, n, err := nextField(b)
		if err != nil {
			break
		}
		b = b[n:]
		if num != v2SeriesMetadata || typ2 != protowire.BytesType {
			continue
		}
		for len(v) > 0 {
			fn, ft, _, u, k, err := readField(v)
			if err != nil {
				break
			}
			v = v[k:]
			if ft != protowire.VarintType {
				continue
			}
			switch fn {
			case v2MetadataType:
				typ = int(u)
			case v2MetadataHelpRef:
				help = sym(u)
			case v2MetadataUnitRef:
				unit = sym(u)
			}
		}
	}
	return typ, help, unit, typ != 0 || len(help) > 0 || len(unit) > 0
}

// Symbols returns the request's symbol table (valid until the scanner's next ScanV2).
func (s SeriesV2) Symbols() [][]byte { return s.syms }

// ScanV2 validates a remote write 2.0 body (after snappy decoding) and calls fn for each series
// in order. Errors are reported as by ScanV1.
func ScanV2(b []byte, fn func(s SeriesV2) error) error {
	var sc Scanner
	return sc.ScanV2(b, fn)
}

// CountV2 validates a 2.0 body and counts its contents: what the receiver reports in the
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written headers.
func CountV2(b []byte) (Counts, error) {
	var sc Scanner
	return sc.CountV2(b)
}

// CountV2 is the package-level CountV2 with this scanner's settings.
func (sc *Scanner) CountV2(b []byte) (Counts, error) {
	var c Counts
	err := sc.ScanV2(b, func(s SeriesV2) error {
		c.add(s.Samples, s.Histograms, s.Exemplars)
		return nil
	})
	return c, err
}

// ScanV2 is the package-level ScanV2 with this scanner's settings.
func (sc *Scanner) ScanV2(b []byte, fn func(s SeriesV2) error) error {
	// Protobuf fields may come in any order, so the symbol table is complete only after a first
	// pass; it skips each series with one length read.
	syms := sc.syms[:0]
	defer func() { clear(syms); sc.syms = syms[:0] }() // don't pin this request's memory
	series := 0
	for off := 0; off < len(b); {
		start := off
		num, typ, v, _, n, err := readField(b[off:])
		if err != nil {
			return fmt.Errorf("%w: request field at byte %d: %v", ErrMalformed, start, err)
		}
		off += n
		switch num {
		case v2RequestSymbols:
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: symbol %d at byte %d: %v", ErrMalformed, len(syms), start, wireTypeError("symbol", typ))
			}
			syms = append(syms, v)
		case v2RequestTimeseries:
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: series %d at byte %d: %v", ErrMalformed, series, start, wireTypeError("timeseries", typ))
			}
			series++
		case 1, 2, 3:
			return fmt.Errorf("%w: reserved field %d at byte %d: this is a remote write 1.0 body (prometheus.WriteRequest), not 2.0", ErrMalformed, num, start)
		}
	}
	if len(syms) > 0 && len(syms[0]) != 0 {
		return fmt.Errorf("%w: symbols[0] is %.100q, must be the empty string", ErrMalformed, syms[0])
	}
	if series > 0 && len(syms) == 0 {
		return fmt.Errorf("%w: %d series but no symbols", ErrMalformed, series)
	}

	idx := 0
	for off := 0; off < len(b); {
		start := off
		num, _, v, _, n, _ := readField(b[off:]) // checked by the first pass
		off += n
		if num != v2RequestTimeseries {
			continue
		}
		s := SeriesV2{Start: start, End: off, Raw: v, syms: syms}
		if err := scanSeriesV2(&s, !sc.Trusted, sc.Limits); err != nil {
			return seriesError(idx, start, metricName(s.Labels()), err)
		}
		if fn != nil {
			if err := fn(s); err != nil {
				return err
			}
		}
		idx++
	}
	return nil
}

func scanSeriesV2(s *SeriesV2, validate bool, lim Limits) error {
	b := s.Raw
	p := parts{validate: validate, lastTs: math.MinInt64}
	for len(b) > 0 {
		num, typ, v, _, n, err := nextField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch num {
		case v2SeriesLabelsRefs:
			if typ != protowire.BytesType && typ != protowire.VarintType {
				return wireTypeError("labels_refs", typ)
			}
		case v2SeriesSamples:
			err = p.sample(typ, v, &s.Samples)
		case v2SeriesHistograms:
			err = p.histogram(typ, v, &s.Histograms)
		case v2SeriesExemplars:
			err = p.exemplar(typ, v, &s.Exemplars, s.syms, true)
		case v2SeriesMetadata:
			if typ != protowire.BytesType {
				return wireTypeError("metadata", typ)
			}
			if validate {
				if err := checkMetadataV2(v, len(s.syms)); err != nil {
					return fmt.Errorf("metadata: %w", err)
				}
			}
		case v2SeriesCreated:
			if validate && typ != protowire.VarintType {
				return wireTypeError("created_timestamp", typ)
			}
		}
		if err != nil {
			return err
		}
	}
	if !validate {
		return nil
	}
	if s.Samples > 0 && s.Histograms > 0 {
		return errors.New("series has both samples and histograms")
	}
	var (
		lc   = labelChecker{lim: lim}
		prev []byte
	)
	it := s.Labels()
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		if err := lc.check(prev, name, value); err != nil {
			return err
		}
		prev = name
	}
	if err := it.Err(); err != nil {
		return err
	}
	return lc.done()
}

// checkMetadataV2 checks Metadata {type=1 enum, help_ref=3, unit_ref=4}.
func checkMetadataV2(b []byte, nsyms int) error {
	for len(b) > 0 {
		num, typ, _, u, n, err := nextField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch num {
		case v2MetadataType, v2MetadataHelpRef, v2MetadataUnitRef:
			if typ != protowire.VarintType {
				return wireTypeError(fmt.Sprintf("field %d", num), typ)
			}
			if num != v2MetadataType && u >= uint64(nsyms) {
				return fmt.Errorf("%w: ref %d with %d symbols", errRefRange, u, nsyms)
			}
		}
	}
	return nil
}

// AppendV2AsV1 appends s to dst as a 1.0 timeseries field (see AppendSeriesV1), for backends that
// only speak 1.0: labels and exemplar labels are resolved through the symbol table; samples and
// histograms, whose messages are the same on the wire in both versions, are copied as they are.
// 1.0 has no per-series metadata or created timestamp, so those are left out, as are fields this
// package does not know. s should come from a validating scan: a malformed label ref ends the
// label list early rather than failing.
func AppendV2AsV1(dst []byte, s SeriesV2) []byte {
	size := 0
	it := s.Labels()
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		size += fieldSize(v1SeriesLabels, labelSize(name, value))
	}
	b := s.Raw
	for len(b) > 0 {
		num, _, v, _, n, err := nextField(b)
		if err != nil {
			break
		}
		switch num {
		case v2SeriesSamples:
			size += fieldSize(v1SeriesSamples, len(v))
		case v2SeriesHistograms:
			size += fieldSize(v1SeriesHistograms, len(v))
		case v2SeriesExemplars:
			size += fieldSize(v1SeriesExemplars, exemplarV1Size(v, s.syms))
		}
		b = b[n:]
	}

	dst = protowire.AppendTag(dst, v1RequestTimeseries, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	it = s.Labels()
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		dst = appendLabel(dst, v1SeriesLabels, name, value)
	}
	// 1.0 readers expect labels first only by convention, but the order of samples, histograms and
	// exemplars among themselves is kept as the sender wrote it.
	b = s.Raw
	for len(b) > 0 {
		num, _, v, _, n, err := nextField(b)
		if err != nil {
			break
		}
		switch num {
		case v2SeriesSamples:
			dst = appendField(dst, v1SeriesSamples, v)
		case v2SeriesHistograms:
			dst = appendField(dst, v1SeriesHistograms, v)
		case v2SeriesExemplars:
			dst = protowire.AppendTag(dst, v1SeriesExemplars, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(exemplarV1Size(v, s.syms)))
			dst = appendExemplarV1(dst, v, s.syms)
		}
		b = b[n:]
	}
	return dst
}

func labelSize(name, value []byte) int {
	return fieldSize(1, len(name)) + fieldSize(2, len(value))
}

// appendLabel appends a prometheus.Label message as field num.
func appendLabel(dst []byte, num protowire.Number, name, value []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(labelSize(name, value)))
	dst = appendField(dst, 1, name)
	return appendField(dst, 2, value)
}

// exemplarV1Size is the size of the 1.0 Exemplar message appendExemplarV1 writes for a 2.0 one.
func exemplarV1Size(ex []byte, syms [][]byte) int {
	size := 0
	it := LabelIter{body: ex, syms: syms, v2: true}
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		size += fieldSize(v1ExemplarLabels, labelSize(name, value))
	}
	for len(ex) > 0 {
		num, _, _, _, n, err := readField(ex)
		if err != nil {
			break
		}
		if num == exemplarValue || num == exemplarTime {
			size += n
		}
		ex = ex[n:]
	}
	return size
}

func appendExemplarV1(dst, ex []byte, syms [][]byte) []byte {
	it := LabelIter{body: ex, syms: syms, v2: true}
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		dst = appendLabel(dst, v1ExemplarLabels, name, value)
	}
	for len(ex) > 0 {
		num, _, _, _, n, err := readField(ex)
		if err != nil {
			break
		}
		if num == exemplarValue || num == exemplarTime {
			dst = append(dst, ex[:n]...) // same field numbers and types in both versions
		}
		ex = ex[n:]
	}
	return dst
}
