package otlpgrpc

import (
	"bytes"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/vigilhq/vigil/internal/batch"
)

// Full method names of the OTLP Export calls.
const (
	TracesMethod  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	MetricsMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	LogsMethod    = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
)

// Method returns the Export method for a signal.
func Method(sig batch.Signal) string {
	switch sig {
	case batch.Traces:
		return TracesMethod
	case batch.Metrics:
		return MetricsMethod
	default:
		return LogsMethod
	}
}

// Raw is a message whose serialized form is carried as is: Bytes, or when Parts is set (sending
// only) the concatenation of Parts, which gRPC compresses and frames without joining them.
type Raw struct {
	Bytes []byte
	Parts [][]byte
	// Refused is set (and Bytes nil) when a message received could not be decompressed for
	// lack of budget (see refusalMarker); the receiver answers RESOURCE_EXHAUSTED.
	Refused bool
}

// Codec marshals *Raw by handing over its bytes and unmarshals into *Raw by copying the wire
// bytes out of gRPC's pooled buffers; any other message goes to the standard proto codec.
// It keeps the name "proto" so peers see ordinary application/grpc+proto traffic.
type Codec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

// Name is the content subtype.
func (Codec) Name() string { return proto.Name }

// Marshal serializes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*Raw); ok {
		if r.Parts == nil {
			return mem.BufferSlice{mem.SliceBuffer(r.Bytes)}, nil
		}
		out := make(mem.BufferSlice, len(r.Parts))
		for i, p := range r.Parts {
			out[i] = mem.SliceBuffer(p)
		}
		return out, nil
	}
	return protoCodec.Marshal(v)
}

// Unmarshal deserializes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if refused(data) {
		if r, ok := v.(*Raw); ok {
			r.Bytes, r.Refused = nil, true
			return nil
		}
		return ErrInFlightLimit
	}
	if r, ok := v.(*Raw); ok {
		r.Bytes, r.Refused = join(data), false
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// join copies a message's buffers into one slice the receiver keeps. Unlike
// BufferSlice.Materialize it does not zero the new slice first (bytes.Join and bytes.Clone
// allocate without clearing), which for requests of hundreds of kilobytes is a tenth of a relay's
// CPU at moderate rates.
func join(data mem.BufferSlice) []byte {
	switch len(data) {
	case 0:
		return []byte{}
	case 1:
		if b := data[0].ReadOnlyData(); len(b) > 0 {
			return bytes.Clone(b)
		}
		return []byte{}
	}
	parts := make([][]byte, len(data))
	for i, buf := range data {
		parts[i] = buf.ReadOnlyData()
	}
	return bytes.Join(parts, nil)
}
