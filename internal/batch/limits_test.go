package batch

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// putAttrs adds n attributes to m.
func putAttrs(m pcommon.Map, n int) {
	start := m.Len()
	for i := range n {
		m.PutStr(fmt.Sprintf("k%d", start+i), "v")
	}
}

// limitCase builds a request with n attributes in one place (and a few everywhere else).
type limitCase struct {
	name, where string
	build       func(n int) *Batch
}

func limitCases() []limitCase {
	span := func(place string) func(int) *Batch {
		return func(n int) *Batch {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			putAttrs(rs.Resource().Attributes(), 2)
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Spans().AppendEmpty().SetName("first")
			sp := ss.Spans().AppendEmpty()
			putAttrs(sp.Attributes(), 3)
			ev := sp.Events().AppendEmpty()
			lk := sp.Links().AppendEmpty()
			switch place {
			case "resource":
				putAttrs(rs.Resource().Attributes(), n-2)
			case "scope":
				putAttrs(ss.Scope().Attributes(), n)
			case "span":
				putAttrs(sp.Attributes(), n-3)
			case "event":
				putAttrs(ev.Attributes(), n)
			case "link":
				putAttrs(lk.Attributes(), n)
			}
			return FromTraces(td)
		}
	}
	logs := func(n int) *Batch {
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		sl.LogRecords().AppendEmpty()
		putAttrs(sl.LogRecords().AppendEmpty().Attributes(), n)
		return FromLogs(ld)
	}
	metric := func(place string) func(int) *Batch {
		return func(n int) *Batch {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("m")
			var attrs pcommon.Map
			var ex pmetric.ExemplarSlice
			switch place {
			case "gauge", "metadata", "exemplar":
				dps := m.SetEmptyGauge().DataPoints()
				dps.AppendEmpty()
				dp := dps.AppendEmpty()
				attrs, ex = dp.Attributes(), dp.Exemplars()
			case "sum":
				dps := m.SetEmptySum().DataPoints()
				dps.AppendEmpty()
				attrs = dps.AppendEmpty().Attributes()
			case "histogram":
				dps := m.SetEmptyHistogram().DataPoints()
				dps.AppendEmpty()
				attrs = dps.AppendEmpty().Attributes()
			case "exponential histogram":
				dps := m.SetEmptyExponentialHistogram().DataPoints()
				dps.AppendEmpty()
				attrs = dps.AppendEmpty().Attributes()
			case "summary":
				dps := m.SetEmptySummary().DataPoints()
				dps.AppendEmpty()
				attrs = dps.AppendEmpty().Attributes()
			}
			switch place {
			case "metadata":
				putAttrs(m.Metadata(), n)
			case "exemplar":
				putAttrs(ex.AppendEmpty().FilteredAttributes(), n)
			default:
				putAttrs(attrs, n)
			}
			return FromMetrics(md)
		}
	}
	cases := []limitCase{
		{"resource", "resource 0: resource attributes: more than", span("resource")},
		{"scope", "resource 0: scope attributes: more than", span("scope")},
		{"span", "resource 0: span 1: more than", span("span")},
		{"span event", "resource 0: span 1: event: more than", span("event")},
		{"span link", "resource 0: span 1: more than", span("link")},
		{"log record", "resource 0: log record 1: more than", logs},
		{"metric metadata", "resource 0: metric metadata: more than", metric("metadata")},
		{"exemplar", "resource 0: data point 1: more than", metric("exemplar")},
	}
	for _, kind := range []string{"gauge", "sum", "histogram", "exponential histogram", "summary"} {
		cases = append(cases, limitCase{kind + " point", "resource 0: data point 1: more than", metric(kind)})
	}
	return cases
}

// TestAttributeLimits: each place that holds attributes may hold as many as the limit and no
// more, in the encoded form (ScanLimited) and decoded (CheckLimits, for OTLP/JSON), with the
// same error naming the place; without a limit both pass.
func TestAttributeLimits(t *testing.T) {
	const max = 10
	lim := Limits{MaxAttributes: max}
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{max, max + 1} {
				b := tc.build(n)
				enc, err := b.Encoded()
				if err != nil {
					t.Fatal(err)
				}
				_, wireErr := ScanLimited(b.Signal(), enc, lim)
				decErr := CheckLimits(b, lim)
				if n == max {
					if wireErr != nil || decErr != nil {
						t.Errorf("%d attributes at the limit: wire %v, decoded %v", n, wireErr, decErr)
					}
					continue
				}
				for form, err := range map[string]error{"wire": wireErr, "decoded": decErr} {
					if !errors.Is(err, ErrLimit) || errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), tc.where) ||
						!strings.HasSuffix(err.Error(), "more than 10 attributes (max_attributes_per_item)") {
						t.Errorf("%s, %d attributes: %v, want ErrLimit %q…", form, n, err, tc.where)
					}
				}
				if _, err := Scan(b.Signal(), enc); err != nil {
					t.Errorf("without a limit: %v", err)
				}
				if err := CheckLimits(b, Limits{}); err != nil {
					t.Errorf("decoded, without a limit: %v", err)
				}
			}
		})
	}
}

