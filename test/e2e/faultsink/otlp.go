package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	// gzip and zstd for gRPC, as Vigil's exporters may send either.
	_ "github.com/vigilhq/vigil/internal/otlpgrpc"
)

// maxBody bounds a request body, compressed and decompressed.
const maxBody = 64 << 20

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	s *Sink
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	s *Sink
}

func newGRPCServer(s *Sink) *grpc.Server {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxBody))
	ptraceotlp.RegisterGRPCServer(srv, &grpcTraces{s: s})
	plogotlp.RegisterGRPCServer(srv, &grpcLogs{s: s})
	return srv
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	return ptraceotlp.NewExportResponse(), grpcAnswer(g.s.handle(ctx, tracesPayload(req.Traces())))
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	return plogotlp.NewExportResponse(), grpcAnswer(g.s.handle(ctx, logsPayload(req.Logs())))
}

// grpcAnswer is the gRPC status of an outcome (nil: OK).
func grpcAnswer(out outcome) error {
	switch out.fault {
	case accept:
		return nil
	case reject:
		return status.Error(codes.InvalidArgument, "faultsink: rejected on purpose")
	case throttle:
		st := status.New(codes.ResourceExhausted, "faultsink: throttled on purpose")
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(out.retryAfter)}); err == nil {
			st = d
		}
		return st.Err()
	}
	return status.Error(codes.Unavailable, "faultsink: "+out.fault.String()+" on purpose")
}

func newHTTPServer(s *Sink) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) { s.serveHTTP(w, r, false) })
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) { s.serveHTTP(w, r, true) })
	mux.HandleFunc("POST /api/v1/write", s.serveRemoteWrite)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// otlpRequest is the part of ptraceotlp/plogotlp's ExportRequest the sink uses.
type otlpRequest interface {
	UnmarshalJSON([]byte) error
	UnmarshalProto([]byte) error
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request, logs bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	asJSON := ct == "application/json"
	body, err := readBody(r)
	if err != nil {
		s.decodeErrors.Add(1)
		writeStatus(w, http.StatusBadRequest, asJSON, err.Error())
		return
	}
	treq, lreq := ptraceotlp.NewExportRequest(), plogotlp.NewExportRequest()
	var req otlpRequest = treq
	if logs {
		req = lreq
	}
	if asJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		s.decodeErrors.Add(1)
		writeStatus(w, http.StatusBadRequest, asJSON, "decode: "+err.Error())
		return
	}
	var p payload
	if logs {
		p = logsPayload(lreq.Logs())
	} else {
		p = tracesPayload(treq.Traces())
	}
	out := s.handle(r.Context(), p)
	switch out.fault {
	case accept:
		resp := ptraceotlp.NewExportResponse() // an empty response has the same bytes for every signal
		var b []byte
		if asJSON {
			b, err = resp.MarshalJSON()
			w.Header().Set("Content-Type", "application/json")
		} else {
			b, err = resp.MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	case reject:
		writeStatus(w, http.StatusBadRequest, asJSON, "faultsink: rejected on purpose")
	case throttle:
		w.Header().Set("Retry-After", fmt.Sprint(int64(math.Ceil(out.retryAfter.Seconds()))))
		writeStatus(w, http.StatusTooManyRequests, asJSON, "faultsink: throttled on purpose")
	default:
		writeStatus(w, http.StatusServiceUnavailable, asJSON, "faultsink: "+out.fault.String()+" on purpose")
	}
}

// readBody reads the body, inflating gzip or zstd, within maxBody.
func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, maxBody)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(rd, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rd, maxBody+1))
	if err != nil {
		return nil, err
	}
	if n > maxBody {
		return nil, errors.New("body too large")
	}
	return buf.Bytes(), nil
}

// writeStatus answers an error as OTLP/HTTP says: a google.rpc.Status in the request's encoding.
func writeStatus(w http.ResponseWriter, code int, asJSON bool, msg string) {
	st := &spb.Status{Code: int32(httpToGRPC(code)), Message: msg}
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"code":%d,"message":%q}`, st.Code, msg)
		return
	}
	b, _ := proto.Marshal(st)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func httpToGRPC(code int) codes.Code {
	switch code {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	}
	return codes.Unavailable
}
