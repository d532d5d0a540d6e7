package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/vigilhq/vigil/processor/memorylimiter"
)

const kubeDir = "../../deploy/kubernetes"

// kustomization is the part of kustomize's file the bases use.
type kustomization struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Namespace          string   `json:"namespace,omitempty"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator,omitempty"`
	Labels []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
}

// base is one kustomize base, read as kustomize would build it: its resources decoded strictly
// with the Kubernetes API types, its generated ConfigMaps' files.
type base struct {
	dir        string
	objects    map[string][]any // by kind
	configs    map[string]string
	namespaces []*corev1.Namespace
}

func decodeStrict(t *testing.T, file string, doc []byte) (string, any) {
	t.Helper()
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch meta.Kind {
	case "Namespace":
		obj = &corev1.Namespace{}
	case "ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "Service":
		obj = &corev1.Service{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "ClusterRole":
		obj = &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		obj = &rbacv1.ClusterRoleBinding{}
	case "HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		t.Fatalf("%s: kind %q has no check here; add it", file, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s: %v", file, meta.Kind, err)
	}
	return meta.Kind, obj
}

func loadBase(t *testing.T, dir string) *base {
	t.Helper()
	b := &base{dir: dir, objects: map[string][]any{}, configs: map[string]string{}}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s/kustomization.yaml: apiVersion %q kind %q", dir, k.APIVersion, k.Kind)
	}
	used := map[string]bool{"kustomization.yaml": true}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			sub := loadBase(t, p)
			for kind, objs := range sub.objects {
				b.objects[kind] = append(b.objects[kind], objs...)
			}
			b.namespaces = append(b.namespaces, sub.namespaces...)
			continue
		}
		used[r] = true
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: resource %s: %v", dir, r, err)
		}
		for doc := range bytes.SplitSeq(raw, []byte("\n---\n")) {
			kind, obj := decodeStrict(t, p, doc)
			if ns, ok := obj.(*corev1.Namespace); ok {
				b.namespaces = append(b.namespaces, ns)
			}
			b.objects[kind] = append(b.objects[kind], obj)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			used[f] = true
			raw, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatalf("%s: configMapGenerator %s: %v", dir, g.Name, err)
			}
			b.configs[g.Name] = string(raw)
		}
	}
	// Every file of the base is part of it: none forgotten in the kustomization.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && !used[e.Name()] {
			t.Errorf("%s/%s is not in the kustomization", dir, e.Name())
		}
	}
	return b
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)`)

// TestKubernetesManifests: the kustomize bases in deploy/kubernetes decode strictly with the
// Kubernetes API types, and hold what the issue asks of them: least privilege, probes on
// /healthz and /readyz, limits tied to the memory limiter, every config reference provided.
// Their ConfigMaps' configs pass `vigil validate`.
func TestKubernetesManifests(t *testing.T) {
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, workload string
		rbac          bool // Kubernetes service discovery: reads pods
		hostPaths     []string
	}{
		{"agent", "DaemonSet", true, []string{"/var/log/pods", "/var/lib/vigil"}},
		{"gateway", "Deployment", false, nil},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			b := loadBase(t, filepath.Join(kubeDir, tc.dir))
			if len(b.namespaces) != 1 || b.namespaces[0].Name != "vigil" {
				t.Fatalf("want the vigil namespace from the base, got %d", len(b.namespaces))
			}
			if len(b.objects[tc.workload]) != 1 {
				t.Fatalf("want one %s, got %d", tc.workload, len(b.objects[tc.workload]))
			}
			var pod corev1.PodTemplateSpec
			var selector map[string]string
			switch w := b.objects[tc.workload][0].(type) {
			case *appsv1.DaemonSet:
				pod, selector = w.Spec.Template, w.Spec.Selector.MatchLabels
			case *appsv1.Deployment:
				pod, selector = w.Spec.Template, w.Spec.Selector.MatchLabels
			}
			for k, v := range selector {
				if pod.Labels[k] != v {
					t.Errorf("the selector's %s=%s is not on the pod template", k, v)
				}
			}
			checkPod(t, pod.Spec, tc.hostPaths)
			checkRBAC(t, b, pod.Spec, tc.rbac)
			checkServices(t, b, pod)

			// The config: every env reference is set by the container, every file it names is
			// mounted, and it validates.
			c := pod.Spec.Containers[0]
			cmName := ""
			for _, v := range pod.Spec.Volumes {
				if v.ConfigMap != nil {
					cmName = v.ConfigMap.Name
				}
			}
			cfg, ok := b.configs[cmName]
			if !ok {
				t.Fatalf("the pod mounts ConfigMap %q, which the kustomization does not generate", cmName)
			}
			for _, m := range envRef.FindAllStringSubmatch(cfg, -1) {
				if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == m[1] }) {
					t.Errorf("config.yaml uses ${env:%s}, which the container does not set", m[1])
				}
			}
			for _, p := range regexp.MustCompile(`(/etc/vigil|/var/lib/vigil|/var/log/pods)[^\s,}'"]*`).FindAllString(cfg, -1) {
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
					return strings.HasPrefix(p, m.MountPath+"/") || p == m.MountPath
				}) {
					t.Errorf("config.yaml names %s, which no volume mounts", p)
				}
			}
			for _, e := range c.Env {
				t.Setenv(e.Name, "10.0.0.1")
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			loaded, err := loadConfig(path, f)
			if err != nil {
				t.Fatalf("vigil validate on ConfigMap %s: %v", cmName, err)
			}
			// The memory limiter is what the container's memory limit is for: every pipeline
			// starts with one whose limit is a share of the cgroup's (limit_percentage), not a
			// fixed size that could exceed it.
			for pid, p := range loaded.Service.Pipelines {
				if len(p.Processors) == 0 || p.Processors[0].Type != "memory_limiter" {
					t.Errorf("ConfigMap %s: pipeline %s does not start with a memory_limiter", cmName, pid)
					continue
				}
				ml := loaded.Processors[p.Processors[0]].(*memorylimiter.Config)
				if ml.LimitPercentage == 0 || ml.LimitPercentage > 90 || ml.LimitMiB != 0 {
					t.Errorf("ConfigMap %s: memory_limiter %+v: want limit_percentage (at most 90) of the container's limit", cmName, ml)
				}
			}
		})
	}
}

