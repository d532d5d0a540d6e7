package promrw

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

var (
	// ErrMalformed is wrapped by every error that reports a request body (or its snappy block) that
	// does not follow the remote-write wire format or its label rules: the client's fault, an HTTP 400.
	ErrMalformed = errors.New("malformed remote-write request")
	// ErrTooLarge is wrapped by Decode when the block declares a decoded size above the limit: an
	// HTTP 413.
	ErrTooLarge = errors.New("remote-write request too large")
)

// Wire-level errors are static so that a parse failure deep inside a loop costs no allocation until
// the top level adds its context.
var (
	errTruncated   = errors.New("truncated field")
	errFieldNumber = errors.New("invalid field number")
	errGroup       = errors.New("unsupported wire type (group or reserved)")
	errLength      = errors.New("field length exceeds the enclosing message")
)

// readField parses the field at the start of b. For a length-delimited field v is its payload; for
// varint and fixed-width fields u holds the value. n is the number of bytes the field occupies.
//
// It is hand-written rather than built on protowire.ConsumeField because the scanners call it once
// per label, sample and series: one call that returns everything keeps the hot loop short.
// ReadField reads one protobuf field of b: its number and wire type, a length-delimited field's
// payload v, a varint's or fixed number's value u, and the bytes the field took, n. Errors say
// what is wrong (truncated, bad length, field number 0, groups); they do not wrap ErrMalformed.
func ReadField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, u uint64, n int, err error) {
	return readField(b)
}

func readField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, u uint64, n int, err error) {
	var tag uint64
	if len(b) > 0 && b[0] < 0x80 {
		tag, n = uint64(b[0]), 1
	} else {
		tag, n = protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, 0, nil, 0, 0, errTruncated
		}
	}
	if tag>>3 == 0 || tag>>3 > uint64(protowire.MaxValidNumber) {
		return 0, 0, nil, 0, 0, errFieldNumber
	}
	num, typ = protowire.Number(tag>>3), protowire.Type(tag&7)
	switch typ {
	case protowire.VarintType:
		x, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			return 0, 0, nil, 0, 0, errTruncated
		}
		return num, typ, nil, x, n + m, nil
	case protowire.Fixed64Type:
		if len(b)-n < 8 {
			return 0, 0, nil, 0, 0, errTruncated
		}
		return num, typ, nil, binary.LittleEndian.Uint64(b[n:]), n + 8, nil
	case protowire.Fixed32Type:
		if len(b)-n < 4 {
			return 0, 0, nil, 0, 0, errTruncated
		}
		return num, typ, nil, uint64(binary.LittleEndian.Uint32(b[n:])), n + 4, nil
	case protowire.BytesType:
		var l uint64
		var m int
		if n < len(b) && b[n] < 0x80 {
			l, m = uint64(b[n]), 1
		} else {
			l, m = protowire.ConsumeVarint(b[n:])
			if m < 0 {
				return 0, 0, nil, 0, 0, errTruncated
			}
		}
		n += m
		if l > uint64(len(b)-n) {
			return 0, 0, nil, 0, 0, errLength
		}
		end := n + int(l)
		return num, typ, b[n:end:end], 0, end, nil
	}
	return 0, 0, nil, 0, 0, errGroup
}

// checkMessage checks that b parses as a sequence of fields, without looking at their meaning:
// enough for parts (histograms, metadata) that a relay forwards but never reads.
func checkMessage(b []byte) error {
	for len(b) > 0 {
		_, _, _, _, n, err := readField(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func wireTypeError(what string, typ protowire.Type) error {
	return fmt.Errorf("%s has wire type %s", what, wireTypeName(typ))
}

func wireTypeName(typ protowire.Type) string {
	switch typ {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.BytesType:
		return "bytes"
	}
	return fmt.Sprintf("%d", typ)
}

// appendField appends a length-delimited field.
func appendField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// fieldSize is the encoded size of a length-delimited field with a payload of l bytes.
func fieldSize(num protowire.Number, l int) int {
	return protowire.SizeTag(num) + protowire.SizeVarint(uint64(l)) + l
}

// nextField is readField with a fast path for the most common field in a request: a short (under
// 128 bytes) length-delimited field with a one-byte tag, such as a label, its name and value, or a
// sample. It saves about 10% of a scan (BenchmarkScanV1).
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, u uint64, n int, err error) {
	if len(b) >= 2 && b[0]&7 == 2 && b[0] < 0x80 && b[0] > 7 && b[1] < 0x80 {
		if end := 2 + int(b[1]); end <= len(b) {
			return protowire.Number(b[0] >> 3), protowire.BytesType, b[2:end:end], 0, end, nil
		}
	}
	return readField(b)
}
