// Command loadgen sends OTLP/gRPC load of one signal (traces, logs or metrics). It encodes one
// Export request of N items once, then resends the same bytes through a raw-bytes codec, so that
// its own CPU goes to the network and not to marshalling: what it measures is the receiver, not
// the generator.
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

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers gzip with gRPC
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/otlpgrpc" // also registers zstd with gRPC
	"github.com/vigilhq/vigil/internal/testdata"
)

// Config is one load run.
type Config struct {
	Endpoint    string
	Signal      batch.Signal
	Items       int // spans, log records or data points per request
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
	Signal        string           `json:"signal"`
	ItemsAcked    int64            `json:"items_acked"`
	ItemsPerReq   int              `json:"items_per_request"`
	RequestBytes  int              `json:"request_bytes"`
	Seconds       float64          `json:"seconds"`
	RequestsPerS  float64          `json:"requests_per_second"`
	ItemsPerS     float64          `json:"items_per_second"`
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
	sig := flag.String("signal", "traces", "traces, logs or metrics")
	flag.IntVar(&c.Items, "items", 1000, "items per request: spans, log records or metric data points")
	flag.IntVar(&c.Items, "spans", 1000, "the same as -items (the flag's older name)")
	flag.IntVar(&c.Resources, "resources", 10, "resources per request (items are spread over them)")
	flag.IntVar(&c.Concurrency, "concurrency", 8, "concurrent streams (requests in flight)")
	flag.IntVar(&c.Conns, "conns", 2, "gRPC connections")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	flag.Float64Var(&c.Rate, "rate", 0, "requests per second over all streams (0: unthrottled)")
	flag.StringVar(&c.Compression, "compression", "none", "none, gzip or zstd")
	flag.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	asJSON := flag.Bool("json", false, "print the result as JSON on stdout")
	flag.Parse()
	var err error
	if c.Signal, err = batch.ParseSignal(*sig); err != nil {
		log.Fatalf("loadgen: -signal: %v", err)
	}

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
	fmt.Fprintf(w, "%.0f requests/s, %.0f %s items/s acknowledged (%d items, %d bytes per request, %s)\n",
		r.RequestsPerS, r.ItemsPerS, r.Signal, r.ItemsPerReq, r.RequestBytes, r.Compression)
	fmt.Fprintf(w, "latency p50 %.2fms p99 %.2fms max %.2fms\n", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	for code, n := range r.ErrorCodes {
		fmt.Fprintf(w, "error %s: %d\n", code, n)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// request encodes the one request every call resends, and counts its items.
func request(c Config) ([]byte, int, error) {
	if c.Resources < 1 || c.Items < c.Resources {
		return nil, 0, fmt.Errorf("need 1 <= resources <= items, got %d resources, %d items", c.Resources, c.Items)
	}
	per := c.Items / c.Resources
	switch c.Signal {
	case batch.Traces:
		td := testdata.Traces(c.Resources, per, 0)
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		return b, td.SpanCount(), err
	case batch.Logs:
		ld := testdata.Logs(c.Resources, per, 0)
		b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		return b, ld.LogRecordCount(), err
	case batch.Metrics:
		md := metrics(c.Resources, per)
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		return b, md.DataPointCount(), err
	}
	return nil, 0, fmt.Errorf("signal %v: want traces, logs or metrics", c.Signal)
}

// histogramBounds are the OpenTelemetry SDKs' default explicit bucket bounds.
var histogramBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// metrics builds what an instrumented service exports, unlike internal/testdata's one gauge per
// point: per resource, metrics of pointsPerMetric data points each (one per attribute set),
// rotating through a cumulative monotonic int sum, a double gauge and an explicit-bucket
// histogram, until there are points data points (the last metric may hold fewer).
func metrics(resources, points int) pmetric.Metrics {
	const pointsPerMetric = 10
	start := pcommon.NewTimestampFromTime(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	now := pcommon.NewTimestampFromTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	routes := []string{"/api/items", "/api/items/{id}", "/api/users", "/healthz", "/api/orders"}
	attrs := func(m pcommon.Map, i int) {
		m.PutStr("http.request.method", []string{"GET", "POST"}[i%2])
		m.PutStr("http.route", routes[i%len(routes)])
		m.PutInt("http.response.status_code", []int64{200, 200, 200, 404, 500}[i%5])
	}
	md := pmetric.NewMetrics()
	for r := range resources {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "vigil-bench")
		rm.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("instance-%d", r))
		rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", r%4))
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("vigil/bench")
		sm.Scope().SetVersion("1.0.0")
		for n, m := 0, 0; n < points; m++ {
			k := min(pointsPerMetric, points-n)
			metric := sm.Metrics().AppendEmpty()
			switch m % 3 {
			case 0:
				metric.SetName(fmt.Sprintf("http.server.request.count.%d", m))
				metric.SetUnit("{request}")
				sum := metric.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for i := range k {
					dp := sum.DataPoints().AppendEmpty()
					dp.SetStartTimestamp(start)
					dp.SetTimestamp(now)
					dp.SetIntValue(int64(1000*m + i))
					attrs(dp.Attributes(), i)
				}
			case 1:
				metric.SetName(fmt.Sprintf("process.memory.usage.%d", m))
				metric.SetUnit("By")
				g := metric.SetEmptyGauge()
				for i := range k {
					dp := g.DataPoints().AppendEmpty()
					dp.SetTimestamp(now)
					dp.SetDoubleValue(float64(1<<20*m + i))
					attrs(dp.Attributes(), i)
				}
			default:
				metric.SetName(fmt.Sprintf("http.server.request.duration.%d", m))
				metric.SetUnit("ms")
				h := metric.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for i := range k {
					dp := h.DataPoints().AppendEmpty()
					dp.SetStartTimestamp(start)
					dp.SetTimestamp(now)
					dp.ExplicitBounds().FromRaw(histogramBounds)
					counts := make([]uint64, len(histogramBounds)+1)
					var total uint64
					for b := range counts {
						counts[b] = uint64((b*7 + i) % 13)
						total += counts[b]
					}
					dp.BucketCounts().FromRaw(counts)
					dp.SetCount(total)
					dp.SetSum(float64(total) * 42.5)
					attrs(dp.Attributes(), i)
				}
			}
			n += k
		}
	}
	return md
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
	body, items, err := request(c)
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

	in, method := &otlpgrpc.Raw{Bytes: body}, otlpgrpc.Method(c.Signal)
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
				// to finish, so that every acknowledged item is counted.
				cctx, ccancel := context.WithTimeout(context.Background(), c.Timeout)
				t0 := time.Now()
				err := conn.Invoke(cctx, method, in, out, callOpts...)
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
	return summarize(c, workers, start, items, len(body)), nil
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

func summarize(c Config, workers []worker, start time.Time, items, size int) Result {
	r := Result{
		ErrorCodes:    map[string]int64{},
		Signal:        c.Signal.String(),
		ItemsPerReq:   items,
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
	r.ItemsAcked = r.OK * int64(items)
	r.Seconds = end.Sub(start).Seconds()
	if r.Seconds > 0 {
		r.RequestsPerS = float64(r.OK) / r.Seconds
		r.ItemsPerS = float64(r.ItemsAcked) / r.Seconds
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
