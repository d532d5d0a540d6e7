package batch_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/batch"
)

// field is one encoded protobuf field.
func bytesField(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func msg(fields ...[]byte) []byte { return bytes.Join(fields, nil) }

// request wraps items in one scope of one resource: every signal's request has this shape.
func request(items ...[]byte) []byte {
	var scope []byte
	for _, it := range items {
		scope = append(scope, bytesField(2, it)...)
	}
	return bytesField(1, bytesField(2, scope))
}

// metricRequest wraps data points in a metric whose data field is dataField (5 gauge, 7 sum,
// 9 histogram, 10 exponential histogram, 11 summary).
func metricRequest(dataField protowire.Number, points ...[]byte) []byte {
	var data []byte
	for _, p := range points {
		data = append(data, bytesField(1, p)...)
	}
	return request(msg(bytesField(1, []byte("m")), bytesField(dataField, data)))
}

func id(n int) []byte { return bytes.Repeat([]byte{0xab}, n) }

func rawSpan(fields ...[]byte) []byte {
	return msg(append([][]byte{bytesField(1, id(16)), bytesField(2, id(8)), bytesField(5, []byte("op"))}, fields...)...)
}

func TestScanRefusesWhatBackendsRefuse(t *testing.T) {
	exemplar := func(traceLen, spanLen int) []byte {
		return msg(bytesField(5, id(traceLen)), bytesField(4, id(spanLen)))
	}
	for _, tc := range []struct {
		name string
		sig  batch.Signal
		req  []byte
		want string // "" when valid
	}{
		{"valid span", batch.Traces, request(rawSpan()), ""},
		{"empty ids", batch.Traces, request(msg(bytesField(1, nil), bytesField(2, nil))), ""},
		{"trace_id 15 bytes", batch.Traces, request(rawSpan(), msg(bytesField(1, id(15)), bytesField(2, id(8)))), "span 1: trace_id is 15 bytes, must be 16"},
		{"trace_id 17 bytes", batch.Traces, request(msg(bytesField(1, id(17)))), "span 0: trace_id is 17 bytes, must be 16"},
		{"span_id 7 bytes", batch.Traces, request(msg(bytesField(1, id(16)), bytesField(2, id(7)))), "span_id is 7 bytes, must be 8"},
		{"parent 9 bytes", batch.Traces, request(rawSpan(bytesField(4, id(9)))), "parent_span_id is 9 bytes, must be 8"},
		{"link trace_id", batch.Traces, request(rawSpan(bytesField(13, msg(bytesField(1, id(3)), bytesField(2, id(8)))))), "link trace_id is 3 bytes"},
		{"link span_id", batch.Traces, request(rawSpan(bytesField(13, msg(bytesField(1, id(16)), bytesField(2, id(4)))))), "link span_id is 4 bytes"},
		{"valid link", batch.Traces, request(rawSpan(bytesField(13, msg(bytesField(1, id(16)), bytesField(2, id(8)))))), ""},
		{"trace_id as varint", batch.Traces, request(msg(varintField(1, 7))), "trace_id (field 1) has wire type 0, want bytes"},
		{"unknown field kept", batch.Traces, request(rawSpan(bytesField(99, []byte("x")))), ""},

		{"log without ids", batch.Logs, request(msg(bytesField(5, nil))), ""},
		{"log trace_id", batch.Logs, request(msg(bytesField(9, id(12)))), "log record 0: trace_id is 12 bytes, must be 16"},
		{"log span_id as varint", batch.Logs, request(msg(varintField(10, 1))), "span_id (field 10) has wire type 0, want bytes"},
		{"link as varint", batch.Traces, request(rawSpan(varintField(13, 1))), "field 13 has wire type 0, want bytes"},
		{"log span_id", batch.Logs, request(msg(bytesField(9, id(16)), bytesField(10, id(16)))), "span_id is 16 bytes, must be 8"},

		{"gauge exemplar", batch.Metrics, metricRequest(5, bytesField(5, exemplar(16, 8))), ""},
		{"gauge exemplar trace_id", batch.Metrics, metricRequest(5, nil, bytesField(5, exemplar(15, 8))), "data point 1: exemplar trace_id is 15 bytes"},
		{"sum exemplar span_id", batch.Metrics, metricRequest(7, bytesField(5, exemplar(16, 9))), "exemplar span_id is 9 bytes"},
		{"histogram exemplar", batch.Metrics, metricRequest(9, bytesField(8, exemplar(1, 8))), "exemplar trace_id is 1 bytes"},
		{"exp histogram exemplar", batch.Metrics, metricRequest(10, bytesField(11, exemplar(16, 2))), "exemplar span_id is 2 bytes"},
		{"summary point", batch.Metrics, metricRequest(11, bytesField(99, exemplar(1, 1))), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := batch.Scan(tc.sig, tc.req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Scan refused a valid request: %v", err)
				}
				if n == 0 {
					t.Errorf("no items counted")
				}
				if err := decodeWithPdata(tc.sig, tc.req); err != nil {
					t.Errorf("pdata refuses what the scan accepts: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, batch.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Scan = %v, want ErrMalformed saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "resource 0") {
				t.Errorf("the error does not say which resource: %v", err)
			}
			if decodeWithPdata(tc.sig, tc.req) == nil {
				t.Errorf("pdata accepts what the scan refuses")
			}
		})
	}
}

func decodeWithPdata(sig batch.Signal, b []byte) error {
	var err error
	switch sig {
	case batch.Traces:
		_, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	case batch.Metrics:
		_, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	default:
		_, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
	}
	return err
}
