package batch

import (
	"errors"
	"fmt"
	"math"

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
	return ScanLimited(sig, b, Limits{})
}

// ScanLimited is Scan that also holds every resource, scope and item to lim; a request over
// a limit gets an error that wraps ErrLimit (not ErrMalformed).
func ScanLimited(sig Signal, b []byte, lim Limits) (int, error) {
	n := 0
	err := scanResources(sig, b, lim, func(r Resource) { n += r.Items })
	return n, err
}

// Limits bound what a request from outside may hold; a zero field is no limit.
type Limits struct {
	// MaxAttributes bounds the attributes of each resource, scope, span, span event, link,
	// log record, metric (its metadata), data point and exemplar.
	MaxAttributes int
	// MaxAttributeBytes bounds each of those attributes: the bytes of its key and of the
	// strings and byte arrays in its value (all of them, in an array or map value).
	MaxAttributeBytes int
}

func (l Limits) attrs() bool { return l.MaxAttributes > 0 || l.MaxAttributeBytes > 0 }

// bounds are the limits with none as the largest int, for the check each attribute gets:
// n > maxN || len(kv) > maxBytes, then over. (The encoded size is at least the key's and
// values' bytes, so most attributes are decided by their length alone.)
func (l Limits) bounds() (maxN, maxBytes int) {
	maxN, maxBytes = l.MaxAttributes, l.MaxAttributeBytes
	if maxN <= 0 {
		maxN = math.MaxInt
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	return maxN, maxBytes
}

// attr holds the n-th attribute (counted from 1), encoded as kv, to the limits.
func (l Limits) attr(n int, kv []byte) error {
	if maxN, maxBytes := l.bounds(); n > maxN || len(kv) > maxBytes {
		return l.over(n, kv)
	}
	return nil
}

// over is attr's slow path: which limit an attribute may be over, if any.
func (l Limits) over(n int, kv []byte) error {
	if l.MaxAttributes > 0 && n > l.MaxAttributes {
		return l.tooMany()
	}
	if size := attrBytes(kv); l.MaxAttributeBytes > 0 && size > l.MaxAttributeBytes {
		return l.tooLarge(attrKey(kv), size)
	}
	return nil
}

// tooMany and tooLarge are the errors of the two limits, encoded or decoded.
func (l Limits) tooMany() error {
	return &limitError{fmt.Sprintf("more than %d attributes (max_attributes_per_item)", l.MaxAttributes)}
}

func (l Limits) tooLarge(key string, size int) error {
	return &limitError{fmt.Sprintf("attribute %.64q of %d bytes, over %d (max_attribute_bytes)", key, size, l.MaxAttributeBytes)}
}

// attrBytes is what MaxAttributeBytes counts of an encoded KeyValue: its key's bytes and
// valueBytes of its value.
func attrBytes(kv []byte) int {
	n := 0
	bytesFields(kv, func(num protowire.Number, v []byte) {
		switch num {
		case 1:
			n += len(v)
		case 2:
			n += valueBytes(v)
		}
	})
	return n
}

// valueBytes is the bytes of the strings and byte arrays of an encoded AnyValue.
func valueBytes(av []byte) int {
	n := 0
	bytesFields(av, func(num protowire.Number, v []byte) {
		switch num {
		case 1, 7: // string_value, bytes_value
			n += len(v)
		case 5, 6: // array_value (AnyValues) and kvlist_value (KeyValues), in their field 1
			size := valueBytes
			if num == 6 {
				size = attrBytes
			}
			bytesFields(v, func(num protowire.Number, e []byte) {
				if num == 1 {
					n += size(e)
				}
			})
		}
	})
	return n
}

// attrKey is the key of an encoded KeyValue, for errors.
func attrKey(kv []byte) string {
	key := ""
	bytesFields(kv, func(num protowire.Number, v []byte) {
		if num == 1 {
			key = string(v)
		}
	})
	return key
}

// bytesFields calls fn for each length-delimited field of b, up to where b stops parsing (the
// limits count what is readable; whoever decodes b reports the rest).
func bytesFields(b []byte, fn func(protowire.Number, []byte)) {
	for len(b) > 0 {
		num, typ, v, size, err := next(b)
		if err != nil {
			return
		}
		b = b[size:]
		if typ == protowire.BytesType {
			fn(num, v)
		}
	}
}

// ErrLimit is wrapped by the errors of a request over one of its Limits.
var ErrLimit = errors.New("OTLP request over a limit")

// limitError is an error over a limit: its message says which, and it is ErrLimit.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func (e *limitError) Is(target error) bool { return target == ErrLimit }

// ScanResources is Scan with a callback per resource entry, used to split encoded requests at
// resource boundaries.
func ScanResources(sig Signal, b []byte, fn func(Resource)) error {
	return scanResources(sig, b, Limits{}, fn)
}

func scanResources(sig Signal, b []byte, lim Limits, fn func(Resource)) error {
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
		items, err := scanResource(sig, v, lim)
		if errors.Is(err, ErrLimit) {
			return fmt.Errorf("resource %d: %w", res, err)
		}
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

// Attribute fields of the messages above the items: Resource.attributes and
// InstrumentationScope.attributes, inside field 1 of the resource and scope entries; and
// Metric.metadata.
const (
	fieldResourceMsg   = 1
	fieldResourceAttrs = 1
	fieldScopeMsg      = 1
	fieldScopeAttrs    = 3
	fieldMetricMeta    = 12
)

func scanResource(sig Signal, b []byte, lim Limits) (int, error) {
	total := 0
	// A message field given more than once is merged by decoders: the resource's attributes
	// (and a scope's) are counted over every occurrence.
	resAttrs := 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == fieldResourceMsg && lim.attrs() && typ == protowire.BytesType {
			var err error
			if resAttrs, err = countAttrs(v, fieldResourceAttrs, lim, resAttrs); err != nil {
				return fmt.Errorf("resource attributes: %w", err)
			}
		}
		if num != fieldScope {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("scope entry has wire type %d", typ)
		}
		scopeAttrs := 0
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num == fieldScopeMsg && lim.attrs() && typ == protowire.BytesType {
				var err error
				if scopeAttrs, err = countAttrs(v, fieldScopeAttrs, lim, scopeAttrs); err != nil {
					return fmt.Errorf("scope attributes: %w", err)
				}
			}
			if num != fieldItem {
				return nil
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("item has wire type %d", typ)
			}
			var err error
			switch sig {
			case Traces:
				err = validItem(v, kindSpan, lim)
			case Logs:
				err = validItem(v, kindLogRecord, lim)
			default:
				points, err := scanMetric(v, lim)
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

func scanMetric(b []byte, lim Limits) (int, error) {
	// data is a oneof: when a (malformed but parseable) metric carries several data fields, the
	// last one wins, as it does when pdata decodes it.
	points, meta := 0, 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == fieldMetricMeta && lim.attrs() {
			meta++
			if err := lim.attr(meta, v); err != nil {
				return fmt.Errorf("metric metadata: %w", err)
			}
			return nil
		}
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
					if err := validItem(v, kind, lim); err != nil {
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
	kindEvent        // a span's event: attributes only
)

// idSize maps (kind, field number) to the size an ID field must have (wire type bytes, empty
// or exactly this long), 0 for fields that are no IDs; field numbers above 15 carry no IDs in
// any kind. One byte per field keeps a kind's table in a few bytes of cache; idName says which
// ID it is, for errors.
var idSize = [kindEvent + 1][16]uint8{
	// trace.proto Span: trace_id 1, span_id 2, parent_span_id 4 (links, 13, below).
	kindSpan: {1: 16, 2: 8, 4: 8},
	// Span.Link: trace_id 1, span_id 2.
	kindLink: {1: 16, 2: 8},
	// logs.proto LogRecord: trace_id 9, span_id 10.
	kindLogRecord: {9: 16, 10: 8},
	// metrics.proto Exemplar: span_id 4, trace_id 5.
	kindExemplar: {4: 8, 5: 16},
}

var idName = [kindEvent + 1][16]string{
	kindSpan:      {1: "trace_id", 2: "span_id", 4: "parent_span_id"},
	kindLink:      {1: "link trace_id", 2: "link span_id"},
	kindLogRecord: {9: "trace_id", 10: "span_id"},
	kindExemplar:  {4: "exemplar span_id", 5: "exemplar trace_id"},
}

// nestedField is the field of a kind holding messages whose IDs are checked too: a span's
// links, a data point's exemplars; 0 for none.
var nestedField = [kindEvent + 1]protowire.Number{kindSpan: 13, kindNumberPoint: 5, kindHistogramPoint: 8, kindExpHistogramPoint: 11}

var nestedKind = [kindEvent + 1]itemKind{kindSpan: kindLink, kindNumberPoint: kindExemplar, kindHistogramPoint: kindExemplar, kindExpHistogramPoint: kindExemplar}

// attrField is each kind's repeated KeyValue field (its attributes; an exemplar's
// filtered_attributes), counted against Limits.MaxAttributes; fieldEvents is a span's events,
// whose attributes are counted too.
var attrField = [kindEvent + 1]protowire.Number{kindSpan: 9, kindLink: 4, kindLogRecord: 6, kindExemplar: 7,
	kindNumberPoint: 7, kindHistogramPoint: 9, kindExpHistogramPoint: 1, kindSummaryPoint: 7, kindEvent: 3}

const fieldEvents = 11

// validItem checks that b parses as a sequence of protobuf fields and that its ID fields (and
// those of its links or exemplars) are bytes, empty or of their size; and that it (and each of
// its events, links and exemplars) holds to lim's attribute limits. It runs for every
// span, log record and data point, so it is a plain loop rather than eachField with a
// callback, and looks at a field's number only for the few that can hold IDs.
func validItem(b []byte, kind itemKind, lim Limits) error {
	// The fields to look at, as a bit mask: most fields are neither IDs nor nested, and a mask
	// in a register costs them one test.
	mask := idMask[kind]
	checkAttrs := lim.attrs()
	if checkAttrs {
		mask |= attrMask[kind]
	}
	maxN, maxBytes := lim.bounds()
	attrs := 0
	for len(b) > 0 {
		num, typ, v, n, err := next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if num >= 16 || mask&(1<<uint(num)) == 0 {
			continue
		}
		if checkAttrs {
			switch {
			case num == attrField[kind]:
				if attrs++; attrs > maxN || len(v) > maxBytes {
					if err := lim.over(attrs, v); err != nil {
						return err
					}
				}
				continue
			case kind == kindSpan && num == fieldEvents && typ == protowire.BytesType:
				if err := validItem(v, kindEvent, lim); err != nil {
					return fmt.Errorf("event: %w", err)
				}
				continue
			}
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
		if err := validItem(v, nestedKind[kind], lim); err != nil {
			return err
		}
	}
	return nil
}

// idMask has, per kind, the bits of its ID fields and of its nested field.
var idMask = func() (m [kindEvent + 1]uint16) {
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

// attrMask has, per kind, the bits of the fields counted against Limits.MaxAttributes.
var attrMask = func() (m [kindEvent + 1]uint16) {
	for k := range m {
		m[k] = 1 << attrField[k]
	}
	m[kindSpan] |= 1 << fieldEvents
	return m
}()

// countAttrs holds the attributes of b (a message), its fields numbered field, to lim, the
// first of them the seen+1-th; it returns how many it has seen then.
func countAttrs(b []byte, field protowire.Number, lim Limits, seen int) (int, error) {
	n := seen
	for len(b) > 0 {
		num, _, v, size, err := next(b)
		if err != nil {
			return n, nil // the message's structure is checked by whoever decodes it
		}
		b = b[size:]
		if num == field {
			n++
			if err := lim.attr(n, v); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

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
	// Fast paths for a one-byte tag (fields 1 to 15, every field of the messages scanned): a
	// length-delimited field shorter than 16 KiB (attribute keys and values, names, IDs, bodies),
	// a varint of up to 9 bytes (kinds, severities, counts), fixed64 and fixed32 (times, flags).
	// What they do not cover (longer tags and lengths, groups, truncated fields) protowire
	// reads below, and refuses what is malformed.
	if len(b) >= 2 && b[0] < 0x80 && b[0] > 7 {
		num := protowire.Number(b[0] >> 3)
		switch protowire.Type(b[0] & 7) {
		case protowire.BytesType:
			if b[1] < 0x80 {
				if end := 2 + int(b[1]); end <= len(b) {
					return num, protowire.BytesType, b[2:end:end], end, nil
				}
			} else if len(b) >= 3 && b[2] < 0x80 {
				if end := 3 + (int(b[1]&0x7f) | int(b[2])<<7); end <= len(b) {
					return num, protowire.BytesType, b[3:end:end], end, nil
				}
			}
		case protowire.VarintType:
			for i := 1; i < len(b) && i < 10; i++ {
				if b[i] < 0x80 {
					return num, protowire.VarintType, nil, i + 1, nil
				}
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				return num, protowire.Fixed64Type, nil, 9, nil
			}
		case protowire.Fixed32Type:
			if len(b) >= 5 {
				return num, protowire.Fixed32Type, nil, 5, nil
			}
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
