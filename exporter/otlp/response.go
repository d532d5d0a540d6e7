package otlp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// PartialSuccess reads an Export…ServiceResponse, protobuf or (json true) JSON, and returns the
// partial success it reports: nil when the backend took everything without comment. The OTLP
// specification says rejected items must not be retried, so the caller drops and counts them.
// The HTTP exporter uses this too.
func PartialSuccess(sig batch.Signal, body []byte, json bool) (*consumererror.Partial, error) {
	if len(body) == 0 {
		return nil, nil
	}
	var (
		rejected int64
		msg      string
		err      error
	)
	switch sig {
	case batch.Traces:
		r := ptraceotlp.NewExportResponse()
		err = unmarshal(r.UnmarshalProto, r.UnmarshalJSON, body, json)
		rejected, msg = r.PartialSuccess().RejectedSpans(), r.PartialSuccess().ErrorMessage()
	case batch.Metrics:
		r := pmetricotlp.NewExportResponse()
		err = unmarshal(r.UnmarshalProto, r.UnmarshalJSON, body, json)
		rejected, msg = r.PartialSuccess().RejectedDataPoints(), r.PartialSuccess().ErrorMessage()
	case batch.Logs:
		r := plogotlp.NewExportResponse()
		err = unmarshal(r.UnmarshalProto, r.UnmarshalJSON, body, json)
		rejected, msg = r.PartialSuccess().RejectedLogRecords(), r.PartialSuccess().ErrorMessage()
	default:
		return nil, fmt.Errorf("unknown signal %v", sig)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s export response: %w", sig, err)
	}
	if rejected <= 0 && msg == "" {
		return nil, nil
	}
	return &consumererror.Partial{Rejected: int(max(rejected, 0)), Message: msg}, nil
}

func unmarshal(proto, json func([]byte) error, body []byte, isJSON bool) error {
	if isJSON {
		return json(body)
	}
	return proto(body)
}

// classify maps a gRPC error to consumererror types following the OTLP/gRPC specification's
// table: the transient codes are retried (after the server's RetryInfo delay, if any);
// RESOURCE_EXHAUSTED only when the server sent RetryInfo, since without it the condition is
// not expected to pass (a quota, say); everything else is permanent. A RESOURCE_EXHAUSTED
// without RetryInfo whose message says the request was over a size limit (sizeRefusal) is
// marked ErrTooLarge too, for the Splitter to send the request in parts.
func classify(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC's status machinery: a local problem, worth another try.
		return consumererror.NewRetryable(err, 0)
	}
	delay, hasInfo := retryInfo(st)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return consumererror.NewRetryable(err, delay)
	case codes.ResourceExhausted:
		if hasInfo {
			return consumererror.NewRetryable(err, delay)
		}
		if sizeRefusal(st.Message()) {
			return consumererror.NewPermanent(fmt.Errorf("%w: %w", ErrTooLarge, err))
		}
	case codes.OK:
		return errors.New("gRPC error with status OK") // cannot happen; keep it out of the counts
	}
	return consumererror.NewPermanent(err)
}

// sizeRefusal reports whether a RESOURCE_EXHAUSTED message is a refusal for size, as the gRPC
// implementations word it: grpc-go and gRPC C-core "received message larger than max (N vs.
// M)" (also "after decompression"), grpc-java "gRPC message exceeds maximum size N", and the
// "message too large" of proxies. Any other RESOURCE_EXHAUSTED (a quota, a rate) is not made
// smaller by cutting the request, so it is not split.
func sizeRefusal(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"larger than max", "exceeds maximum", "too large"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func retryInfo(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			if ri.GetRetryDelay() == nil {
				return 0, true
			}
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}
