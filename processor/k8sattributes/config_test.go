package k8sattributes

import (
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/componenttest"
)

func TestConfig(t *testing.T) {
	f := func(name string, wantErrs ...string) *Config {
		t.Helper()
		cfg := NewConfig()
		err := componenttest.LoadConfig(t, name, cfg)
		componenttest.CheckErrors(t, name, err, wantErrs...)
		return cfg
	}
	c := f("full.yaml")
	if c.AuthType != "kubeConfig" || c.Node != "node-a" || c.MaxPods != 200 || c.WaitForMetadata != 30*time.Second ||
		len(c.PodAssociation) != 2 || c.Extract.Labels[0].TagName != "service.name" || !c.ReadsConnection() {
		t.Errorf("full.yaml decoded as %+v", c)
	}
	f("bad.yaml",
		`auth_type: serviceAccount or kubeConfig, got "token"`,
		`extract.metadata[1]: "k8s.cluster.name" is not one of`,
		"extract.labels[0].key: required",
		`pod_association[0].name: k8s.pod.uid or k8s.pod.ip, got "host.name"`,
		"pod_association[1].name: not used with from: connection",
		`pod_association[2].from: resource_attribute or connection, got "header"`,
		"max_pods: must be > 0, got 0",
		"wait_for_metadata: must be >= 0, got -1s")
	f("unknown-field.yaml", "field fields not found")
	f("no-association.yaml", "pod_association: one source at least")

	d := NewConfig()
	if err := d.Validate(); err != nil || !d.ReadsConnection() || len(d.Extract.Metadata) != len(DefaultMetadata) {
		t.Errorf("defaults: %v %+v", err, d)
	}
}
