package otlp

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
)

// badTraceID is a valid request from a test payload with one more resource holding a span whose
// trace ID is 17 bytes: what a backend refuses (and would refuse together with everything it
// was batched with).
func badTraceID(t *testing.T) []byte {
	good := payloadFor(t, batch.Traces, 0).proto
	span := append(protowireBytesField(1, bytes.Repeat([]byte{1}, 17)), protowireBytesField(2, bytes.Repeat([]byte{2}, 8))...)
	bad := protowireBytesField(1, protowireBytesField(2, protowireBytesField(2, span)))
	return append(append([]byte(nil), good...), bad...)
}

// TestInvalidIDsAreRefusedAlone: a request with a wrong-length trace ID is refused (400 /
// InvalidArgument, with the reason) before anything of it reaches the pipeline, while valid
// requests sent at the same time are accepted.
func TestInvalidIDsAreRefusedAlone(t *testing.T) {
	s, next := newSinks(batch.Traces)
	r := start(t, testConfig(), next)
	conn := dial(t, r.GRPCAddr())
	bad := badTraceID(t)
	good := payloadFor(t, batch.Traces, 100)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := exportGRPC(t.Context(), conn, good); err != nil {
				t.Errorf("valid request: %v", err)
			}
		})
	}
	wg.Go(func() {
		err := conn.Invoke(t.Context(), otlpgrpc.Method(batch.Traces), &otlpgrpc.Raw{Bytes: bad}, &otlpgrpc.Raw{},
			grpc.ForceCodecV2(otlpgrpc.Codec{}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "trace_id is 17 bytes, must be 16") {
			t.Errorf("gRPC: got %v, want InvalidArgument naming the trace_id", err)
		}
	})
	wg.Go(func() {
		resp, out := do(t, r.HTTPAddr(), httpReq{path: "/v1/traces", contentType: contentTypeProto, body: bytes.NewReader(bad)})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("HTTP: %s, want 400", resp.Status)
		}
		if st := rpcStatus(t, contentTypeProto, out); !strings.Contains(st.Message, "trace_id is 17 bytes") {
			t.Errorf("HTTP status message %q, want the reason", st.Message)
		}
	})
	wg.Wait()
	if got, want := s[batch.Traces].Items(), 4*good.items; got != want {
		t.Errorf("the pipeline got %d spans, want %d (the valid requests' only)", got, want)
	}
}
