package otlp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
)

// gRPC's default receive limit, which startBackend's server keeps.
const grpcDefaultMaxRecv = 4 << 20

// burst is what a batch processor without a byte cap makes of ~3 900 traces arriving within one
// timeout: resources×spans spans of about spanBytes each (random padding, so that compression
// does not hide the size), seq from 0. One span may be made huge (huge ≥ 0: its index).
func burst(t testing.TB, resources, spans, spanBytes, huge, hugeBytes int) *batch.Batch {
	t.Helper()
	td := ptrace.NewTraces()
	seq := 0
	pad := func(n int) string {
		b := make([]byte, n/2)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	for r := range resources {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		rs.Resource().Attributes().PutInt("service.instance", int64(r))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("burst")
		for range spans {
			sp := ss.Spans().AppendEmpty()
			var tid [16]byte
			var sid [8]byte
			tid[15], tid[14], sid[7], sid[6] = byte(seq), byte(seq>>8), byte(seq), byte(seq>>8)
			tid[0], sid[0] = 1, 1
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			sp.SetName("GET /cart")
			sp.Attributes().PutInt("seq", int64(seq))
			n := spanBytes
			if seq == huge {
				n = hugeBytes
			}
			sp.Attributes().PutStr("pad", pad(n))
			seq++
		}
	}
	b := batch.FromTraces(td)
	wire, err := b.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := batch.FromEncoded(batch.Traces, wire)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// splits reads vigil_exporter_otlp_split_requests_total{signal="traces",reason}.
func splits(t testing.TB, set component.Settings, reason string) float64 {
	t.Helper()
	mfs, err := set.Registerer.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_exporter_otlp_split_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["signal"] == "traces" && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no split counter with reason %q", reason)
	return 0
}

// delivered is every seq the backend took, sorted, and the largest request it took.
func delivered(be *backend) (seqs []int64, largest int) {
	for _, r := range be.requests() {
		seqs = append(seqs, r.seqs...)
		largest = max(largest, len(r.wire))
	}
	slices.Sort(seqs)
	return seqs, largest
}

// TestBurstOverGRPCDefaultLimit sends a 4.7 MB batch (3 900 spans in 39 resources) to a real gRPC
// server with its default 4 MiB receive limit: by default the exporter cuts it below the limit
// before sending; with no cap, the server refuses it as too large and the exporter sends halves.
// Either way every span arrives once and nothing is dropped.
func TestBurstOverGRPCDefaultLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
		reason   string // the split counter that must move
	}{
		{"default cap", DefaultMaxRequestBytes, splitCap},
		{"no cap: refused, then halved", 0, splitTooLarge},
		{"cap above the backend's limit", 8 << 20, splitTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &backend{}
			set, cnt, logs := settings()
			cfg := testConfig(startBackend(t, be))
			cfg.MaxRequestBytes = tc.maxBytes
			exp := startExporter(t, set, cfg)
			b := burst(t, 39, 100, 1150, -1, 0)
			if size := b.EncodedSize(); size < 4_600_000 || size > 4_900_000 {
				t.Fatalf("burst is %d bytes, want about 4.7 MB", size)
			}
			if err := exp.Consume(context.Background(), b); err != nil {
				t.Fatalf("Consume: %v\nlogs: %s", err, logs)
			}
			seqs, largest := delivered(be)
			if want := seqRange(0, 3900); !slices.Equal(seqs, want) {
				t.Errorf("backend got %d spans (first %v), want each of 0..3899 once", len(seqs), seqs[:min(len(seqs), 5)])
			}
			if largest > grpcDefaultMaxRecv {
				t.Errorf("largest request taken %d bytes, over gRPC's limit", largest)
			}
			if s, d := cnt.Get(component.Sent), cnt.Get(component.Dropped); s != 3900 || d != 0 {
				t.Errorf("sent %d dropped %d, want 3900 0", s, d)
			}
			if n := splits(t, set, tc.reason); n < 1 {
				t.Errorf("split_requests_total{reason=%q} = %v, want ≥ 1", tc.reason, n)
			}
			if tc.reason == splitTooLarge && !strings.Contains(logs.String(), "refused a request as too large") {
				t.Errorf("no warning about the refusal; logs: %s", logs)
			}
		})
	}
}

