//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDefaultConfigRuns runs `vigil run` with no --config, the way `make run` does, posts one
// span as OTLP/JSON and waits for the debug exporter's summary line on stderr. The embedded
// config listens on the standard ports, so the test can only run when they are free.
func TestDefaultConfigRuns(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:4317", "127.0.0.1:4318", "127.0.0.1:8888"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the default config needs %s, which is in use on this machine: %v", addr, err)
		}
		l.Close()
	}
	v := &vigil{process: startProcess(t, "vigil-default", binary(t, "VIGIL_BIN"), "run"), telemetry: "127.0.0.1:8888"}
	waitHTTP(t, v.process, "http://127.0.0.1:8888/readyz", 30*time.Second)

	const span = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"e2e-default"}}]},
"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
"name":"e2e-default-span","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000"}]}]}]}`
	resp, err := httpClient.Post("http://127.0.0.1:4318/v1/traces", "application/json", strings.NewReader(span))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s %s", resp.Status, body)
	}

	var summary string
	eventually(t, 10*time.Second, func() error {
		for line := range strings.SplitSeq(v.output(), "\n") {
			if isDebugSummary(line) {
				summary = line
				return nil
			}
		}
		return fmt.Errorf("no debug exporter summary of 1 span on stderr yet")
	})
	t.Logf("debug exporter: %s", summary)
	v.stopClean(t)
}

// isDebugSummary reports whether a JSON log line is the debug exporter's basic summary of a
// batch of one span: it names the debug exporter and counts 1 span.
func isDebugSummary(line string) bool {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return false
	}
	fromDebug, oneSpan := false, false
	for k, v := range m {
		if s, ok := v.(string); ok && (s == "debug" || strings.HasPrefix(s, "exporter/debug") || strings.HasPrefix(s, "debug/")) {
			fromDebug = true
		}
		if n, ok := v.(float64); ok && n == 1 && strings.Contains(k, "span") && !strings.Contains(k, "resource") {
			oneSpan = true
		}
	}
	return fromDebug && oneSpan
}
