package loki

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/loki"
	"github.com/vigilhq/vigil/internal/promrw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend decodes pushes with the protobuf reader and snappy, and answers with reply(n).
type backend struct {
	mu      sync.Mutex
	pushes  [][]loki.Stream
	headers []http.Header
	reply   func(n int) (int, string)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body, err := promrw.Decode(nil, raw, 64<<20)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not snappy protobuf", http.StatusUnsupportedMediaType)
		return
	}
	streams, err := loki.DecodeProto(body, loki.Limits{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	n := len(b.pushes)
	b.pushes = append(b.pushes, streams)
	b.headers = append(b.headers, r.Header.Clone())
	b.mu.Unlock()
	if b.reply != nil {
		if code, msg := b.reply(n); code != 0 {
			http.Error(w, msg, code)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func logs(now time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "prod")
	rl.Resource().Attributes().PutStr("host.name", "node-1")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i, line := range []string{"third", "first", "second"} {
		lr := recs.AppendEmpty()
		lr.Body().SetStr(line)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration([]int{3, 1, 2}[i]) * time.Second)))
		lr.Attributes().PutStr("http.route", "/pay")
		lr.SetSeverityText("INFO")
		if i == 0 {
			lr.SetTraceID(pcommon.TraceID{1, 2, 3})
		}
	}
	old := recs.AppendEmpty() // older than max_entry_age
	old.Body().SetStr("ancient")
	old.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-30 * 24 * time.Hour)))
	return ld
}

func setup(t *testing.T, b *backend, mod func(*Config)) (*exporter, *prometheus.Registry) {
	t.Helper()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	cfg := NewConfig()
	cfg.Client.Endpoint = srv.URL + "/loki/api/v1/push"
	cfg.Sender.Queue.Enabled = false
	cfg.Sender.Retry.InitialInterval = time.Millisecond
	cfg.Sender.Retry.MaxInterval = 5 * time.Millisecond
	cfg.Sender.Retry.MaxElapsedTime = 5 * time.Second
	if mod != nil {
		mod(cfg)
	}
	reg := prometheus.NewRegistry()
	set := component.Settings{ID: component.ID{Type: Type}, Kind: component.KindExporter, Logger: slog.New(slog.DiscardHandler),
		Counters: &componenttest.Counters{}, Registerer: reg}
	e, err := newExporter(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e, reg
}

// TestPush: one stream per label set, labels from the chosen resource attributes, the rest as
// structured metadata, entries in time order, the tenant header, and entries too old dropped
// and counted.
func TestPush(t *testing.T) {
	b := &backend{}
	e, _ := setup(t, b, func(c *Config) { c.TenantID = "team-a"; c.Labels.Attributes = []string{"http.route"} })
	now := time.Now()
	if err := e.Consume(context.Background(), batch.FromLogs(logs(now))); err != nil {
		t.Fatal(err)
	}
	if len(b.pushes) != 1 || len(b.pushes[0]) != 1 {
		t.Fatalf("pushes %+v", b.pushes)
	}
	s := b.pushes[0][0]
	if got := loki.FormatLabels(s.Labels); got != `{http_route="/pay", k8s_namespace_name="prod", service_name="checkout"}` {
		t.Errorf("labels %s", got)
	}
	var lines []string
	for _, en := range s.Entries {
		lines = append(lines, en.Line)
	}
	if strings.Join(lines, ",") != "first,second,third" {
		t.Errorf("entries in order %v", lines)
	}
	md := map[string]string{}
	for _, m := range s.Entries[2].Metadata {
		md[m.Name] = m.Value
	}
	if md["host_name"] != "node-1" || md["severity_text"] != "INFO" || md["trace_id"] != "01020300000000000000000000000000" || md["http_route"] != "" {
		t.Errorf("structured metadata %v", md)
	}
	if b.headers[0].Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("tenant header %q", b.headers[0].Get("X-Scope-OrgID"))
	}
	if v := testutil.ToFloat64(e.rejected.WithLabelValues("too_old")); v != 1 {
		t.Errorf("too_old %v, want 1", v)
	}
}

// TestAnswers: 429 and 5xx are retried; Loki's 400 is counted by reason and not retried.
func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   func(int) (int, string)
		pushes  int
		reason  string
		entries float64
	}{
		{"429 then ok", func(n int) (int, string) { return map[bool]int{true: 429}[n == 0], "slow down" }, 2, "", 0},
		{"503 then ok", func(n int) (int, string) { return map[bool]int{true: 503}[n < 2], "down" }, 3, "", 0},
		{"out of order", func(int) (int, string) {
			return 400, `entry with timestamp 2026-12-03 10:00:01 ignored, reason: 'entry out of order' for stream: {job="x"}, total ignored: 2 out of 3`
		}, 1, "out_of_order", 2},
		{"too far behind", func(int) (int, string) { return 400, "entry too far behind, oldest acceptable timestamp is: ..." }, 1, "too_far_behind", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{reply: tc.reply}
			e, _ := setup(t, b, nil)
			if err := e.Consume(context.Background(), batch.FromLogs(logs(time.Now()))); err != nil {
				t.Fatal(err)
			}
			if len(b.pushes) != tc.pushes {
				t.Errorf("%d pushes, want %d", len(b.pushes), tc.pushes)
			}
			if tc.reason != "" {
				if v := testutil.ToFloat64(e.rejected.WithLabelValues(tc.reason)); v != tc.entries {
					t.Errorf("rejected %s: %v, want %v", tc.reason, v, tc.entries)
				}
			}
		})
	}
}

