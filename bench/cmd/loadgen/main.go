// Command loadgen sends OTLP/gRPC trace load. It encodes one Export request of N spans once, then
// resends the same bytes through a raw-bytes codec, so that its own CPU goes to the network and
// not to marshalling: what it measures is the receiver, not the generator.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers gzip with gRPC
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/otlpgrpc" // also registers zstd with gRPC
	"github.com/vigilhq/vigil/internal/testdata"
)

// Config is one load run.
type Config struct {
	Endpoint    string
	Spans       int // per request
	Resources   int // per request
	Concurrency int // requests in flight
	Conns       int // gRPC connections the streams are spread over
	Duration    time.Duration
	Rate        float64 // requests per second over all streams; 0: as fast as acknowledged
	Compression string  // none, gzip, zstd
	Timeout     time.Duration
}

// Result is the summary printed as JSON with -json.
type Result struct {
	Requests      int64            `json:"requests"`
	OK            int64            `json:"ok"`
	Errors        int64            `json:"errors"`
	ErrorCodes    map[string]int64 `json:"error_codes,omitempty"`
	FirstError    string           `json:"first_error,omitempty"`
	SpansAcked    int64            `json:"spans_acked"`
	SpansPerReq   int              `json:"spans_per_request"`
	RequestBytes  int              `json:"request_bytes"`
	Seconds       float64          `json:"seconds"`
	RequestsPerS  float64          `json:"requests_per_second"`
	SpansPerS     float64          `json:"spans_per_second"`
	LatencyP50Ms  float64          `json:"latency_p50_ms"`
	LatencyP99Ms  float64          `json:"latency_p99_ms"`
	LatencyMaxMs  float64          `json:"latency_max_ms"`
	Compression   string           `json:"compression"`
	Concurrency   int              `json:"concurrency"`
	TargetRatePS  float64          `json:"target_rate_per_second,omitempty"`
	EndpointLabel string           `json:"endpoint"`
}

func main() {
	var c Config
	flag.StringVar(&c.Endpoint, "endpoint", "127.0.0.1:4317", "OTLP/gRPC endpoint (plaintext)")
	flag.IntVar(&c.Spans, "spans", 1000, "spans per request")
	flag.IntVar(&c.Resources, "resources", 10, "resources per request (spans are spread over them)")
	flag.IntVar(&c.Concurrency, "concurrency", 8, "concurrent streams (requests in flight)")
	flag.IntVar(&c.Conns, "conns", 2, "gRPC connections")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	flag.Float64Var(&c.Rate, "rate", 0, "requests per second over all streams (0: unthrottled)")
	flag.StringVar(&c.Compression, "compression", "none", "none, gzip or zstd")
	flag.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	asJSON := flag.Bool("json", false, "print the result as JSON on stdout")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, c)
	if err != nil {
		log.Fatalf("loadgen: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printResult(os.Stdout, res)
	}
}

func printResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "requests %d ok %d errors %d in %.2fs\n", r.Requests, r.OK, r.Errors, r.Seconds)
	fmt.Fprintf(w, "%.0f requests/s, %.0f spans/s acknowledged (%d spans, %d bytes per request, %s)\n",
		r.RequestsPerS, r.SpansPerS, r.SpansPerReq, r.RequestBytes, r.Compression)
	fmt.Fprintf(w, "latency p50 %.2fms p99 %.2fms max %.2fms\n", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	for code, n := range r.ErrorCodes {
		fmt.Fprintf(w, "error %s: %d\n", code, n)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// request encodes the one request every call resends.
func request(c Config) ([]byte, int, error) {
	if c.Resources < 1 || c.Spans < c.Resources {
		return nil, 0, fmt.Errorf("need 1 <= resources <= spans, got %d resources, %d spans", c.Resources, c.Spans)
	}
	td := testdata.Traces(c.Resources, c.Spans/c.Resources, 0)
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b, td.SpanCount(), err
}

// worker is one stream's tally; merged at the end so the hot loop shares nothing.
type worker struct {
	ok, errs   int64
	codes      map[string]int64
	firstErr   string
	latencies  []time.Duration
	lastFinish time.Time
}

// Run sends load until c.Duration has passed or ctx ends, and waits for every call in flight.
func Run(ctx context.Context, c Config) (Result, error) {
	body, spans, err := request(c)
	if err != nil {
		return Result{}, err
	}
	if c.Concurrency < 1 || c.Conns < 1 {
		return Result{}, errors.New("concurrency and conns must be >= 1")
	}
	callOpts := []grpc.CallOption{grpc.ForceCodecV2(otlpgrpc.Codec{})}
	switch c.Compression {
	case "", "none":
	case "gzip", "zstd":
		callOpts = append(callOpts, grpc.UseCompressor(c.Compression))
	default:
		return Result{}, fmt.Errorf("compression %q: want none, gzip or zstd", c.Compression)
	}
	conns := make([]*grpc.ClientConn, c.Conns)
	for i := range conns {
		// Each connection gets its own Dial so HTTP/2 flow control is per connection.
		conns[i], err = grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
		if err != nil {
			return Result{}, err
		}
		defer conns[i].Close()
	}

	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	tokens := pace(ctx, c.Rate)

	in := &otlpgrpc.Raw{Bytes: body}
	workers := make([]worker, c.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w, conn := &workers[i], conns[i%len(conns)]
		w.codes = map[string]int64{}
		wg.Go(func() {
			out := new(otlpgrpc.Raw)
			for {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				// Calls are not bound to ctx: a call started before the deadline is allowed
				// to finish, so that every acknowledged span is counted.
				cctx, ccancel := context.WithTimeout(context.Background(), c.Timeout)
				t0 := time.Now()
				err := conn.Invoke(cctx, otlpgrpc.TracesMethod, in, out, callOpts...)
				ccancel()
				w.lastFinish = time.Now()
				w.latencies = append(w.latencies, w.lastFinish.Sub(t0))
				if err != nil {
					w.errs++
					w.codes[status.Code(err).String()]++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
					continue
				}
				w.ok++
			}
		})
	}
	wg.Wait()
	return summarize(c, workers, start, spans, len(body)), nil
}

// pace hands out rate tokens per second until ctx ends; nil means unthrottled.
func pace(ctx context.Context, rate float64) <-chan struct{} {
	if rate <= 0 {
		return nil
	}
	tokens := make(chan struct{}, 1024)
	go func() {
		defer close(tokens)
		start, issued := time.Now(), 0.0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				for due := now.Sub(start).Seconds() * rate; issued < due; issued++ {
					select {
					case tokens <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return tokens
}

func summarize(c Config, workers []worker, start time.Time, spans, size int) Result {
	r := Result{
		ErrorCodes:    map[string]int64{},
		SpansPerReq:   spans,
		RequestBytes:  size,
		Compression:   c.Compression,
		Concurrency:   c.Concurrency,
		TargetRatePS:  c.Rate,
		EndpointLabel: c.Endpoint,
	}
	var lat []time.Duration
	end := start
	for _, w := range workers {
		r.OK += w.ok
		r.Errors += w.errs
		for k, v := range w.codes {
			r.ErrorCodes[k] += v
		}
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
		lat = append(lat, w.latencies...)
		if w.lastFinish.After(end) {
			end = w.lastFinish
		}
	}
	r.Requests = r.OK + r.Errors
	r.SpansAcked = r.OK * int64(spans)
	r.Seconds = end.Sub(start).Seconds()
	if r.Seconds > 0 {
		r.RequestsPerS = float64(r.OK) / r.Seconds
		r.SpansPerS = float64(r.SpansAcked) / r.Seconds
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		r.LatencyP50Ms = ms(lat[len(lat)/2])
		r.LatencyP99Ms = ms(lat[len(lat)*99/100])
		r.LatencyMaxMs = ms(lat[len(lat)-1])
	}
	return r
}
