//go:build !nokubernetes

package prometheus

import (
	"log/slog"

	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/kubernetes" // registers kubernetes_sd_configs
	"k8s.io/klog/v2"
)

// routeKubernetesLogs sends the Kubernetes client's log to Vigil's when a scrape config uses
// kubernetes_sd_configs. The client logs through klog, which has one logger per process and
// writes to stderr in its own format by default; Prometheus redirects it the same way. The
// receiver started last wins.
//
// Kubernetes discovery costs about 37 MB of binary and 9 MB of resident memory at idle even
// when unused; `go build -tags nokubernetes` leaves it out (kubernetes_off.go).
func routeKubernetesLogs(scfgs []*promconfig.ScrapeConfig, logger *slog.Logger) {
	for _, sc := range scfgs {
		for _, c := range sc.ServiceDiscoveryConfigs {
			if _, ok := c.(*kubernetes.SDConfig); ok {
				klog.SetSlogLogger(logger.With("logger", "client-go"))
				return
			}
		}
	}
}
