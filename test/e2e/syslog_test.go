//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const syslogVigil = `receivers:
  syslog:
    tcp: {endpoint: %[1]s}
    udp: {endpoint: %[1]s}
exporters:
  loki:
    endpoint: http://%[3]s/insert/loki/api/v1/push
    labels:
      attributes: [syslog.appname]
service:
  pipelines:
    logs:
      receivers: [syslog]
      exporters: [loki]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[2]s}
`

// TestSyslogFromLogger: util-linux's logger sends RFC 5424 over TCP (newline framing and octet
// counting) and RFC 3164 over UDP to the syslog receiver, which ships them through the loki
// exporter to VictoriaLogs: every message arrives once, in the stream of its app name, with
// its host and severity.
func TestSyslogFromLogger(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Fatal("util-linux logger is needed (apt-get install bsdutils)")
	}
	vl := startVictoriaLogs(t)
	addr, tel := freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(syslogVigil, addr, tel, vl), tel)
	host, port, _ := strings.Cut(addr, ":")
	send := func(args ...string) {
		t.Helper()
		out, err := exec.Command(logger, append([]string{"-n", host, "-P", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	for i := range 20 {
		send("--rfc5424", "-T", "-t", "e2e-tcp", "-p", "user.err", fmt.Sprintf("tcp message %d", i))
		send("--rfc5424", "-T", "--octet-count", "-t", "e2e-octet", fmt.Sprintf("octet message %d", i))
		send("--rfc3164", "-d", "-t", "e2e-udp", "-p", "daemon.warning", fmt.Sprintf("udp message %d", i))
	}
	eventually(t, 30*time.Second, func() error {
		for _, app := range []string{"e2e-tcp", "e2e-octet", "e2e-udp"} {
			got, err := queryLogs(t, vl, `syslog_appname:`+app)
			if err != nil {
				return err
			}
			if len(got) != 20 {
				return fmt.Errorf("%s: %d messages, want 20", app, len(got))
			}
		}
		return nil
	})
	got, _ := queryLogs(t, vl, `syslog_appname:e2e-tcp "tcp message 7"`)
	if len(got) != 1 || got[0]["severity_text"] != "err" || got[0]["host_name"] == "" || !strings.Contains(got[0]["_stream"], `syslog_appname="e2e-tcp"`) {
		t.Errorf("RFC 5424 message: %v", got)
	}
	got, _ = queryLogs(t, vl, `syslog_appname:e2e-udp "udp message 3"`)
	if len(got) != 1 || got[0]["severity_text"] != "warning" || got[0]["syslog_facility"] != "3" {
		t.Errorf("RFC 3164 message: %v", got)
	}
	v.stopClean(t)
}
