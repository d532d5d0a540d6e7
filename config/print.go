package config

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/component"
)

// Marshal writes the loaded config as YAML, as Vigil will run it: the ${env:} and ${file:}
// references resolved, every component's defaults filled in, and every secret (a field of type
// secret.String, or an upstream Prometheus or Alertmanager secret) printed as "[redacted]" or
// "<secret>". It is what `vigil validate --print` shows.
func Marshal(c *Config) ([]byte, error) {
	comps := func(m map[component.ID]component.Config) map[string]any {
		out := map[string]any{}
		for id, cfg := range m {
			out[id.String()] = cfg
		}
		return out
	}
	ids := func(l []component.ID) []string {
		out := make([]string, len(l))
		for i, id := range l {
			out[i] = id.String()
		}
		return out
	}
	pipelines := map[string]any{}
	for _, id := range slices.SortedFunc(maps.Keys(c.Service.Pipelines), func(a, b PipelineID) int {
		return strings.Compare(a.String(), b.String())
	}) {
		p := c.Service.Pipelines[id]
		m := map[string]any{"receivers": ids(p.Receivers), "processors": ids(p.Processors), "exporters": ids(p.Exporters)}
		if p.Acknowledgements != nil {
			m["acknowledgements"] = fmt.Sprint(*p.Acknowledgements)
		}
		pipelines[id.String()] = m
	}
	doc := map[string]any{
		"receivers":  comps(c.Receivers),
		"processors": comps(c.Processors),
		"exporters":  comps(c.Exporters),
		"service":    map[string]any{"pipelines": pipelines, "telemetry": c.Service.Telemetry},
	}
	if c.Alerting != nil {
		doc["alerting"] = c.Alerting
	}
	if c.SLOs != nil {
		doc["slos"] = c.SLOs
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("printing the config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("printing the config: %w", err)
	}
	return out.Bytes(), nil
}
