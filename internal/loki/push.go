// Package loki is the Loki push API's wire format: the protobuf PushRequest (written and read
// with protowire, field by field, with no generated code) and its JSON form, for the loki
// exporter and receiver.
package loki

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Label is a name and a value: a stream label or an entry's structured metadata.
type Label struct{ Name, Value string }

// Entry is one log line at a time, with its structured metadata.
type Entry struct {
	Timestamp time.Time
	Line      string
	Metadata  []Label
}

// Stream is the entries of one label set.
type Stream struct {
	Labels  []Label // sorted by name
	Entries []Entry
}

// ErrMalformed is returned for a body that is not a valid push request.
var ErrMalformed = errors.New("malformed push request")

// FormatLabels writes a label set in Loki's selector syntax: {a="b", c="d\"e"}.
func FormatLabels(ls []Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteString(`=`)
		b.WriteString(quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ParseLabels reads a label set in selector syntax ({a="b", c="d"}, equality only).
func ParseLabels(s string) ([]Label, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("%w: labels %q: want {name=\"value\", ...}", ErrMalformed, trunc(s))
	}
	s = s[1 : len(s)-1]
	var out []Label
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("%w: labels: expected name=\"value\" at %q", ErrMalformed, trunc(s))
		}
		name := strings.TrimSpace(s[:eq])
		if !validName(name) {
			return nil, fmt.Errorf("%w: labels: %q is not a valid label name", ErrMalformed, trunc(name))
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return nil, fmt.Errorf("%w: labels: the value of %s is not quoted", ErrMalformed, name)
		}
		var v strings.Builder
		i := 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '"' {
				break
			}
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				case 't':
					v.WriteByte('\t')
				default:
					v.WriteByte(s[i])
				}
				continue
			}
			v.WriteByte(c)
		}
		if i >= len(s) {
			return nil, fmt.Errorf("%w: labels: unterminated value of %s", ErrMalformed, name)
		}
		out = append(out, Label{Name: name, Value: v.String()})
		s = s[i+1:]
	}
	slices.SortFunc(out, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("%w: labels: %s appears twice", ErrMalformed, out[i].Name)
		}
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Field numbers of logproto.PushRequest and what it holds.
const (
	fStreams        = 1 // PushRequest.streams
	fLabels         = 1 // StreamAdapter.labels
	fEntries        = 2 // StreamAdapter.entries
	fTimestamp      = 1 // EntryAdapter.timestamp (google.protobuf.Timestamp)
	fLine           = 2 // EntryAdapter.line
	fMetadata       = 3 // EntryAdapter.structuredMetadata
	fName, fValue   = 1, 2
	fSeconds, fNano = 1, 2
)

// AppendProto appends the protobuf PushRequest of streams to dst (not compressed).
func AppendProto(dst []byte, streams []Stream) []byte {
	// The labels are formatted once and the request's size is known before it is written: one
	// allocation for the whole body.
	keys, sizes := make([]string, len(streams)), make([]int, len(streams))
	total := 0
	for i, s := range streams {
		keys[i] = FormatLabels(s.Labels)
		sizes[i] = streamSize(keys[i], s)
		total += bytesField(sizes[i])
	}
	dst = slices.Grow(dst, total)
	for i, s := range streams {
		dst = protowire.AppendTag(dst, fStreams, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(sizes[i]))
		dst = protowire.AppendTag(dst, fLabels, protowire.BytesType)
		dst = protowire.AppendString(dst, keys[i])
		for _, e := range s.Entries {
			dst = protowire.AppendTag(dst, fEntries, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(entrySize(e)))
			ts := timestampSize(e.Timestamp)
			dst = protowire.AppendTag(dst, fTimestamp, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(ts))
			if sec := e.Timestamp.Unix(); sec != 0 {
				dst = protowire.AppendTag(dst, fSeconds, protowire.VarintType)
				dst = protowire.AppendVarint(dst, uint64(sec))
			}
			if ns := e.Timestamp.Nanosecond(); ns != 0 {
				dst = protowire.AppendTag(dst, fNano, protowire.VarintType)
				dst = protowire.AppendVarint(dst, uint64(ns))
			}
			dst = protowire.AppendTag(dst, fLine, protowire.BytesType)
			dst = protowire.AppendString(dst, e.Line)
			for _, m := range e.Metadata {
				dst = protowire.AppendTag(dst, fMetadata, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(labelSize(m)))
				dst = protowire.AppendTag(dst, fName, protowire.BytesType)
				dst = protowire.AppendString(dst, m.Name)
				dst = protowire.AppendTag(dst, fValue, protowire.BytesType)
				dst = protowire.AppendString(dst, m.Value)
			}
		}
	}
	return dst
}

func bytesField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func labelSize(l Label) int { return bytesField(len(l.Name)) + bytesField(len(l.Value)) }

func timestampSize(t time.Time) int {
	n := 0
	if sec := t.Unix(); sec != 0 {
		n += 1 + protowire.SizeVarint(uint64(sec))
	}
	if ns := t.Nanosecond(); ns != 0 {
		n += 1 + protowire.SizeVarint(uint64(ns))
	}
	return n
}

func entrySize(e Entry) int {
	n := bytesField(timestampSize(e.Timestamp)) + bytesField(len(e.Line))
	for _, m := range e.Metadata {
		n += bytesField(labelSize(m))
	}
	return n
}

func streamSize(key string, s Stream) int {
	n := bytesField(len(key))
	for _, e := range s.Entries {
		n += bytesField(entrySize(e))
	}
	return n
}

