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
// items; the bodies of items are checked by whichever component decodes them.
func Scan(sig Signal, b []byte) (int, error) {
	n := 0
	err := ScanResources(sig, b, func(r Resource) { n += r.Items })
	return n, err
}

// ScanResources is Scan with a callback per resource entry, used to split encoded requests at
// resource boundaries.
func ScanResources(sig Signal, b []byte, fn func(Resource)) error {
	off := 0
	for off < len(b) {
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
			return fmt.Errorf("%w: resource entry at byte %d: %v", ErrMalformed, start, err)
		}
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
			if sig != Metrics {
				total++
				return validMessage(v)
			}
			points, err := scanMetric(v)
			total += points
			return err
		})
	})
	return total, err
}

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
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 1 {
					if typ != protowire.BytesType {
						return fmt.Errorf("data point has wire type %d", typ)
					}
					points++
					return validMessage(v)
				}
				return nil
			})
		}
		return nil
	})
	return points, err
}

// validMessage checks that b parses as a sequence of protobuf fields. It runs for every span,
// log record and data point, so it is a plain loop rather than eachField with a callback.
func validMessage(b []byte) error {
	for len(b) > 0 {
		_, _, _, n, err := next(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
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
