//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// queryLogs runs a LogsQL query and returns the entries (at most 10 000).
func queryLogs(t *testing.T, addr, q string) ([]vlEntry, error) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/select/logsql/query?" + url.Values{"query": {q}, "limit": {"10000"}}.Encode())
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