// Limits bound what a decoded request may hold.
type Limits struct {
	MaxLineBytes        int // 0: no limit
	MaxLabels           int // per stream; 0: no limit
	MaxLabelNameLength  int // bytes; 0: no limit
	MaxLabelValueLength int // bytes; 0: no limit
	MaxEntriesPerBody   int // 0: no limit
	MaxMetadataEntries  int // structured metadata per entry; 0: no limit
	MaxMetadataBytes    int // structured metadata per entry, names and values; 0: no limit
}

// checkMetadata holds an entry's structured metadata to the limits.
func (lim Limits) checkMetadata(md []Label) error {
	if lim.MaxMetadataEntries > 0 && len(md) > lim.MaxMetadataEntries {
		return fmt.Errorf("%w: an entry with %d structured metadata, the limit is %d", ErrTooMany, len(md), lim.MaxMetadataEntries)
	}
	if lim.MaxMetadataBytes > 0 {
		n := 0
		for _, l := range md {
			n += len(l.Name) + len(l.Value)
		}
		if n > lim.MaxMetadataBytes {
			return fmt.Errorf("%w: an entry with %d bytes of structured metadata, the limit is %d", ErrTooMany, n, lim.MaxMetadataBytes)
		}
	}
	return nil
}

// checkLabels holds a stream's labels (named by where in errors) to the limits.
func (lim Limits) checkLabels(where string, ls []Label) error {
	if lim.MaxLabels > 0 && len(ls) > lim.MaxLabels {
		return fmt.Errorf("%w: %s has %d labels, the limit is %d", ErrTooMany, where, len(ls), lim.MaxLabels)
	}
	for _, l := range ls {
		if lim.MaxLabelNameLength > 0 && len(l.Name) > lim.MaxLabelNameLength {
			return fmt.Errorf("%w: %s: label name %q is %d bytes, the limit is %d", ErrTooMany, where, trunc(l.Name), len(l.Name), lim.MaxLabelNameLength)
		}
		if lim.MaxLabelValueLength > 0 && len(l.Value) > lim.MaxLabelValueLength {
			return fmt.Errorf("%w: %s: the value of label %s is %d bytes, the limit is %d", ErrTooMany, where, trunc(l.Name), len(l.Value), lim.MaxLabelValueLength)
		}
	}
	return nil
}

// DecodeProto reads an uncompressed protobuf PushRequest.
func DecodeProto(b []byte, lim Limits) ([]Stream, error) {
	var out []Stream
	entries := 0
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fStreams {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: streams: wire type %d", ErrMalformed, typ)
		}
		var s Stream
		var labels string
		haveLabels := false
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == fLabels && typ == protowire.BytesType:
				labels, haveLabels = string(v), true
			case num == fEntries && typ == protowire.BytesType:
				e, err := decodeEntry(v, lim)
				if err != nil {
					return err
				}
				entries++
				if lim.MaxEntriesPerBody > 0 && entries > lim.MaxEntriesPerBody {
					return fmt.Errorf("%w: more than %d entries in one request", ErrTooMany, lim.MaxEntriesPerBody)
				}
				s.Entries = append(s.Entries, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !haveLabels {
			return fmt.Errorf("%w: a stream without labels", ErrMalformed)
		}
		if s.Labels, err = ParseLabels(labels); err != nil {
			return err
		}
		if err := lim.checkLabels("stream "+trunc(labels), s.Labels); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// ErrTooMany is returned for a request beyond a limit (labels, entries, line length).
var ErrTooMany = errors.New("push request over a limit")

func decodeEntry(b []byte, lim Limits) (Entry, error) {
	var e Entry
	var sec, nanos int64
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == fTimestamp && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if typ != protowire.VarintType {
					return nil
				}
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return fmt.Errorf("%w: timestamp", ErrMalformed)
				}
				switch num {
				case fSeconds:
					sec = int64(x)
				case fNano:
					nanos = int64(int32(x))
				}
				return nil
			})
		case num == fLine && typ == protowire.BytesType:
			if lim.MaxLineBytes > 0 && len(v) > lim.MaxLineBytes {
				return fmt.Errorf("%w: a line of %d bytes, the limit is %d", ErrTooMany, len(v), lim.MaxLineBytes)
			}
			e.Line = string(v)
		case num == fMetadata && typ == protowire.BytesType:
			var l Label
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if typ == protowire.BytesType {
					switch num {
					case fName:
						l.Name = string(v)
					case fValue:
						l.Value = string(v)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			e.Metadata = append(e.Metadata, l)
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if err := lim.checkMetadata(e.Metadata); err != nil {
		return e, err
	}
	if nanos < 0 || nanos >= 1e9 || sec < -62135596800 || sec > 253402300799 {
		return e, fmt.Errorf("%w: timestamp %d.%09d out of range", ErrMalformed, sec, nanos)
	}
	e.Timestamp = time.Unix(sec, nanos).UTC()
	return e, nil
}

// fields calls fn for every field of a message, with the value of a varint as its bytes.
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			_, n = protowire.ConsumeVarint(b)
			if n >= 0 {
				v = b[:n]
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// ValidUTF8 reports whether every label, line and metadata value is valid UTF-8 (Loki refuses
// the others).
func ValidUTF8(streams []Stream) bool {
	for _, s := range streams {
		for _, l := range s.Labels {
			if !utf8.ValidString(l.Value) {
				return false
			}
		}
		for _, e := range s.Entries {
			if !utf8.ValidString(e.Line) {
				return false
			}
		}
	}
	return true
}
