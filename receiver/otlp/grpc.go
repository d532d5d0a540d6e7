package otlp

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers gzip with gRPC; its API offers no other way
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/server"
)

// newGRPCServer serves the Export method of each signal in use. Unused signals are not
// registered, so gRPC answers them UNIMPLEMENTED itself.
//
// The services are described by hand, not generated: with otlpgrpc.Codec forced on the server,
// requests arrive as the raw bytes of the Export…ServiceRequest, which are scanned and passed on
// without being decoded.
func (r *otlp) newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	srv := grpc.NewServer(append(opts, grpc.ForceServerCodecV2(otlpgrpc.Codec{}))...)
	for _, sig := range batch.Signals {
		if r.next[sig] != nil {
			srv.RegisterService(r.serviceDesc(sig), nil)
		}
	}
	return srv
}

func (r *otlp) serviceDesc(sig batch.Signal) *grpc.ServiceDesc {
	method := otlpgrpc.Method(sig) // "/package.Service/Export"
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	return &grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: name,
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				if !server.Authorize(ctx, sig) {
					r.reject("grpc", reasonForbidden)
					return nil, server.ErrGRPCForbidden
				}
				req := new(otlpgrpc.Raw)
				if err := dec(req); err != nil {
					if status.Code(err) == codes.ResourceExhausted {
						// gRPC refuses messages over max_recv_msg_size_mib (sent or
						// decompressed) with RESOURCE_EXHAUSTED while reading them.
						r.reject("grpc", reasonTooLarge)
					}
					return nil, err
				}
				if req.Refused {
					// The decompressor ran out of budget (see otlpgrpc.Raw.Refused).
					r.reject("grpc", reasonInFlight)
					return nil, server.ErrGRPCInFlightLimit
				}
				if icpt == nil {
					return r.exportGRPC(ctx, sig, req)
				}
				info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
				return icpt(ctx, req, info, func(ctx context.Context, req any) (any, error) {
					return r.exportGRPC(ctx, sig, req.(*otlpgrpc.Raw))
				})
			},
		}},
	}
}

func (r *otlp) exportGRPC(ctx context.Context, sig batch.Signal, req *otlpgrpc.Raw) (*otlpgrpc.Raw, error) {
	b, err := batch.FromEncodedLimited(sig, req.Bytes, r.limits())
	if err != nil {
		r.reject("grpc", refusalReason(err))
		r.set.Logger.Debug("malformed OTLP/gRPC request", "signal", sig, "error", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := server.StampTenant(ctx, b); err != nil {
		r.reject("grpc", reasonMalformed)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	items := b.Items()
	res := classify(r.next[sig].Consume(ctx, b), items)
	switch {
	case res.st != nil:
		return nil, res.st.Err()
	case res.partial != nil:
		body, err := partialResponse(sig, res.partial, false)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		return &otlpgrpc.Raw{Bytes: body}, nil
	}
	// Shared and never written to: the codec only reads it.
	return r.emptyProto[sig], nil
}
