package engine

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

func embeddedConfig(t *testing.T, text string) *EmbeddedConfig {
	t.Helper()
	c := newEmbeddedConfig()
	c.HTTP.Endpoint = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	if err := yaml.Unmarshal([]byte(text), &c.Config); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestEmbeddedAPI: the in-agent Alertmanager serves the API v2 amtool and Grafana use.
func TestEmbeddedAPI(t *testing.T) {
	c := embeddedConfig(t, "route: {receiver: hook}\nreceivers: [{name: hook}]\n")
	e, err := newEmbedded(c, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	defer func() {
		if err := e.stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, path := range []string{"/api/v2/status", "/api/v2/alerts", "/api/v2/silences", "/api/v2/receivers"} {
		resp, err := http.Get("http://" + e.addr() + path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") && !strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// TestEmbeddedReload: a changed configuration file is applied (its receivers served by the
// API); a broken one is refused and the running one stays.
func TestEmbeddedReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "am.yml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("route: {receiver: one}\nreceivers: [{name: one}]\n")
	c := newEmbeddedConfig()
	c.HTTP.Endpoint = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.ConfigFile = file
	e, err := newEmbedded(&c, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	defer e.stop()
	receivers := func() string {
		t.Helper()
		resp, err := http.Get("http://" + e.addr() + "/api/v2/receivers")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	write("route: {receiver: two}\nreceivers: [{name: two}]\n")
	if err := e.reload(); err != nil {
		t.Fatal(err)
	}
	if got := receivers(); !strings.Contains(got, `"two"`) || strings.Contains(got, `"one"`) {
		t.Errorf("receivers after reload: %s", got)
	}
	write("route: {receiver: missing}\nreceivers: [{name: two}]\n")
	if err := e.reload(); err == nil {
		t.Error("a configuration routing to an undefined receiver was applied")
	}
	if got := receivers(); !strings.Contains(got, `"two"`) {
		t.Errorf("receivers after a failed reload: %s", got)
	}
}
