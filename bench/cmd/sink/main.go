// Command sink is an OTLP/gRPC server for benchmarks: it accepts traces, metrics and logs, counts
// their items without decoding them (batch.Scan walks the wire format) and throws them away.
// Counts are served as JSON on GET /count and printed to stdout when the process is stopped.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers gzip with gRPC, as the exporters use it
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc" // also registers zstd with gRPC
)

// Counts is what /count serves and what the sink prints on exit.
type Counts struct {
	Requests   int64 `json:"requests"`
	Bytes      int64 `json:"bytes"` // uncompressed request bytes
	Spans      int64 `json:"spans"`
	DataPoints int64 `json:"data_points"`
	LogRecords int64 `json:"log_records"`
	Malformed  int64 `json:"malformed"`
}

type counter struct {
	requests, bytes, malformed atomic.Int64
	items                      [4]atomic.Int64 // indexed by batch.Signal
}

func (c *counter) snapshot() Counts {
	return Counts{
		Requests:   c.requests.Load(),
		Bytes:      c.bytes.Load(),
		Spans:      c.items[batch.Traces].Load(),
		DataPoints: c.items[batch.Metrics].Load(),
		LogRecords: c.items[batch.Logs].Load(),
		Malformed:  c.malformed.Load(),
	}
}

// serviceDesc is the OTLP Export service for one signal, answering with an empty response (which
// is a valid Export…ServiceResponse: no partial success).
func serviceDesc(sig batch.Signal, c *counter) *grpc.ServiceDesc {
	full := strings.TrimPrefix(otlpgrpc.Method(sig), "/")
	svc, method, _ := strings.Cut(full, "/")
	return &grpc.ServiceDesc{
		ServiceName: svc,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: method,
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(otlpgrpc.Raw)
				if err := dec(in); err != nil {
					return nil, err
				}
				n, err := batch.Scan(sig, in.Bytes)
				if err != nil {
					c.malformed.Add(1)
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				c.requests.Add(1)
				c.bytes.Add(int64(len(in.Bytes)))
				c.items[sig].Add(int64(n))
				return &otlpgrpc.Raw{}, nil
			},
		}},
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:4317", "OTLP/gRPC listen address")
	httpAddr := flag.String("http", "127.0.0.1:0", "address of the /count endpoint (empty: off)")
	flag.Parse()
	if err := run(*listen, *httpAddr, os.Stdout, os.Stderr); err != nil {
		log.Fatalf("sink: %v", err)
	}
}

func run(listen, httpAddr string, stdout, stderr io.Writer) error {
	c := &counter{}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(otlpgrpc.Codec{}), grpc.MaxRecvMsgSize(256<<20))
	for _, sig := range batch.Signals {
		srv.RegisterService(serviceDesc(sig, c), struct{}{})
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "sink: OTLP/gRPC on %s\n", ln.Addr())

	var hs *http.Server
	if httpAddr != "" {
		hl, err := net.Listen("tcp", httpAddr)
		if err != nil {
			srv.Stop()
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(c.snapshot())
		})
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		fmt.Fprintf(stderr, "sink: counts on http://%s/count\n", hl.Addr())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	srv.Stop()
	if hs != nil {
		_ = hs.Close()
	}
	_ = json.NewEncoder(stdout).Encode(c.snapshot())
	return err
}