// TestAttributeBytes: an attribute's size is its key's bytes and those of every string and
// byte array in its value, nested ones too; one at max_attribute_bytes passes, one byte more
// is refused, encoded and decoded alike, wherever it is.
func TestAttributeBytes(t *testing.T) {
	put := func(m pcommon.Map, extra int) {
		v := m.PutEmptyMap("k") // 1 byte of key
		v.PutStr("a", strings.Repeat("x", 4+extra))
		l := v.PutEmptySlice("list")
		l.AppendEmpty().SetStr("yy")
		l.AppendEmpty().SetEmptyBytes().FromRaw([]byte{1, 2, 3})
		l.AppendEmpty().SetInt(42) // numbers count nothing
		// 1 + (1 + 4) + (4 + 2 + 3) = 15 bytes, plus extra
	}
	places := map[string]func(extra int) *Batch{
		"log record": func(extra int) *Batch {
			ld := plog.NewLogs()
			put(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes(), extra)
			return FromLogs(ld)
		},
		"resource": func(extra int) *Batch {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			put(rs.Resource().Attributes(), extra)
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			return FromTraces(td)
		},
		"metric metadata": func(extra int) *Batch {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetEmptyGauge().DataPoints().AppendEmpty()
			put(m.Metadata(), extra)
			return FromMetrics(md)
		},
	}
	lim := Limits{MaxAttributeBytes: 15}
	for name, build := range places {
		for _, extra := range []int{0, 1} {
			b := build(extra)
			enc, err := b.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			_, wireErr := ScanLimited(b.Signal(), enc, lim)
			decErr := CheckLimits(b, lim)
			if extra == 0 {
				if wireErr != nil || decErr != nil {
					t.Errorf("%s at the limit: wire %v, decoded %v", name, wireErr, decErr)
				}
				continue
			}
			for form, err := range map[string]error{"wire": wireErr, "decoded": decErr} {
				if !errors.Is(err, ErrLimit) || !strings.HasSuffix(err.Error(), `attribute "k" of 16 bytes, over 15 (max_attribute_bytes)`) {
					t.Errorf("%s, one byte over, %s: %v", name, form, err)
				}
			}
		}
	}
}

// TestRepeatedResourceMessage: a resource (or scope) message given twice is merged by
// decoders, so its attributes are counted over both on the wire too.
func TestRepeatedResourceMessage(t *testing.T) {
	kv := func(k string) []byte {
		var av, b []byte
		av = protowire.AppendTag(av, 1, protowire.BytesType)
		av = protowire.AppendString(av, "v")
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		return protowire.AppendBytes(b, av)
	}
	msg := func(field protowire.Number, keys ...string) []byte {
		var b []byte
		for _, k := range keys {
			b = protowire.AppendTag(b, field, protowire.BytesType)
			b = protowire.AppendBytes(b, kv(k))
		}
		return b
	}
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	record := field(nil, 2, nil) // ScopeLogs.log_records: one empty record
	for name, rl := range map[string][]byte{
		"resource": field(field(field(nil, 1, msg(1, "a", "b", "c")), 1, msg(1, "d", "e", "f")), 2, record),
		"scope":    field(nil, 2, field(field(record, 1, msg(3, "a", "b", "c")), 1, msg(3, "d", "e", "f"))),
	} {
		data := field(nil, 1, rl)
		lim := Limits{MaxAttributes: 4}
		if _, err := ScanLimited(Logs, data, lim); !errors.Is(err, ErrLimit) {
			t.Errorf("%s message twice, 3 attributes each, limit 4: wire %v, want ErrLimit", name, err)
		}
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckLimits(FromLogs(ld), lim); !errors.Is(err, ErrLimit) {
			t.Errorf("%s message twice, decoded: %v, want ErrLimit (the decoder merged them)", name, err)
		}
	}
}
