// Package k8sattributes is the "k8s_attributes" processor: it adds to each resource the
// Kubernetes metadata of the pod the data came from (namespace, pod, node, owner workloads,
// chosen labels and annotations). Pods are found by the resource's k8s.pod.uid or k8s.pod.ip
// (tailed container logs carry the UID from their path) or by the address of the connection
// that brought the data. Pod metadata comes from a watch on the API server (client-go
// informers) into a bounded index; a build with the nokubernetes tag has no watch and refuses
// the processor at load.
package k8sattributes
