//go:build !nokubernetes

package k8sattributes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// resync is how often the informer replays its cache to the handlers (a safety net: every change
// also arrives as an event).
const resync = 10 * time.Minute

// informerWatcher watches pods with a client-go shared informer.
type informerWatcher struct {
	client kubernetes.Interface
	node   string
	keepL  map[string]bool
	keepA  map[string]bool
}

// newWatcher connects to the API server as cfg.AuthType says.
func newWatcher(cfg *Config, logger *slog.Logger) (watcher, error) {
	// client-go logs through klog (stderr in its own format by default): send it to Vigil's log.
	klog.SetSlogLogger(logger.With("logger", "client-go"))
	var rc *rest.Config
	var err error
	switch cfg.AuthType {
	case "kubeConfig":
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	default:
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("auth_type %s: %w", cfg.AuthType, err)
	}
	rc.UserAgent = "vigil-k8s-attributes"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return watcherFor(client, cfg), nil
}

func watcherFor(client kubernetes.Interface, cfg *Config) *informerWatcher {
	l, a := cfg.keep()
	return &informerWatcher{client: client, node: cfg.Node, keepL: l, keepA: a}
}

func (w *informerWatcher) run(ctx context.Context, s *store, synced chan<- struct{}) error {
	// One pod informer, from client-go's core/v1 informers rather than its informer factory,
	// which links an informer for every API group (about 18 MB of binary).
	var tweak func(*metav1.ListOptions)
	if w.node != "" {
		sel := fields.OneTermEqualSelector("spec.nodeName", w.node).String()
		tweak = func(o *metav1.ListOptions) { o.FieldSelector = sel }
	}
	inf := coreinformers.NewFilteredPodInformer(w.client, metav1.NamespaceAll, resync, cache.Indexers{}, tweak)
	// The cache keeps only what the processor reads of a pod.
	if err := inf.SetTransform(func(o any) (any, error) {
		if p, ok := o.(*corev1.Pod); ok {
			return w.trim(p), nil
		}
		return o, nil
	}); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.upsert(s, o) },
		UpdateFunc: func(_, o any) { w.upsert(s, o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				s.remove(string(p.UID))
			}
		},
	}); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	defer func() { <-done }() // the informer stops when ctx ends
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return errors.New("pod cache did not sync")
	}
	close(synced)
	<-ctx.Done()
	return nil
}

func (w *informerWatcher) upsert(s *store, o any) {
	if p, ok := o.(*corev1.Pod); ok {
		s.upsert(podOf(p))
	}
}

// trim is the part of a pod the processor uses: identity, owners, the chosen labels and
// annotations, node, IPs and start time. Managed fields, specs and statuses are dropped.
func (w *informerWatcher) trim(p *corev1.Pod) *corev1.Pod {
	t := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: filter(p.Labels, w.keepL), Annotations: filter(p.Annotations, w.keepA),
			DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs, StartTime: p.Status.StartTime},
	}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			t.OwnerReferences = append(t.OwnerReferences, metav1.OwnerReference{Kind: o.Kind, Name: o.Name, Controller: o.Controller})
		}
	}
	return t
}

// podOf is the store's view of a pod. A host-network pod shares the node's IP and a finished
// pod's IP goes to the next pod scheduled, so neither is found by IP.
func podOf(p *corev1.Pod) *Pod {
	out := &Pod{
		UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName,
		Labels: p.Labels, Annotations: p.Annotations, PodTemplateHash: p.Labels[podTemplateHash],
	}
	if p.Status.StartTime != nil {
		out.Start = p.Status.StartTime.Time
	}
	finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	if !p.Spec.HostNetwork && !finished {
		for _, ip := range p.Status.PodIPs {
			if ip.IP != "" {
				out.IPs = append(out.IPs, ip.IP)
			}
		}
		if len(out.IPs) == 0 && p.Status.PodIP != "" {
			out.IPs = []string{p.Status.PodIP}
		}
	}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			switch o.Kind {
			case "ReplicaSet", "StatefulSet", "DaemonSet", "Job":
				if out.Owners == nil {
					out.Owners = map[string]string{}
				}
				out.Owners[o.Kind] = o.Name
			}
		}
	}
	return out
}
