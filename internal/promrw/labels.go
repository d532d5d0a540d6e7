package promrw

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// MetricNameLabel is the label that holds a series' metric name.
const MetricNameLabel = "__name__"

// LabelIter walks the labels of one series as raw byte slices that point into the request (for
// 2.0, into its symbol table). It allocates nothing. The slices stay valid as long as the request
// body does.
//
//	it := s.Labels()
//	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() { … }
//	if err := it.Err(); err != nil { … }
type LabelIter struct {
	body   []byte   // remaining fields of the series (1.0) or exemplar/series (2.0) message
	packed []byte   // 2.0: remaining refs of the packed labels_refs chunk being read
	syms   [][]byte // 2.0: the request's symbol table
	v2     bool
	err    error
}

// Next returns the next label. ok is false at the end or on a malformed label; Err tells which.
func (it *LabelIter) Next() (name, value []byte, ok bool) {
	if it.err != nil {
		return nil, nil, false
	}
	if it.v2 {
		return it.nextV2()
	}
	for len(it.body) > 0 {
		num, typ, v, _, n, err := nextField(it.body)
		if err != nil {
			it.err = err
			return nil, nil, false
		}
		it.body = it.body[n:]
		if num != 1 {
			continue
		}
		if typ != protowire.BytesType {
			it.err = wireTypeError("label", typ)
			return nil, nil, false
		}
		name, value, it.err = parseLabelV1(v)
		return name, value, it.err == nil
	}
	return nil, nil, false
}

// parseLabelV1 parses a prometheus.Label {name=1, value=2}. As in any protobuf decoder, a field
// repeated inside the message overrides the earlier one.
func parseLabelV1(b []byte) (name, value []byte, err error) {
	// Fast path: the encoding every sender produces, name then value, each under 128 bytes.
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		n := 2 + int(b[1])
		if n+2 <= len(b) && b[n] == 0x12 && b[n+1] < 0x80 && n+2+int(b[n+1]) == len(b) {
			return b[2:n:n], b[n+2:], nil
		}
	}
	for len(b) > 0 {
		num, typ, v, _, n, err := nextField(b)
		if err != nil {
			return nil, nil, err
		}
		b = b[n:]
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return nil, nil, wireTypeError("label name", typ)
			}
			name = v
		case 2:
			if typ != protowire.BytesType {
				return nil, nil, wireTypeError("label value", typ)
			}
			value = v
		}
	}
	return name, value, nil
}

var (
	errOddRefs     = errors.New("odd number of label refs")
	errRefRange    = errors.New("label ref out of range of the symbol table")
	errRefOverflow = errors.New("label ref does not fit in uint32")
)

func (it *LabelIter) nextV2() (name, value []byte, ok bool) {
	nameRef, ok := it.nextRef()
	if !ok {
		return nil, nil, false
	}
	valueRef, ok := it.nextRef()
	if !ok {
		if it.err == nil {
			it.err = errOddRefs
		}
		return nil, nil, false
	}
	if nameRef >= uint64(len(it.syms)) || valueRef >= uint64(len(it.syms)) {
		it.err = fmt.Errorf("%w: refs %d, %d with %d symbols", errRefRange, nameRef, valueRef, len(it.syms))
		return nil, nil, false
	}
	return it.syms[nameRef], it.syms[valueRef], true
}

// nextRef returns the next labels_refs entry (field 1), packed or not: a protobuf parser must
// accept both encodings of a repeated scalar, and several packed chunks.
func (it *LabelIter) nextRef() (uint64, bool) {
	for {
		if len(it.packed) > 0 {
			x, n := protowire.ConsumeVarint(it.packed)
			if n < 0 {
				it.err = errTruncated
				return 0, false
			}
			it.packed = it.packed[n:]
			if x > 0xffffffff {
				it.err = errRefOverflow
				return 0, false
			}
			return x, true
		}
		if len(it.body) == 0 {
			return 0, false
		}
		num, typ, v, u, n, err := nextField(it.body)
		if err != nil {
			it.err = err
			return 0, false
		}
		it.body = it.body[n:]
		if num != 1 {
			continue
		}
		switch typ {
		case protowire.BytesType:
			it.packed = v
		case protowire.VarintType:
			if u > 0xffffffff {
				it.err = errRefOverflow
				return 0, false
			}
			return u, true
		default:
			it.err = wireTypeError("labels_refs", typ)
			return 0, false
		}
	}
}

// Err returns the error that stopped the iteration, if any.
func (it *LabelIter) Err() error { return it.err }

// hashLabels hashes a label set the way Prometheus's labels.Labels.Hash does (xxhash over
// name, 0xff, value, 0xff for each label in order), so that 1.0 and 2.0 copies of a series, and
// Prometheus itself, agree on it. A malformed label ends the hash early: the result is still
// deterministic, and a validating scan has already rejected such a series.
func hashLabels(it LabelIter) uint64 {
	var buf [512]byte
	h, _ := hashLabelsInto(buf[:0], it)
	return h
}

