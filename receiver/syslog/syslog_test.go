package syslog

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, sink *componenttest.Sink) *receiver {
	t.Helper()
	cfg := NewConfig()
	cfg.TCP = &Listener{Endpoint: "127.0.0.1:0"}
	cfg.UDP = &Listener{Endpoint: "127.0.0.1:0"}
	return startWith(t, cfg, sink)
}

// startWith validates cfg (with a short flush interval) and starts a receiver of it that sends
// to sink, stopped when the test ends.
func startWith(t *testing.T, cfg *Config, sink *componenttest.Sink) *receiver {
	t.Helper()
	cfg.FlushInterval = 20 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newReceiver(component.Settings{ID: component.ID{Type: Type}, Registerer: prometheus.NewRegistry()}, cfg,
		map[batch.Signal]component.Consumer{batch.Logs: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return r
}

func records(t *testing.T, sink *componenttest.Sink, n int) []plog.LogRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []plog.LogRecord
		for _, b := range sink.Batches() {
			ld, err := b.Logs()
			if err != nil {
				t.Fatal(err)
			}
			for _, rl := range ld.ResourceLogs().All() {
				for _, sl := range rl.ScopeLogs().All() {
					for _, lr := range sl.LogRecords().All() {
						out = append(out, lr)
					}
				}
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				t.Fatalf("%d records, want %d", len(out), n)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPAndUDP: octet-counted and newline-framed TCP, and UDP datagrams, all arrive; a
// malformed message in the middle is counted and dropped, and the rest keeps flowing.
func TestTCPAndUDP(t *testing.T) {
	sink := &componenttest.Sink{}
	r := start(t, sink)
	c, err := net.Dial("tcp", r.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	m1 := `<165>1 2026-12-03T10:00:00.5Z web app 42 ID7 [meta@1 k="v"] octet counted`
	fmt.Fprintf(c, "%d %s", len(m1), m1)
	fmt.Fprint(c, "<13>Dec  3 10:00:01 node-1 sshd[9]: newline framed\n")
	fmt.Fprint(c, "garbage without priority\n")
	fmt.Fprint(c, "<14>1 - - - - - - after the garbage\n")
	c.Close()
	u, err := net.Dial("udp", r.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(u, "<11>1 2026-12-03T10:00:02Z h a - - - over udp")
	u.Close()
	recs := records(t, sink, 4)
	byBody := map[string]plog.LogRecord{}
	for _, lr := range recs {
		byBody[lr.Body().Str()] = lr
	}
	oc := byBody["octet counted"]
	if oc.SeverityText() != "notice" || oc.SeverityNumber() != plog.SeverityNumberInfo2 {
		t.Errorf("severity %s %d", oc.SeverityText(), oc.SeverityNumber())
	}
	a := oc.Attributes().AsRaw()
	if a["host.name"] != "web" || a["syslog.appname"] != "app" || a["syslog.procid"] != "42" || a["syslog.msgid"] != "ID7" || a["syslog.facility"] != int64(20) {
		t.Errorf("attributes %v", a)
	}
	if sd, _ := a["syslog.structured_data"].(map[string]any); sd == nil || sd["meta@1"].(map[string]any)["k"] != "v" {
		t.Errorf("structured data %v", a["syslog.structured_data"])
	}
	if !oc.Timestamp().AsTime().Equal(time.Date(2026, 12, 3, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("timestamp %v", oc.Timestamp())
	}
	if nf := byBody["newline framed"]; nf.Attributes().AsRaw()["syslog.appname"] != "sshd" {
		t.Errorf("RFC 3164: %v", nf.Attributes().AsRaw())
	}
	for _, want := range []string{"after the garbage", "over udp"} {
		if _, ok := byBody[want]; !ok {
			t.Errorf("%q did not arrive", want)
		}
	}
	if v := testutil.ToFloat64(r.malformed.WithLabelValues("tcp")); v != 1 {
		t.Errorf("malformed tcp %v, want 1", v)
	}
}

// TestHostileInput: an octet count over the limit ends the connection (the stream cannot be
// read on), a huge line is refused, binary garbage is counted; another connection is unharmed.
func TestHostileInput(t *testing.T) {
	sink := &componenttest.Sink{}
	r := start(t, sink)
	for _, payload := range []string{"99999999 <13>x", "<13>" + strings.Repeat("x", 10<<20) + "\n", "\x00\x01\x02\xff\xfe\n"} {
		c, err := net.Dial("tcp", r.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(payload))
		c.Close()
	}
	c, err := net.Dial("tcp", r.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "<14>1 - - - - - - still fine\n")
	c.Close()
	recs := records(t, sink, 1)
	if recs[0].Body().Str() != "still fine" {
		t.Errorf("body %q", recs[0].Body().Str())
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.malformed.WithLabelValues("tcp")) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v := testutil.ToFloat64(r.malformed.WithLabelValues("tcp")); v != 3 {
		t.Errorf("malformed %v, want 3", v)
	}
}

func TestConfig(t *testing.T) {
	c := NewConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Errorf("no listener: %v", err)
	}
	c.UDP = &Listener{Endpoint: "127.0.0.1:1"}
	c.MaxMessageBytes = 10
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_message_bytes") {
		t.Errorf("tiny limit: %v", err)
	}
	c = NewConfig()
	c.TCP = &Listener{}
	if err := c.Validate(); err != nil || c.TCP.Endpoint != DefaultEndpoint {
		t.Errorf("default endpoint: %v %q", err, c.TCP.Endpoint)
	}
}
