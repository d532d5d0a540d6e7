//go:build nokubernetes

package prometheus

import (
	"log/slog"

	promconfig "github.com/prometheus/prometheus/config"
)

// routeKubernetesLogs has nothing to do in a build without Kubernetes discovery: a config with
// kubernetes_sd_configs is refused at load, with the list of discoveries this build has.
func routeKubernetesLogs([]*promconfig.ScrapeConfig, *slog.Logger) {}