// TestCardinalityGuard: a label with more distinct values than max_label_values, or beyond
// max_labels, goes to structured metadata.
func TestCardinalityGuard(t *testing.T) {
	b := &backend{}
	e, _ := setup(t, b, func(c *Config) { c.MaxLabelValues = 2; c.Labels.Attributes = []string{"user"} })
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, u := range []string{"a", "b", "c", "d"} {
		lr := recs.AppendEmpty()
		lr.Body().SetStr("hi " + u)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Attributes().PutStr("user", u)
	}
	if err := e.Consume(context.Background(), batch.FromLogs(ld)); err != nil {
		t.Fatal(err)
	}
	var withUser, without int
	for _, s := range b.pushes[0] {
		has := false
		for _, l := range s.Labels {
			has = has || l.Name == "user"
		}
		if has {
			withUser += len(s.Entries)
		} else {
			without += len(s.Entries)
			if md := s.Entries[0].Metadata; len(md) == 0 || md[len(md)-1].Name != "user" && md[0].Name != "user" {
				t.Errorf("the demoted label is not in structured metadata: %+v", md)
			}
		}
	}
	if withUser != 2 || without != 2 {
		t.Errorf("%d entries with the user label, %d without; want 2 and 2", withUser, without)
	}
	if v := testutil.ToFloat64(e.demoted.WithLabelValues("user")); v != 2 {
		t.Errorf("demoted %v, want 2", v)
	}
}

func TestRequestsAreCut(t *testing.T) {
	var streams []loki.Stream
	for i := range 3 {
		s := loki.Stream{Labels: []loki.Label{{Name: "i", Value: string(rune('a' + i))}}}
		for range 100 {
			s.Entries = append(s.Entries, loki.Entry{Line: strings.Repeat("x", 100)})
		}
		streams = append(streams, s)
	}
	reqs := requests(streams, 4096)
	total := 0
	for _, r := range reqs {
		size := 0
		for _, s := range r {
			total += len(s.Entries)
			size += len(s.Entries) * 132
		}
		if size > 4096+132 {
			t.Errorf("a request of about %d bytes", size)
		}
	}
	if total != 300 || len(reqs) < 8 {
		t.Errorf("%d requests holding %d entries", len(reqs), total)
	}
}

func TestConfigErrors(t *testing.T) {
	c := NewConfig()
	c.Client.Compression = "gzip"
	c.MaxLabels = 0
	err := c.Validate()
	for _, w := range []string{"endpoint: must be set", "compression", "max_labels"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%v lacks %q", err, w)
		}
	}
}

func TestLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"service_name":  "service_name",
		"k8s.pod.name":  "k8s_pod_name",
		"http-route":    "http_route",
		"2xx":           "_2xx",
		"":              "_",
		"größe":         "gr__e", // one underscore per character, not per byte
		"a\xffb":        "a_b",   // an invalid byte is one character
		"CamelCase_09":  "CamelCase_09",
		"log.file.name": "log_file_name",
	} {
		if got := LabelName(in); got != want {
			t.Errorf("LabelName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStreamsInterleaved: records of two streams, alternating, land in their own streams, and
// each entry keeps its own structured metadata (they are cut from one slab per batch).
func TestStreamsInterleaved(t *testing.T) {
	e, _ := setup(t, &backend{}, func(c *Config) { c.Labels.Attributes = []string{"pod"} })
	now := time.Now()
	var kept *scratch
	// One scratch goes from batch to batch: larger, smaller, and with more streams than before;
	// each batch's streams hold that batch's entries only.
	for round, n := range []int{5000, 7000, 300, 6000} { // more metadata than one slab holds
		pods := []string{"a", "b", "c"}[:2+round%2]
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := range n {
			lr := recs.AppendEmpty()
			lr.Body().SetStr(fmt.Sprintf("%d-%d", round, i))
			// Out of time order within a stream: the last third comes first.
			lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration((i+n/3)%n) * time.Millisecond)))
			lr.Attributes().PutStr("pod", pods[i%len(pods)])
			lr.Attributes().PutStr("seq", strconv.Itoa(i))
			lr.Attributes().PutStr("odd.attr-name", "x")
		}
		sc := e.scratch()
		if kept != nil && sc != kept {
			t.Fatal("the scratch was not reused")
		}
		streams, tooOld := e.streams(ld, sc)
		if tooOld != 0 || len(streams) != len(pods) {
			t.Fatalf("round %d: %d streams, %d too old; want %d and 0", round, len(streams), tooOld, len(pods))
		}
		total := 0
		for _, s := range streams {
			pod := s.Labels[0].Value
			if len(s.Labels) != 1 || s.Labels[0].Name != "pod" {
				t.Fatalf("stream %v", s.Labels)
			}
			total += len(s.Entries)
			for k, en := range s.Entries {
				var r, i int
				if _, err := fmt.Sscanf(en.Line, "%d-%d", &r, &i); err != nil || r != round {
					t.Fatalf("round %d, stream %s: entry %q of another batch", round, pod, en.Line)
				}
				want := []loki.Label{{Name: "seq", Value: strconv.Itoa(i)}, {Name: "odd_attr_name", Value: "x"}}
				if pods[i%len(pods)] != pod || !slices.Equal(en.Metadata, want) {
					t.Fatalf("stream %s, entry %s: metadata %v, want %v", pod, en.Line, en.Metadata, want)
				}
				if k > 0 && en.Timestamp.Before(s.Entries[k-1].Timestamp) {
					t.Fatalf("round %d, stream %s: entry %d out of time order", round, pod, k)
				}
			}
		}
		if total != n {
			t.Fatalf("round %d: %d entries in the streams, want %d", round, total, n)
		}
		e.release(sc)
		kept = sc
	}
}
