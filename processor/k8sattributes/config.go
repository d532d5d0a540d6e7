package k8sattributes

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Metadata names the processor can add to a resource.
const (
	Namespace   = "k8s.namespace.name"
	PodName     = "k8s.pod.name"
	PodUID      = "k8s.pod.uid"
	PodIP       = "k8s.pod.ip"
	PodStart    = "k8s.pod.start_time"
	NodeName    = "k8s.node.name"
	ReplicaSet  = "k8s.replicaset.name"
	Deployment  = "k8s.deployment.name"
	StatefulSet = "k8s.statefulset.name"
	DaemonSet   = "k8s.daemonset.name"
	Job         = "k8s.job.name"
	CronJob     = "k8s.cronjob.name"
)

// DefaultMetadata is what extract.metadata defaults to: everything but the pod IP (which data
// found by connection usually says already, and which changes with every restart).
var DefaultMetadata = []string{Namespace, PodName, PodUID, PodStart, NodeName, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob}

// knownMetadata is every name extract.metadata accepts.
var knownMetadata = append(slices.Clone(DefaultMetadata), PodIP)

// Config is the k8s_attributes processor's configuration.
type Config struct {
	// AuthType is how the processor reaches the API server: serviceAccount (in a pod, the
	// default) or kubeConfig ($KUBECONFIG or ~/.kube/config).
	AuthType string `yaml:"auth_type"`
	// Node limits the watch to the pods of one node (a DaemonSet's agent: the downward API's
	// spec.nodeName); empty watches every pod the service account may list.
	Node string `yaml:"node"`
	// Extract says what to add.
	Extract Extract `yaml:"extract"`
	// PodAssociation says how a resource is matched to a pod, first source that finds one wins.
	PodAssociation []Association `yaml:"pod_association"`
	// MaxPods bounds the pods kept in memory; beyond it new pods are not indexed (counted).
	MaxPods int `yaml:"max_pods"`
	// WaitForMetadata holds Start until the first list of pods arrived, up to this long (0:
	// start at once; data before the list arrives gets no metadata).
	WaitForMetadata time.Duration `yaml:"wait_for_metadata"`
}

// Extract lists the metadata names and the pod labels and annotations to add.
type Extract struct {
	Metadata    []string     `yaml:"metadata"`
	Labels      []FieldExtra `yaml:"labels"`
	Annotations []FieldExtra `yaml:"annotations"`
}

// FieldExtra is a pod label or annotation copied to a resource attribute.
type FieldExtra struct {
	Key     string `yaml:"key"`
	TagName string `yaml:"tag_name"` // default k8s.pod.labels.<key> / k8s.pod.annotations.<key>
}

// Association is one way to find a resource's pod.
type Association struct {
	// From is resource_attribute (the attribute Name holds a pod UID or IP) or connection
	// (the address the data came from, for OTLP sent straight from a pod).
	From string `yaml:"from"`
	Name string `yaml:"name"`
}

// NewConfig returns the defaults: in-cluster credentials, every metadata name, and pods found
// by k8s.pod.uid, then k8s.pod.ip, then the connection.
func NewConfig() *Config {
	return &Config{
		AuthType: "serviceAccount",
		Extract:  Extract{Metadata: slices.Clone(DefaultMetadata)},
		PodAssociation: []Association{
			{From: "resource_attribute", Name: PodUID},
			{From: "resource_attribute", Name: PodIP},
			{From: "connection"},
		},
		MaxPods: 50000,
	}
}

// ReadsConnection is true when pods are found by the connection's address, which only the
// processors before a buffering one (batch) see.
func (c *Config) ReadsConnection() bool {
	return slices.ContainsFunc(c.PodAssociation, func(a Association) bool { return a.From == "connection" })
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	if c.AuthType != "serviceAccount" && c.AuthType != "kubeConfig" {
		errs = append(errs, fmt.Errorf("auth_type: serviceAccount or kubeConfig, got %q", c.AuthType))
	}
	for i, m := range c.Extract.Metadata {
		if !slices.Contains(knownMetadata, m) {
			errs = append(errs, fmt.Errorf("extract.metadata[%d]: %q is not one of %v", i, m, knownMetadata))
		}
	}
	for _, l := range []struct {
		name string
		list []FieldExtra
	}{{"labels", c.Extract.Labels}, {"annotations", c.Extract.Annotations}} {
		for i, f := range l.list {
			if f.Key == "" {
				errs = append(errs, fmt.Errorf("extract.%s[%d].key: required", l.name, i))
			}
		}
	}
	if len(c.PodAssociation) == 0 {
		errs = append(errs, errors.New("pod_association: one source at least (resource_attribute or connection)"))
	}
	for i, a := range c.PodAssociation {
		switch {
		case a.From == "resource_attribute" && a.Name != PodUID && a.Name != PodIP:
			errs = append(errs, fmt.Errorf("pod_association[%d].name: %s or %s, got %q", i, PodUID, PodIP, a.Name))
		case a.From == "connection" && a.Name != "":
			errs = append(errs, fmt.Errorf("pod_association[%d].name: not used with from: connection", i))
		case a.From != "resource_attribute" && a.From != "connection":
			errs = append(errs, fmt.Errorf("pod_association[%d].from: resource_attribute or connection, got %q", i, a.From))
		}
	}
	if c.MaxPods <= 0 {
		errs = append(errs, fmt.Errorf("max_pods: must be > 0, got %d", c.MaxPods))
	}
	if c.WaitForMetadata < 0 {
		errs = append(errs, fmt.Errorf("wait_for_metadata: must be >= 0, got %s", c.WaitForMetadata))
	}
	return errors.Join(errs...)
}