// TestOnlyWhatCannotGoAloneIsDropped: one span is larger than the backend takes; the exporter
// halves down to it and drops it alone, as a partial success, and delivers the rest.
func TestOnlyWhatCannotGoAloneIsDropped(t *testing.T) {
	be := &backend{}
	set, cnt, logs := settings()
	cfg := testConfig(startBackend(t, be))
	cfg.MaxRequestBytes = 0
	exp := startExporter(t, set, cfg)
	b := burst(t, 4, 50, 2000, 77, 5<<20)
	err := exp.Consume(context.Background(), b)
	p, ok := consumererror.AsPartial(err)
	if !ok || p.Rejected != 1 || !strings.Contains(p.Message, "1 span") || !strings.Contains(p.Message, "larger than max") {
		t.Fatalf("Consume: %v, want a partial success rejecting the one span, saying why", err)
	}
	seqs, _ := delivered(be)
	want := slices.DeleteFunc(seqRange(0, 200), func(s int64) bool { return s == 77 })
	if !slices.Equal(seqs, want) {
		t.Errorf("backend got %d spans, want the 199 others once each", len(seqs))
	}
	if s, d := cnt.Get(component.Sent), cnt.Get(component.Dropped); s != 199 || d != 1 {
		t.Errorf("sent %d dropped %d, want 199 1\nlogs: %s", s, d, logs)
	}
}

// TestQuotaIsNotSplit: RESOURCE_EXHAUSTED without RetryInfo that is not about size (a quota) is
// refused for good in one request, as before: cutting the request would not help.
func TestQuotaIsNotSplit(t *testing.T) {
	be := &backend{answer: func(int) (int64, string, error) {
		return 0, "", status.Error(codes.ResourceExhausted, "tenant quota exceeded")
	}}
	set, cnt, _ := settings()
	exp := startExporter(t, set, testConfig(startBackend(t, be)))
	b, _ := items(t, batch.Traces, 10, 0, true)
	if err := exp.Consume(context.Background(), b); !consumererror.IsPermanent(err) {
		t.Fatalf("Consume: %v, want permanent", err)
	}
	if n := len(be.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if d := cnt.Get(component.Dropped); d != 10 {
		t.Errorf("dropped %d, want 10", d)
	}
}

// TestRetryResumesWhereItStopped: a batch cut in parts meets an outage after its first part was
// taken; the retry sends only the parts not taken, so the backend sees no duplicates.
func TestRetryResumesWhereItStopped(t *testing.T) {
	be := &backend{}
	be.answer = func(n int) (int64, string, error) {
		if n == 1 || n == 2 { // the second part fails twice, then passes
			return 0, "", status.Error(codes.Unavailable, "restarting")
		}
		return 0, "", nil
	}
	set, cnt, _ := settings()
	cfg := testConfig(startBackend(t, be))
	b := burst(t, 6, 50, 1000, -1, 0)
	cfg.MaxRequestBytes = b.EncodedSize()/3 + 1000
	exp := startExporter(t, set, cfg)
	if err := exp.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for i, r := range be.requests() {
		if i == 1 || i == 2 {
			continue // refused: not taken
		}
		seqs = append(seqs, r.seqs...)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, seqRange(0, 300)) {
		t.Errorf("backend took %d spans, want each of 300 once", len(seqs))
	}
	if n := len(be.requests()); n != 5 {
		t.Errorf("%d requests, want 5: 3 parts, the second tried 3 times", n)
	}
	if s := cnt.Get(component.Sent); s != 300 {
		t.Errorf("sent %d, want 300", s)
	}
}

// TestEachPartHasItsOwnTimeout: a batch cut into four parts, to a backend that takes 300ms per
// request, with a 500ms timeout: each request gets the whole timeout, so the batch goes out in
// one attempt of four requests, none of them sent twice.
func TestEachPartHasItsOwnTimeout(t *testing.T) {
	be := &backend{answer: func(int) (int64, string, error) {
		time.Sleep(300 * time.Millisecond)
		return 0, "", nil
	}}
	set, cnt, _ := settings()
	cfg := testConfig(startBackend(t, be))
	cfg.Sender.Timeout = 500 * time.Millisecond
	b := burst(t, 8, 50, 1000, -1, 0)
	cfg.MaxRequestBytes = b.EncodedSize()/4 + 1000
	exp := startExporter(t, set, cfg)
	if err := exp.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n := len(be.requests()); n != 4 {
		t.Errorf("%d requests, want 4 (one per part, none retried)", n)
	}
	if seqs, _ := delivered(be); !slices.Equal(seqs, seqRange(0, 400)) {
		t.Errorf("backend got %d spans, want each of 400 once", len(seqs))
	}
	if s := cnt.Get(component.Sent); s != 400 {
		t.Errorf("sent %d, want 400", s)
	}
}
