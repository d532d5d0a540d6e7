package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("faultsink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	grpcAddr := fs.String("grpc", "127.0.0.1:4317", "OTLP/gRPC listen address (empty: off)")
	httpAddr := fs.String("http", "127.0.0.1:4318", "OTLP/HTTP and remote-write listen address (empty: off)")
	control := fs.String("control", "127.0.0.1:4319", "control API listen address")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the fault draws")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *grpcAddr, *httpAddr, *control, *seed, log); err != nil {
		fmt.Fprintln(stderr, "faultsink:", err)
		return 1
	}
	return 0
}

// serve runs the sink and its control API until ctx ends.
func serve(ctx context.Context, grpcAddr, httpAddr, control string, seed uint64, log *slog.Logger) error {
	s := NewSink(grpcAddr, httpAddr, log, seed)
	defer s.Close()
	if err := s.Open(); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cl, err := net.Listen("tcp", control)
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	cs := newControlServer(s)
	errc := make(chan error, 1)
	go func() { errc <- cs.Serve(cl) }()
	log.Info("faultsink ready", "grpc", grpcAddr, "http", httpAddr, "control", cl.Addr().String(), "seed", seed)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
