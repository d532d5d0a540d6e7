//go:build nokubernetes

package k8sattributes

import (
	"errors"
	"log/slog"
)

func newWatcher(*Config, *slog.Logger) (watcher, error) {
	return nil, errors.New("this build has no Kubernetes support (built with -tags nokubernetes)")
}
