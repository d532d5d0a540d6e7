//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
)

// startVictoriaLogs runs VictoriaLogs (the Loki push API's real implementation here) and
// returns its address.
func startVictoriaLogs(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	p := startProcess(t, "victoria-logs", binary(t, "VICTORIALOGS_BIN"), "-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(t.TempDir(), "vl"), "-retentionPeriod=1d", "-loggerLevel=WARN")
	waitHTTP(t, p, "http://"+addr+"/health", 30*time.Second)
	return addr
}

type vlEntry map[string]string

// queryLogs runs a LogsQL query and returns the entries (at most 100 000).
func queryLogs(t *testing.T, addr, q string) ([]vlEntry, error) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/select/logsql/query?" + url.Values{"query": {q}, "limit": {"100000"}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("LogsQL %q: HTTP %d", q, resp.StatusCode)
	}
	var out []vlEntry
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e vlEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

const lokiVigil = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]s}
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
    labels:
      resource: [service.name, deployment.environment]
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [loki]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
`

// TestLokiExporterToVictoriaLogs: telemetrygen sends 500 log records over OTLP; the loki
// exporter pushes them (protobuf, snappy) to VictoriaLogs' Loki push API; LogsQL finds exactly
// 500, in the stream of the chosen labels, with the rest as fields (structured metadata).
func TestLokiExporterToVictoriaLogs(t *testing.T) {
	vl := startVictoriaLogs(t)
	grpcAddr, tel := freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(lokiVigil, grpcAddr, tel, vl), tel)
	runTelemetrygen(t, "logs", "--otlp-insecure", "--otlp-endpoint", grpcAddr, "--service", "checkout",
		"--logs", "500", "--rate", "1000", "--body", "payment accepted", "--severity-text", "Info",
		"--otlp-attributes", `deployment.environment="e2e"`, "--telemetry-attributes", `http.route="/pay"`)
	var got []vlEntry
	eventually(t, 30*time.Second, func() error {
		var err error
		got, err = queryLogs(t, vl, `service_name:checkout`)
		if err != nil {
			return err
		}
		if len(got) != 500 {
			return fmt.Errorf("%d entries in VictoriaLogs, want 500", len(got))
		}
		return nil
	})
	e := got[0]
	if e["_msg"] != "payment accepted" || !strings.Contains(e["_stream"], `service_name="checkout"`) ||
		!strings.Contains(e["_stream"], `deployment_environment="e2e"`) || e["http_route"] != "/pay" || e["severity_text"] != "Info" {
		t.Errorf("entry %v", e)
	}
	if strings.Contains(e["_stream"], "http_route") {
		t.Errorf("a record attribute became a stream label: %s", e["_stream"])
	}
	v.stopClean(t)
}

const lokiRelayVigil = `receivers:
  loki:
    endpoint: %[1]s
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
    labels:
      resource: [job, host]
service:
  pipelines:
    logs:
      receivers: [loki]
      exporters: [loki]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
`

// TestLokiReceiverRelay: Vigil as a Loki endpoint between clients and a Loki-compatible
// backend. Loki's own push types (github.com/grafana/loki/pkg/push) encode a protobuf request,
// snappy-compressed as promtail sends it; a JSON request comes gzip-compressed; a malformed
// one is refused with 400 and harms nothing. VictoriaLogs gets exactly the lines sent, in
// their streams, with their structured metadata.
func TestLokiReceiverRelay(t *testing.T) {
	vl := startVictoriaLogs(t)
	lokiAddr, tel := freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(lokiRelayVigil, lokiAddr, tel, vl), tel)
	now := time.Now()
	req := push.PushRequest{}
	for _, host := range []string{"node-1", "node-2"} {
		s := push.Stream{Labels: fmt.Sprintf(`{job="promtail", host=%q}`, host)}
		for i := range 100 {
			s.Entries = append(s.Entries, push.Entry{Timestamp: now.Add(time.Duration(i) * time.Millisecond),
				Line: fmt.Sprintf("line %d from %s", i, host), StructuredMetadata: push.LabelsAdapter{{Name: "pod", Value: "p-" + host}}})
		}
		req.Streams = append(req.Streams, s)
	}
	pb, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	post := func(ct, enc string, body []byte) int {
		t.Helper()
		r, err := http.NewRequest(http.MethodPost, "http://"+lokiAddr+"/loki/api/v1/push", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", ct)
		if enc != "" {
			r.Header.Set("Content-Encoding", enc)
		}
		resp, err := httpClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("application/x-protobuf", "", snappy.Encode(nil, pb)); code != http.StatusNoContent {
		t.Fatalf("protobuf push: %d", code)
	}
	var js strings.Builder
	js.WriteString(`{"streams":[{"stream":{"job":"json-client","host":"node-3"},"values":[`)
	for i := range 50 {
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `["%d","json line %d"]`, now.Add(time.Duration(i)*time.Millisecond).UnixNano(), i)
	}
	js.WriteString(`]}]}`)
	var gzBody bytes.Buffer
	zw := gzip.NewWriter(&gzBody)
	_, _ = zw.Write([]byte(js.String()))
	_ = zw.Close()
	if code := post("application/json", "gzip", gzBody.Bytes()); code != http.StatusNoContent {
		t.Fatalf("gzip JSON push: %d", code)
	}
	if code := post("application/x-protobuf", "", []byte("\xff\xfe garbage")); code != http.StatusBadRequest {
		t.Errorf("garbage: %d, want 400", code)
	}
	eventually(t, 30*time.Second, func() error {
		for q, want := range map[string]int{`job:promtail`: 200, `job:promtail host:node-2`: 100, `job:json-client`: 50} {
			got, err := queryLogs(t, vl, q)
			if err != nil {
				return err
			}
			if len(got) != want {
				return fmt.Errorf("%s: %d entries, want %d", q, len(got), want)
			}
		}
		return nil
	})
	got, _ := queryLogs(t, vl, `job:promtail host:node-1 "line 7 from"`)
	if len(got) != 1 || got[0]["pod"] != "p-node-1" || !strings.Contains(got[0]["_stream"], `host="node-1"`) {
		t.Errorf("entry %v", got)
	}
	if n := metricValues(t, tel, "vigil_receiver_loki_rejected_requests_total"); n != 1 {
		t.Errorf("rejected requests %v, want 1", n)
	}
	v.stopClean(t)
}