func checkPod(t *testing.T, spec corev1.PodSpec, hostPaths []string) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and seccomp RuntimeDefault", psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			(sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot) || (sc.RunAsUser != nil && *sc.RunAsUser == 0) || sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s securityContext %+v: want no privilege escalation, a read-only root, ALL capabilities dropped, none added, not root", c.Name, sc)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
			c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("container %s: want liveness on /healthz and readiness on /readyz", c.Name)
		} else {
			for _, port := range []string{c.LivenessProbe.HTTPGet.Port.String(), c.ReadinessProbe.HTTPGet.Port.String()} {
				if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
					t.Errorf("container %s: a probe's port %s is not a container port", c.Name, port)
				}
			}
		}
		lim, req := c.Resources.Limits.Memory(), c.Resources.Requests.Memory()
		if lim.IsZero() || req.IsZero() || req.Cmp(*lim) > 0 || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s resources %+v: want cpu and memory requests and a memory limit (the memory limiter's 80%% is of it)", c.Name, c.Resources)
		}
		// Writable paths are volumes: the root filesystem is read-only.
		for _, want := range []string{"/tmp"} {
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == want && !m.ReadOnly }) {
				t.Errorf("container %s: no writable volume at %s", c.Name, want)
			}
		}
	}
	// The one exception to "never root": an init container that only chowns the state
	// directory on the node, with CHOWN as its only capability.
	for _, c := range spec.InitContainers {
		sc := c.SecurityContext
		if c.Name != "state-owner" || !slices.Equal(c.Command, []string{"chown", "65532:65532", "/var/lib/vigil"}) ||
			sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
			!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"CHOWN"}) {
			t.Errorf("init container %s: only the state-owner chown, with CHOWN alone, may run", c.Name)
		}
	}
	var got []string
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			got = append(got, v.HostPath.Path)
		}
	}
	if !slices.Equal(got, hostPaths) {
		t.Errorf("hostPath volumes %v, want exactly %v", got, hostPaths)
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/var/log/pods" && !m.ReadOnly {
				t.Errorf("container %s mounts /var/log/pods writable", c.Name)
			}
		}
	}
}

// checkRBAC: the agent may get, list and watch pods, nothing else; the gateway has no role
// and no token.
func checkRBAC(t *testing.T, b *base, spec corev1.PodSpec, wantPods bool) {
	t.Helper()
	roles, bindings := b.objects["ClusterRole"], b.objects["ClusterRoleBinding"]
	if !wantPods {
		if len(roles)+len(bindings) > 0 {
			t.Errorf("%d roles and %d bindings where none is needed", len(roles), len(bindings))
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Error("the pod mounts a service account token it does not need")
		}
		return
	}
	if len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("want one ClusterRole and one binding, got %d and %d", len(roles), len(bindings))
	}
	role := roles[0].(*rbacv1.ClusterRole)
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"pods"}) ||
			!slices.Equal(r.Verbs, []string{"get", "list", "watch"}) || len(r.ResourceNames)+len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: want get, list and watch of pods only", r)
		}
	}
	bd := bindings[0].(*rbacv1.ClusterRoleBinding)
	if bd.RoleRef.Name != role.Name || len(bd.Subjects) != 1 || bd.Subjects[0].Kind != "ServiceAccount" ||
		bd.Subjects[0].Name != spec.ServiceAccountName || bd.Subjects[0].Namespace != "vigil" {
		t.Errorf("binding %+v does not bind %s to the pod's service account %s", bd, role.Name, spec.ServiceAccountName)
	}
}

// checkServices: Services, the HPA and the PDB point at the workload and at named ports it has.
func checkServices(t *testing.T, b *base, pod corev1.PodTemplateSpec) {
	t.Helper()
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if pod.Labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	for _, o := range b.objects["Service"] {
		s := o.(*corev1.Service)
		if !matches(s.Spec.Selector) {
			t.Errorf("Service %s selects %v, not the pods", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(pod.Spec.Containers[0].Ports, func(c corev1.ContainerPort) bool { return c.Name == p.TargetPort.String() }) {
				t.Errorf("Service %s port %s targets %s, which the container does not name", s.Name, p.Name, p.TargetPort.String())
			}
		}
	}
	for _, o := range b.objects["PodDisruptionBudget"] {
		if p := o.(*policyv1.PodDisruptionBudget); !matches(p.Spec.Selector.MatchLabels) {
			t.Errorf("PodDisruptionBudget %s selects %v, not the pods", p.Name, p.Spec.Selector.MatchLabels)
		}
	}
	if hpas, deps := b.objects["HorizontalPodAutoscaler"], b.objects["Deployment"]; len(deps) == 1 {
		d := deps[0].(*appsv1.Deployment)
		if len(hpas) != 1 || len(b.objects["PodDisruptionBudget"]) != 1 {
			t.Fatalf("the gateway wants one HorizontalPodAutoscaler and one PodDisruptionBudget, got %d and %d", len(hpas), len(b.objects["PodDisruptionBudget"]))
		}
		h := hpas[0].(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			t.Errorf("HorizontalPodAutoscaler %+v: want it on Deployment %s with at least 2 replicas", h.Spec, d.Name)
		}
	}
}
