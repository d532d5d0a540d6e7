//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/otlpgrpc"
	"github.com/vigilhq/vigil/internal/testdata"
)

const badInputVigil = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
      http:
        endpoint: %[2]s
        max_request_body_size: 65536
exporters:
  file:
    path: %[3]s
    flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`

// tracesRequest is a valid ExportTraceServiceRequest of n spans tagged with run.
func tracesRequest(t *testing.T, n int, run string, asJSON bool) []byte {
	t.Helper()
	td := testdata.Traces(1, n, 0)
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				sp.Attributes().PutStr("e2e.run", run)
			}
		}
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	var (
		b   []byte
		err error
	)
	if asJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// errorMessage extracts the message of an OTLP/HTTP error answer: a google.rpc.Status in the
// request's encoding, or plain text for errors raised before the encoding is known.
func errorMessage(contentType string, body []byte) string {
	switch {
	case strings.HasPrefix(contentType, "application/x-protobuf"):
		var st statuspb.Status
		if proto.Unmarshal(body, &st) != nil {
			return ""
		}
		return st.GetMessage()
	case strings.HasPrefix(contentType, "application/json"):
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) != nil {
			return ""
		}
		return st.Message
	}
	return strings.TrimSpace(string(body))
}

// TestBadInput sends malformed and oversized requests to a running vigil: each is refused with
// the right status and a message, and the agent keeps serving valid requests. Then it checks
// that a config with unknown keys is refused with file, line and path.
func TestBadInput(t *testing.T) {
	grpcAddr, httpAddr, tel := freeAddr(t), freeAddr(t), freeAddr(t)
	out := filepath.Join(t.TempDir(), "traces.jsonl")
	v := startVigil(t, "vigil", fmt.Sprintf(badInputVigil, grpcAddr, httpAddr, out, tel), tel)
	id := runID(t)

	// A keep-alive client: one that sends "Connection: close" (as httpClient does) makes Go's
	// server close the connection right after refusing a body it has not read, and the client
	// then often sees a reset instead of the answer. Real OTLP exporters keep connections alive.
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	// post sends one request; a transport error (no answer at all) is returned, not fatal.
	post := func(body io.Reader, header ...string) (int, string, string, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", body)
		if err != nil {
			return 0, "", "", err
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b), nil
	}
	const ctProto, ctJSON = "application/x-protobuf", "application/json"

	t.Run("http", func(t *testing.T) {
		big := tracesRequest(t, 2000, id, false)
		if len(big) <= 65536 {
			t.Fatalf("oversized request is only %d bytes", len(big))
		}
		// f sends body and checks the status and that the answer carries a message.
		f := func(name string, body func() io.Reader, wantCode int, header ...string) {
			t.Helper()
			code, ct, msg, err := post(body(), header...)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if code != wantCode {
				t.Errorf("%s: status %d, want %d (%s)", name, code, wantCode, msg)
				return
			}
			if m := errorMessage(ct, []byte(msg)); m == "" {
				t.Errorf("%s: status %d without an error message (Content-Type %q, body %q)", name, code, ct, msg)
			} else {
				t.Logf("%s: %d %s", name, code, m)
			}
		}
		text := func(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }
		raw := func(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewReader(b) } }
		f("truncated protobuf", text("\x0a\x10not a protobuf"), 400, "Content-Type", ctProto)
		f("garbage inside a resource", text("\x0a\x03\xff\xff\xff"), 400, "Content-Type", ctProto)
		f("invalid JSON", text(`{"resourceSpans": [`), 400, "Content-Type", ctJSON)
		f("JSON of the wrong shape", text(`{"resourceSpans": "nope"}`), 400, "Content-Type", ctJSON)
		f("corrupt gzip", text("definitely not gzip"), 400, "Content-Type", ctProto, "Content-Encoding", "gzip")
		f("unknown Content-Type", text("x"), 415, "Content-Type", "text/plain")
		f("oversized body", raw(big), 413, "Content-Type", ctProto)
		// No Content-Length: the limit must hold while reading, not only on the declared size.
		f("oversized chunked body", func() io.Reader { return io.MultiReader(bytes.NewReader(big)) }, 413, "Content-Type", ctProto)
		// The limit applies to what the body inflates to, not to the compressed bytes.
		f("gzip bomb", raw(gzipped(t, make([]byte, 8<<20))), 413, "Content-Type", ctProto, "Content-Encoding", "gzip")
	})

	t.Run("grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = conn.Invoke(ctx, otlpgrpc.TracesMethod, &otlpgrpc.Raw{Bytes: []byte("\x0a\x10not a protobuf")},
			new(otlpgrpc.Raw), grpc.ForceCodecV2(otlpgrpc.Codec{}))
		if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() == "" {
			t.Errorf("malformed gRPC request: %v, want InvalidArgument with a message", err)
		}
		// A valid request on the same connection still succeeds.
		err = conn.Invoke(ctx, otlpgrpc.TracesMethod, &otlpgrpc.Raw{Bytes: tracesRequest(t, 3, id+"-grpc", false)},
			new(otlpgrpc.Raw), grpc.ForceCodecV2(otlpgrpc.Codec{}))
		if err != nil {
			t.Errorf("valid gRPC request after a bad one: %v", err)
		}
	})

	t.Run("still serving", func(t *testing.T) {
		valid := func(name string, body []byte, header ...string) {
			t.Helper()
			code, _, msg, err := post(bytes.NewReader(body), header...)
			if err != nil || code != http.StatusOK {
				t.Fatalf("valid %s request: %d %s %v", name, code, msg, err)
			}
		}
		valid("protobuf", tracesRequest(t, 2, id+"-proto", false), "Content-Type", ctProto)
		valid("JSON", tracesRequest(t, 4, id+"-json", true), "Content-Type", ctJSON)
		valid("gzip", gzipped(t, tracesRequest(t, 5, id+"-gzip", false)), "Content-Type", ctProto, "Content-Encoding", "gzip")
		// Exactly the valid requests' spans were written: nothing of the refused ones.
		items := waitItems(t, "traces", out, 3+2+4+5)
		got := map[string]int{}
		for _, it := range items {
			got[it.run]++
		}
		want := map[string]int{id + "-grpc": 3, id + "-proto": 2, id + "-json": 4, id + "-gzip": 5}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("spans written per request: %v, want %v", got, want)
		}
		waitHTTP(t, v.process, "http://"+tel+"/healthz", 5*time.Second)
	})

	v.stopClean(t)

	t.Run("config with unknown keys", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.yaml")
		// Line numbers matter: the errors must point at lines 5 and 9.
		cfg := `receivers:
  otlp:
    protocols:
      grpc:
        endpont: 127.0.0.1:4317
exporters:
  debug:
    verbosity: basic
    colour: blue
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`
		if err := os.WriteFile(bad, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		vigilBin := binary(t, "VIGIL_BIN")
		wantLines := []*regexp.Regexp{
			regexp.MustCompile(`bad\.yaml:5: receivers\.otlp\.protocols\.grpc\.endpont: unknown field`),
			regexp.MustCompile(`bad\.yaml:9: exporters\.debug\.colour: unknown field`),
		}
		for _, args := range [][]string{{"validate", "--config", bad}, {"run", "--config", bad}} {
			out, code := runTool(t, 30*time.Second, vigilBin, args...)
			if code != 1 {
				t.Errorf("vigil %s: exit %d, want 1\n%s", args[0], code, out)
			}
			for _, re := range wantLines {
				if !re.MatchString(out) {
					t.Errorf("vigil %s: output lacks %q:\n%s", args[0], re, out)
				}
			}
		}

		good := filepath.Join(dir, "good.yaml")
		fixed := strings.Replace(strings.Replace(cfg, "endpont", "endpoint", 1), "    colour: blue\n", "", 1)
		if err := os.WriteFile(good, []byte(fixed), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := runTool(t, 30*time.Second, vigilBin, "validate", "--config", good); code != 0 {
			t.Errorf("vigil validate on the fixed config: exit %d\n%s", code, out)
		}
	})
}