// hashLabelsInto is hashLabels with a caller's scratch buffer, which it returns (grown) for
// reuse, so that hot loops neither allocate nor clear a stack buffer per series.
func hashLabelsInto(b []byte, it LabelIter) (uint64, []byte) {
	const sep = 0xff
	b = b[:0]
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		if len(b)+len(name)+len(value)+2 > 64<<10 {
			return hashLabelsLong(b, name, value, it), b
		}
		b = append(b, name...)
		b = append(b, sep)
		b = append(b, value...)
		b = append(b, sep)
	}
	return xxhash.Sum64(b), b
}

// hashLabelsLong finishes a hash whose input does not fit the stack buffer.
func hashLabelsLong(prefix, name, value []byte, it LabelIter) uint64 {
	sep := []byte{0xff}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write(prefix)
	for ok := true; ok; name, value, ok = it.Next() {
		_, _ = d.Write(name)
		_, _ = d.Write(sep)
		_, _ = d.Write(value)
		_, _ = d.Write(sep)
	}
	return d.Sum64()
}

// metricName returns the value of __name__, or nil.
func metricName(it LabelIter) []byte {
	for name, value, ok := it.Next(); ok; name, value, ok = it.Next() {
		if string(name) == MetricNameLabel {
			return value
		}
	}
	return nil
}

// Character classes of the classic (pre-UTF-8) Prometheus name rules:
// metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*.
const (
	cLabelFirst = 1 << iota
	cLabel
	cMetricFirst
	cMetric
)

var nameClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			t[c] = cLabelFirst | cLabel | cMetricFirst | cMetric
		case c >= '0' && c <= '9':
			t[c] = cLabel | cMetric
		case c == ':':
			t[c] = cMetricFirst | cMetric
		}
	}
	return t
}()

func validName(b []byte, first, rest uint8) bool {
	if len(b) == 0 || nameClass[b[0]]&first == 0 {
		return false
	}
	for _, c := range b[1:] {
		if nameClass[c]&rest == 0 {
			return false
		}
	}
	return true
}

// ValidLabelName reports whether b is a label name under the classic rules
// ([a-zA-Z_][a-zA-Z0-9_]*). Prometheus 3 also accepts any UTF-8 name when both ends agree to;
// that is not supported here yet.
func ValidLabelName(b []byte) bool { return validName(b, cLabelFirst, cLabel) }

// ValidMetricName reports whether b is a metric name under the classic rules
// ([a-zA-Z_:][a-zA-Z0-9_:]*).
func ValidMetricName(b []byte) bool { return validName(b, cMetricFirst, cMetric) }

// labelChecker applies the remote-write label rules to one series' labels, in wire order. The
// caller keeps the previous label name in a local variable and passes it in: storing a slice in
// the checker is a pointer write, which costs a write barrier per label while the garbage
// collector runs (a tenth of the receive path's time).
type labelChecker struct {
	n       int
	hasName bool
	lim     Limits
}

// Limits bound what one series may carry, on top of the protocol's rules; zero fields do not
// limit. A series over a limit fails the scan with an error that wraps ErrLimit.
type Limits struct {
	Labels      int // labels per series, __name__ included
	NameLength  int // bytes of a label name
	ValueLength int // bytes of a label value
}

// ErrLimit marks a series refused for being over one of the Limits.
var ErrLimit = errors.New("remote-write series over a limit")

// check checks one label; prev is the name of the label before it in the series (nil for the
// first).
func (c *labelChecker) check(prev, name, value []byte) error {
	if c.lim != (Limits{}) {
		if err := c.lim.check(c.n, name, value); err != nil {
			return err
		}
	}
	if !ValidLabelName(name) {
		return fmt.Errorf("invalid label name %q", name)
	}
	if c.n > 0 {
		switch bytes.Compare(prev, name) {
		case 0:
			return fmt.Errorf("duplicate label name %q", name)
		case 1:
			return fmt.Errorf("labels not sorted: %q after %q", name, prev)
		}
	}
	if len(value) == 0 {
		return fmt.Errorf("label %q has an empty value", name)
	}
	if string(name) == MetricNameLabel {
		if !ValidMetricName(value) {
			return fmt.Errorf("invalid metric name %q", value)
		}
		c.hasName = true
	} else if !utf8.Valid(value) {
		return fmt.Errorf("label %q value is not valid UTF-8", name)
	}
	c.n++
	return nil
}

// limitError is a series over a limit; it is ErrLimit for errors.Is.
type limitError string

func (e limitError) Error() string        { return string(e) }
func (e limitError) Is(target error) bool { return target == ErrLimit }

func (l Limits) check(n int, name, value []byte) error {
	switch {
	case l.Labels > 0 && n >= l.Labels:
		return limitError(fmt.Sprintf("more than %d labels (max_labels_per_series)", l.Labels))
	case l.NameLength > 0 && len(name) > l.NameLength:
		return limitError(fmt.Sprintf("label name of %d bytes (%.64q…), over %d (max_label_name_length)", len(name), name, l.NameLength))
	case l.ValueLength > 0 && len(value) > l.ValueLength:
		return limitError(fmt.Sprintf("label %.64q has a value of %d bytes, over %d (max_label_value_length)", name, len(value), l.ValueLength))
	}
	return nil
}

func (c *labelChecker) done() error {
	if c.n == 0 {
		return errors.New("series has no labels")
	}
	if !c.hasName {
		return errors.New("series has no __name__ label")
	}
	return nil
}
