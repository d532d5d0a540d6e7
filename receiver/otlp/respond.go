package otlp

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// result is what the client is told after the pipeline answered.
type result struct {
	partial    *consumererror.Partial // set: success with partial_success
	st         *status.Status         // set: failure
	httpStatus int
	retryAfter time.Duration
}

// classify maps a pipeline error onto OTLP's answers for a request of items items: partial
// success is a success that names the rejected items; permanent errors tell the client not to
// retry; every other error is retryable, with the delay the pipeline asked for, if any.
//
// A partial success may concern a batch that merged this request with others (a batch
// processor, queue batching): the rejected count is then capped at the request's size, an upper
// bound of what the client lost.
func classify(err error, items int) result {
	if err == nil {
		return result{httpStatus: http.StatusOK}
	}
	if p, ok := consumererror.AsPartial(err); ok {
		if p.Rejected > items {
			capped := *p // the error may be shared with other requests' handles
			capped.Rejected = items
			p = &capped
		}
		return result{partial: p, httpStatus: http.StatusOK}
	}
	if consumererror.IsPermanent(err) {
		return result{st: status.New(codes.InvalidArgument, err.Error()), httpStatus: http.StatusBadRequest}
	}
	code, httpStatus := codes.Unavailable, http.StatusServiceUnavailable
	if consumererror.IsBackpressure(err) {
		// Full, not broken: the OTLP spec's throttling answer, which clients back off from.
		code, httpStatus = codes.ResourceExhausted, http.StatusTooManyRequests
	}
	st := status.New(code, err.Error())
	after, _ := consumererror.RetryAfter(err)
	if after > 0 {
		if withInfo, e := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); e == nil {
			st = withInfo
		}
	}
	return result{st: st, httpStatus: httpStatus, retryAfter: after}
}

// retryAfterSeconds rounds up, so that a client never comes back earlier than asked.
func retryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(int64(math.Ceil(d.Seconds())))
}

// partialResponse encodes an Export…ServiceResponse carrying partial_success.
func partialResponse(sig batch.Signal, p *consumererror.Partial, asJSON bool) ([]byte, error) {
	rejected, msg := int64(p.Rejected), p.Message
	switch sig {
	case batch.Traces:
		resp := ptraceotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedSpans(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
		return marshalResponse(resp, asJSON)
	case batch.Metrics:
		resp := pmetricotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedDataPoints(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
		return marshalResponse(resp, asJSON)
	case batch.Logs:
		resp := plogotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
		return marshalResponse(resp, asJSON)
	}
	return nil, fmt.Errorf("unknown signal %s", sig)
}

// emptyResponse encodes an empty Export…ServiceResponse: a plain success.
func emptyResponse(sig batch.Signal, asJSON bool) ([]byte, error) {
	switch sig {
	case batch.Traces:
		return marshalResponse(ptraceotlp.NewExportResponse(), asJSON)
	case batch.Metrics:
		return marshalResponse(pmetricotlp.NewExportResponse(), asJSON)
	case batch.Logs:
		return marshalResponse(plogotlp.NewExportResponse(), asJSON)
	}
	return nil, fmt.Errorf("unknown signal %s", sig)
}

type response interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

func marshalResponse(r response, asJSON bool) ([]byte, error) {
	if asJSON {
		return r.MarshalJSON()
	}
	return r.MarshalProto()
}
