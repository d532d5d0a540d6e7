//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// opensslCerts makes, with the openssl command line (not Vigil's code), a CA and a server and
// a client certificate it signed; it returns the directory holding ca.pem, server.pem,
// server.key, client.pem and client.key.
func opensslCerts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
		"-subj", "/CN=e2e CA", "-keyout", "ca.key", "-out", "ca.pem")
	for _, name := range []string{"server", "client"} {
		run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN="+name,
			"-keyout", name+".key", "-out", name+".csr")
		ext := name + ".ext"
		san := "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
		if name == "client" {
			san = "extendedKeyUsage=clientAuth\n"
		}
		if err := os.WriteFile(filepath.Join(dir, ext), []byte(san), 0o600); err != nil {
			t.Fatal(err)
		}
		run("x509", "-req", "-in", name+".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
			"-days", "1", "-extfile", ext, "-out", name+".pem")
	}
	return dir
}

const syslogTLSVigil = `receivers:
  syslog:
    tcp:
      endpoint: %[1]s
      tls: {cert_file: %[4]s/server.pem, key_file: %[4]s/server.key, client_ca_file: %[4]s/ca.pem}
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
    metrics: {address: %[2]s}
`

// TestSyslogOverTLS: RFC 5425 syslog over TLS with client certificates. openssl s_client, which
// verifies the server against the CA, sends newline-framed and octet-counted RFC 5424
// messages with its client certificate; all arrive in VictoriaLogs. A client without a
// certificate, and one that speaks plain TCP, get nothing in.
func TestSyslogOverTLS(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (apt-get install openssl)")
	}
	certs := opensslCerts(t)
	vl := startVictoriaLogs(t)
	addr, tel := freeAddr(t), freeAddr(t)
	v := startVigil(t, "vigil", fmt.Sprintf(syslogTLSVigil, addr, tel, vl, certs), tel)
	send := func(input string, withCert bool) (string, error) {
		args := []string{"s_client", "-connect", addr, "-CAfile", filepath.Join(certs, "ca.pem"),
			"-verify_return_error", "-quiet", "-no_ign_eof"}
		if withCert {
			args = append(args, "-cert", filepath.Join(certs, "client.pem"), "-key", filepath.Join(certs, "client.key"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", args...)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// A time of now: VictoriaLogs keeps a day (-retentionPeriod=1d) and drops older entries.
	ts := time.Now().UTC().Format(time.RFC3339)
	var lines, octets strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lines, "<11>1 %s host1 tls-lines - - - line message %d\n", ts, i)
		m := fmt.Sprintf("<14>1 %s host1 tls-octets - - - octet message %d\nwith a second line", ts, i)
		fmt.Fprintf(&octets, "%d %s", len(m), m)
	}
	if out, err := send(lines.String(), true); err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if out, err := send(octets.String(), true); err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	// Without a client certificate the handshake fails (TLS 1.3 reports it at the first read,
	// so the client may not see an error): nothing of it may arrive.
	_, _ = send("<11>1 "+ts+" host1 tls-nocert - - - refused\n", false)
	// Plain TCP to the TLS listener: not a TLS record, refused.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<11>1 %s host1 tls-plain - - - refused\n", ts)
	c.Close()
	eventually(t, 30*time.Second, func() error {
		for _, app := range []string{"tls-lines", "tls-octets"} {
			got, err := queryLogs(t, vl, `syslog_appname:`+app)
			if err != nil {
				return err
			}
			if len(got) != 50 {
				return fmt.Errorf("%s: %d messages, want 50", app, len(got))
			}
		}
		return nil
	})
	got, _ := queryLogs(t, vl, `syslog_appname:tls-octets "octet message 7"`)
	if len(got) != 1 || !strings.Contains(got[0]["_msg"], "with a second line") {
		t.Errorf("octet-counted message over TLS: %v", got)
	}
	time.Sleep(time.Second) // what the refused clients sent would be in by now
	if got, _ := queryLogs(t, vl, `"refused"`); len(got) != 0 {
		t.Errorf("messages from clients without a certificate or TLS arrived: %v", got)
	}
	v.stopClean(t)
}
