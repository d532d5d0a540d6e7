package batch

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The OTLP Export…ServiceRequest messages for all three signals share one shape: field 1 is a
// repeated resource-level message, which holds repeated scope-level messages in its field 2, which
// hold the items (spans, log records, metrics) in their field 2. Metrics go one level further: the
// item Prometheus and OTLP users count is the data point, inside the metric's data message.
const (
	fieldResource = 1
	fieldScope    = 2
	fieldItem     = 2
)

// Metric data fields (gauge, sum, histogram, exponential_histogram, summary); each holds
// its data points in field 1.
var metricDataFields = [...]protowire.Number{5, 7, 9, 10, 11}

// ErrMalformed is wrapped by every error Scan returns.
var ErrMalformed = errors.New("malformed OTLP protobuf")

// Resource is one top-level resource entry inside an encoded request.
type Resource struct {
	Start, End int // byte range of the whole field (tag included) inside the request
	Items      int
}

// Scan walks an encoded Export…ServiceRequest without decoding it and returns the number of items
// (spans, data points or log records). It checks the wire structure of every level down to the
// items' fields, and what OTLP backends refuse a whole request for (and so what would make a
// batch joined with other clients' data fail for all of them):
//   - trace and span IDs are empty or 16 and 8 bytes: a span's trace_id, span_id and
//     parent_span_id, its links', a log record's, an exemplar's;
//   - those ID fields are length-delimited (pdata's decoder refuses any other wire type).
//
// Attribute values and the rest of the items' nested messages are checked by whichever
// component decodes them.
func Scan(sig Signal, b []byte) (int, error) {
	n := 0
	err := ScanResources(sig, b, func(r Resource) { n += r.Items })
	return n, err
}

// ScanResources is Scan with a callback per resource entry, used to split encoded requests at
// resource boundaries.
func ScanResources(sig Signal, b []byte, fn func(Resource)) error {
	off := 0
	for res := 0; off < len(b); {
		start := off
		num, typ, v, n, err := next(b[off:])
		if err != nil {
			return fmt.Errorf("%w: request at byte %d: %v", ErrMalformed, off, err)
		}
		off += n
		if num != fieldResource {
			continue // unknown request fields are legal protobuf; they are kept as is
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: resource entry at byte %d has wire type %d, want bytes", ErrMalformed, start, typ)
		}
		items, err := scanResource(sig, v)
		if err != nil {
			return fmt.Errorf("%w: resource %d (at byte %d): %v", ErrMalformed, res, start, err)
		}
		res++
		if fn != nil {
			fn(Resource{Start: start, End: off, Items: items})
		}
	}
	return nil
}

func scanResource(sig Signal, b []byte) (int, error) {
	total := 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldScope {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("scope entry has wire type %d", typ)
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num != fieldItem {
				return nil
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("item has wire type %d", typ)
			}
			var err error
			switch sig {
			case Traces:
				err = validItem(v, kindSpan)
			case Logs:
				err = validItem(v, kindLogRecord)
			default:
				points, err := scanMetric(v)
				total += points
				return err
			}
			if err != nil {
				return fmt.Errorf("%s %d: %w", itemNames[sig], total, err)
			}
			total++
			return nil
		})
	})
	return total, err
}

var itemNames = [...]string{Traces: "span", Metrics: "data point", Logs: "log record"}

func scanMetric(b []byte) (int, error) {
	// data is a oneof: when a (malformed but parseable) metric carries several data fields, the
	// last one wins, as it does when pdata decodes it.
	points := 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		for _, f := range metricDataFields {
			if num != f {
				continue
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("metric data has wire type %d", typ)
			}
			points = 0
			kind := kindNumberPoint
			switch num {
			case 9:
				kind = kindHistogramPoint
			case 10:
				kind = kindExpHistogramPoint
			case 11:
				kind = kindSummaryPoint
			}
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 1 {
					if typ != protowire.BytesType {
						return fmt.Errorf("data point has wire type %d", typ)
					}
					if err := validItem(v, kind); err != nil {
						return fmt.Errorf("data point %d: %w", points, err)
					}
					points++
				}
				return nil
			})
		}
		return nil
	})
	return points, err
}

// Item kinds for validItem: the top-level ID fields of each (by field number, from
// opentelemetry-proto), and the field of a data point's exemplars.
type itemKind uint8

const (
	kindSpan itemKind = iota
	kindLink
	kindLogRecord
	kindExemplar
	kindNumberPoint // exemplars in field 5
	kindHistogramPoint
	kindExpHistogramPoint
	kindSummaryPoint // no exemplars
)

