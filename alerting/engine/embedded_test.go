package engine

import (
	"io"
	"log/slog"
	"net/http"
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
