package promrw

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of remote write 1.0 (prometheus.WriteRequest and the messages inside it).
const (
	v1RequestTimeseries = 1
	v1RequestMetadata   = 3

	v1SeriesLabels     = 1
	v1SeriesSamples    = 2
	v1SeriesExemplars  = 3
	v1SeriesHistograms = 4

	sampleValue     = 1 // double, in 1.0 and 2.0
	sampleTimestamp = 2 // int64, in 1.0 and 2.0

	v1ExemplarLabels = 1
	exemplarValue    = 2 // double, in 1.0 and 2.0
	exemplarTime     = 3 // int64, in 1.0 and 2.0
)

// Counts are the items in a request or a batch being built. Samples, Histograms and Exemplars
// are what a 2.0 receiver reports in its X-Prometheus-Remote-Write-*-Written headers.
type Counts struct {
	Series, Samples, Histograms, Exemplars int
}

func (c *Counts) add(samples, histograms, exemplars int) {
	c.Series++
	c.Samples += samples
	c.Histograms += histograms
	c.Exemplars += exemplars
}

// SeriesV1 is one prometheus.TimeSeries inside a 1.0 request, seen in place. Its slices point
// into the request body: keep the body alive and unmodified while using them.
type SeriesV1 struct {
	// Start and End are the byte range of the whole timeseries field (tag and length included)
	// inside the request, so a caller can forward runs of series with one copy.
	Start, End int
	// Raw is the TimeSeries message itself (the field's payload), what AppendSeriesV1 takes.
	Raw []byte

	NumLabels, Samples, Histograms, Exemplars int
}

// Labels iterates over the series' labels.
func (s SeriesV1) Labels() LabelIter { return LabelIter{body: s.Raw} }

// Hash is the 64-bit hash of the label set, as Prometheus's labels.Labels.Hash computes it.
// It is computed on each call.
func (s SeriesV1) Hash() uint64 { return hashLabels(s.Labels()) }

// MetricName returns the __name__ label's value, or nil.
func (s SeriesV1) MetricName() []byte { return metricName(s.Labels()) }

// Scanner walks requests. The zero value validates everything; set Trusted for the fast path.
// A Scanner keeps scratch space between calls (the 2.0 symbol table), so reuse one per goroutine;
// it is not safe for concurrent use.
type Scanner struct {
	// Trusted skips the content checks (label rules, sample order, the insides of samples,
	// exemplars and histograms) and keeps only what walking the request needs: the framing of the
	// request and of each series' fields, and the 2.0 symbols[0] == "" rule. Label iterators then
	// report a malformed label or an out-of-range ref through Err. Use it for data Vigil produced
	// or already validated; never for a client's body.
	Trusted bool
	// Limits, when set, bound each series (validating scans only).
	Limits Limits

	syms [][]byte
}

// ScanV1 validates a remote write 1.0 body (after snappy decoding) and calls fn for each series
// in order. An error from fn stops the scan and is returned as is; any other error wraps
// ErrMalformed and names the series and byte offset. fn may be nil.
func ScanV1(b []byte, fn func(s SeriesV1) error) error {
	var sc Scanner
	return sc.ScanV1(b, fn)
}

// CountV1 validates a 1.0 body and counts its samples, histograms and series.
func CountV1(b []byte) (samples, histograms, series int, err error) {
	var sc Scanner
	return sc.CountV1(b)
}

// CountV1 is the package-level CountV1 with this scanner's settings.
func (sc *Scanner) CountV1(b []byte) (samples, histograms, series int, err error) {
	var c Counts
	err = sc.ScanV1(b, func(s SeriesV1) error {
		c.add(s.Samples, s.Histograms, s.Exemplars)
		return nil
	})
	return c.Samples, c.Histograms, c.Series, err
}

// ScanV1 is the package-level ScanV1 with this scanner's settings.
func (sc *Scanner) ScanV1(b []byte, fn func(s SeriesV1) error) error {
	idx := 0
	for off := 0; off < len(b); {
		start := off
		num, typ, v, _, n, err := readField(b[off:])
		if err != nil {
			return fmt.Errorf("%w: request field at byte %d: %v", ErrMalformed, start, err)
		}
		off += n
		switch num {
		case v1RequestTimeseries:
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: series %d at byte %d: %v", ErrMalformed, idx, start, wireTypeError("timeseries", typ))
			}
			s := SeriesV1{Start: start, End: off, Raw: v}
			if err := scanSeriesV1(&s, !sc.Trusted, sc.Limits); err != nil {
				return seriesError(idx, start, metricName(s.Labels()), err)
			}
			if fn != nil {
				if err := fn(s); err != nil {
					return err
				}
			}
			idx++
		case v1RequestMetadata:
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: metadata at byte %d: %v", ErrMalformed, start, wireTypeError("metadata", typ))
			}
			if !sc.Trusted {
				if err := checkMessage(v); err != nil {
					return fmt.Errorf("%w: metadata at byte %d: %v", ErrMalformed, start, err)
				}
			}
		case v2RequestSymbols, v2RequestTimeseries:
			// Unknown fields are legal protobuf, but a 2.0 body read as 1.0 would otherwise pass as
			// an empty request and be acknowledged while its data is lost.
			if typ == protowire.BytesType {
				return fmt.Errorf("%w: field %d at byte %d: this is a remote write 2.0 body (io.prometheus.write.v2.Request), not 1.0", ErrMalformed, num, start)
			}
		}
	}
	return nil
}