// idSize maps (kind, field number) to the size an ID field must have (wire type bytes, empty
// or exactly this long), 0 for fields that are no IDs; field numbers above 15 carry no IDs in
// any kind. One byte per field keeps a kind's table in a few bytes of cache; idName says which
// ID it is, for errors.
var idSize = [kindSummaryPoint + 1][16]uint8{
	// trace.proto Span: trace_id 1, span_id 2, parent_span_id 4 (links, 13, below).
	kindSpan: {1: 16, 2: 8, 4: 8},
	// Span.Link: trace_id 1, span_id 2.
	kindLink: {1: 16, 2: 8},
	// logs.proto LogRecord: trace_id 9, span_id 10.
	kindLogRecord: {9: 16, 10: 8},
	// metrics.proto Exemplar: span_id 4, trace_id 5.
	kindExemplar: {4: 8, 5: 16},
}

var idName = [kindSummaryPoint + 1][16]string{
	kindSpan:      {1: "trace_id", 2: "span_id", 4: "parent_span_id"},
	kindLink:      {1: "link trace_id", 2: "link span_id"},
	kindLogRecord: {9: "trace_id", 10: "span_id"},
	kindExemplar:  {4: "exemplar span_id", 5: "exemplar trace_id"},
}

// nestedField is the field of a kind holding messages whose IDs are checked too: a span's
// links, a data point's exemplars; 0 for none.
var nestedField = [kindSummaryPoint + 1]protowire.Number{kindSpan: 13, kindNumberPoint: 5, kindHistogramPoint: 8, kindExpHistogramPoint: 11}

var nestedKind = [kindSummaryPoint + 1]itemKind{kindSpan: kindLink, kindNumberPoint: kindExemplar, kindHistogramPoint: kindExemplar, kindExpHistogramPoint: kindExemplar}

// validItem checks that b parses as a sequence of protobuf fields and that its ID fields (and
// those of its links or exemplars) are bytes, empty or of their size. It runs for every span,
// log record and data point, so it is a plain loop rather than eachField with a callback, and
// looks at a field's number only for the few that can hold IDs.
func validItem(b []byte, kind itemKind) error {
	// The fields to look at, as a bit mask: most fields are neither IDs nor nested, and a mask
	// in a register costs them one test.
	mask := idMask[kind]
	for len(b) > 0 {
		num, typ, v, n, err := next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if num >= 16 || mask&(1<<uint(num)) == 0 {
			continue
		}
		if size := int(idSize[kind][num]); size != 0 {
			if typ != protowire.BytesType {
				return fmt.Errorf("%s (field %d) has wire type %d, want bytes", idName[kind][num], num, typ)
			}
			if len(v) != 0 && len(v) != size {
				return fmt.Errorf("%s is %d bytes, must be %d (or empty)", idName[kind][num], len(v), size)
			}
			continue
		}
		// The nested field: links or exemplars.
		if typ != protowire.BytesType {
			return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
		}
		if err := validItem(v, nestedKind[kind]); err != nil {
			return err
		}
	}
	return nil
}

// idMask has, per kind, the bits of its ID fields and of its nested field.
var idMask = func() (m [kindSummaryPoint + 1]uint16) {
	for k := range m {
		for num, size := range idSize[k] {
			if size != 0 {
				m[k] |= 1 << num
			}
		}
		if nestedField[k] != 0 {
			m[k] |= 1 << nestedField[k]
		}
	}
	return m
}()

func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, v, n, err := next(b)
		if err != nil {
			return err
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// next consumes one field and returns its number, type, value bytes (for length-delimited fields)
// and total length.
func next(b []byte) (protowire.Number, protowire.Type, []byte, int, error) {
	// Fast path: a one-byte tag of a length-delimited field shorter than 128 bytes (attribute
	// keys and values, names, ids), the commonest field in a request.
	if len(b) >= 2 && b[0]&7 == byte(protowire.BytesType) && b[0] < 0x80 && b[0] > 7 && b[1] < 0x80 {
		if end := 2 + int(b[1]); end <= len(b) {
			return protowire.Number(b[0] >> 3), protowire.BytesType, b[2:end:end], end, nil
		}
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, protowire.ParseError(n)
	}
	if typ == protowire.BytesType {
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return 0, 0, nil, 0, protowire.ParseError(m)
		}
		return num, typ, v, n + m, nil
	}
	m := protowire.ConsumeFieldValue(num, typ, b[n:])
	if m < 0 {
		return 0, 0, nil, 0, protowire.ParseError(m)
	}
	return num, typ, nil, n + m, nil
}