func seriesError(idx, off int, name []byte, err error) error {
	kind := ErrMalformed
	if _, ok := err.(limitError); ok {
		kind = ErrLimit
	}
	if len(name) > 0 {
		return fmt.Errorf("%w: series %d (%.200q) at byte %d: %v", kind, idx, name, off, err)
	}
	return fmt.Errorf("%w: series %d at byte %d: %v", kind, idx, off, err)
}

// scanSeriesV1 counts the parts of a TimeSeries and, when validate is set, checks them.
func scanSeriesV1(s *SeriesV1, validate bool, lim Limits) error {
	b := s.Raw
	var (
		lc   = labelChecker{lim: lim}
		prev []byte // the last label's name
	)
	p := parts{validate: validate, lastTs: math.MinInt64}
	for len(b) > 0 {
		num, typ, v, _, n, err := nextField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch num {
		case v1SeriesLabels:
			if typ != protowire.BytesType {
				return wireTypeError("label", typ)
			}
			s.NumLabels++
			if validate {
				name, value, err := parseLabelV1(v)
				if err != nil {
					return fmt.Errorf("label %d: %w", s.NumLabels-1, err)
				}
				if err := lc.check(prev, name, value); err != nil {
					return err
				}
				prev = name
			}
		case v1SeriesSamples:
			err = p.sample(typ, v, &s.Samples)
		case v1SeriesExemplars:
			err = p.exemplar(typ, v, &s.Exemplars, nil, false)
		case v1SeriesHistograms:
			err = p.histogram(typ, v, &s.Histograms)
		}
		if err != nil {
			return err
		}
	}
	if validate {
		return lc.done()
	}
	return nil
}

// checkSample checks a Sample {value=1 double, timestamp=2 int64} (the same in 1.0 and 2.0) and
// that it is not older than the previous sample of its series, which the specs require and TSDBs
// reject. It returns the sample's timestamp.
func checkSample(b []byte, prevTs int64) (int64, error) {
	var ts int64
	for len(b) > 0 {
		num, typ, _, u, n, err := nextField(b)
		if err != nil {
			return 0, err
		}
		b = b[n:]
		switch num {
		case sampleValue:
			if typ != protowire.Fixed64Type {
				return 0, wireTypeError("value", typ)
			}
		case sampleTimestamp:
			if typ != protowire.VarintType {
				return 0, wireTypeError("timestamp", typ)
			}
			ts = int64(u)
		}
	}
	if ts < prevTs {
		return 0, fmt.Errorf("timestamp %d is older than the previous sample's %d", ts, prevTs)
	}
	return ts, nil
}

// checkExemplar checks an Exemplar: labels=1 (1.0: Label messages; 2.0, when v2 is set: refs into
// syms), value=2 double, timestamp=3 int64. Exemplar labels are checked for structure (and 2.0
// refs for range) but not for names: Prometheus limits their size, not their names.
func checkExemplar(b []byte, syms [][]byte, v2 bool) error {
	if v2 {
		it := LabelIter{body: b, syms: syms, v2: true}
		for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	for len(b) > 0 {
		num, typ, v, _, n, err := nextField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch num {
		case v1ExemplarLabels:
			if v2 {
				continue // checked above
			}
			if typ != protowire.BytesType {
				return wireTypeError("label", typ)
			}
			if _, _, err := parseLabelV1(v); err != nil {
				return err
			}
		case exemplarValue:
			if typ != protowire.Fixed64Type {
				return wireTypeError("value", typ)
			}
		case exemplarTime:
			if typ != protowire.VarintType {
				return wireTypeError("timestamp", typ)
			}
		}
	}
	return nil
}

// AppendSeriesV1 appends raw, a TimeSeries message (SeriesV1.Raw), to dst as a field of a
// WriteRequest. Since a WriteRequest is nothing but its fields, appending series this way builds a
// valid request body.
func AppendSeriesV1(dst, raw []byte) []byte {
	return appendField(dst, v1RequestTimeseries, raw)
}

// parts counts a series' samples, histograms and exemplars and, when validating, checks them:
// the three messages are the same in 1.0 and 2.0 but for how exemplars name their labels.
type parts struct {
	validate bool
	lastTs   int64 // the previous sample's, to check order
}

func (p *parts) sample(typ protowire.Type, v []byte, n *int) error {
	if typ != protowire.BytesType {
		return wireTypeError("sample", typ)
	}
	*n++
	if p.validate {
		var err error
		if p.lastTs, err = checkSample(v, p.lastTs); err != nil {
			return fmt.Errorf("sample %d: %w", *n-1, err)
		}
	}
	return nil
}

func (p *parts) histogram(typ protowire.Type, v []byte, n *int) error {
	if typ != protowire.BytesType {
		return wireTypeError("histogram", typ)
	}
	*n++
	if p.validate {
		if err := checkMessage(v); err != nil {
			return fmt.Errorf("histogram %d: %w", *n-1, err)
		}
	}
	return nil
}

func (p *parts) exemplar(typ protowire.Type, v []byte, n *int, syms [][]byte, v2 bool) error {
	if typ != protowire.BytesType {
		return wireTypeError("exemplar", typ)
	}
	*n++
	if p.validate {
		if err := checkExemplar(v, syms, v2); err != nil {
			return fmt.Errorf("exemplar %d: %w", *n-1, err)
		}
	}
	return nil
}
