//go:build !nokubernetes

package k8sattributes

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"google.golang.org/grpc/peer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/componenttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var yes = true

// pod is a pod as the API server has it, with the fields the processor reads and a few it must
// not keep (managed fields, containers).
func pod(name, uid, ip string, owner metav1.OwnerReference, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "shop", UID: types.UID(uid), Labels: labels,
			Annotations:   map[string]string{"team": "payments", "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "shop:1"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			StartTime: &metav1.Time{Time: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		},
	}
	if owner.Kind != "" {
		owner.Controller = &yes
		p.OwnerReferences = []metav1.OwnerReference{owner, {Kind: "Other", Name: "not-controller"}}
	}
	return p
}

type fixture struct {
	t      testing.TB
	client *fake.Clientset
	proc   component.Processor
	sink   *componenttest.Sink
	reg    *prometheus.Registry
	cfg    *Config
	clock  *clock
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start runs a processor over a fake API server that holds pods.
func start(t testing.TB, mod func(*Config), pods ...*corev1.Pod) *fixture {
	t.Helper()
	cfg := NewConfig()
	cfg.WaitForMetadata = 10 * time.Second
	cfg.Extract.Labels = []FieldExtra{{Key: "app"}, {Key: "tier", TagName: "tier"}}
	cfg.Extract.Annotations = []FieldExtra{{Key: "team"}}
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, client: fake.NewClientset(), sink: &componenttest.Sink{}, reg: prometheus.NewRegistry(), cfg: cfg,
		clock: &clock{now: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}}
	for _, p := range pods {
		if _, err := f.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	set.Registerer = f.reg
	fac := factory(func(c *Config, _ *slog.Logger) (watcher, error) { return watcherFor(f.client, c), nil })
	proc, err := fac.Create(set, cfg, batch.Logs, f.sink)
	if err != nil {
		t.Fatal(err)
	}
	proc.(*processor).now = f.clock.Now
	f.proc = proc
	if err := proc.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fixture) store() *store { return f.proc.(*processor).sh.store }

// waitFor polls until cond holds; the watch delivers events asynchronously.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logsWith is a log batch of one record per resource, each resource with the given attributes.
func logsWith(resources ...map[string]string) *batch.Batch {
	ld := plog.NewLogs()
	for _, r := range resources {
		rl := ld.ResourceLogs().AppendEmpty()
		for k, v := range r {
			rl.Resource().Attributes().PutStr(k, v)
		}
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("line")
	}
	return batch.FromLogs(ld)
}

// consume sends b and returns the attributes of each resource that came out.
func (f *fixture) consume(ctx context.Context, b *batch.Batch) []map[string]any {
	f.t.Helper()
	n := len(f.sink.Batches())
	if err := f.proc.Consume(ctx, b); err != nil {
		f.t.Fatal(err)
	}
	out := f.sink.Batches()
	if len(out) != n+1 {
		f.t.Fatalf("%d batches out, want %d", len(out), n+1)
	}
	var res []map[string]any
	switch b.Signal() {
	case batch.Logs:
		ld, err := out[n].Logs()
		if err != nil {
			f.t.Fatal(err)
		}
		for i := range ld.ResourceLogs().Len() {
			res = append(res, ld.ResourceLogs().At(i).Resource().Attributes().AsRaw())
		}
	case batch.Traces:
		td, err := out[n].Traces()
		if err != nil {
			f.t.Fatal(err)
		}
		for i := range td.ResourceSpans().Len() {
			res = append(res, td.ResourceSpans().At(i).Resource().Attributes().AsRaw())
		}
	}
	return res
}

func equal(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d attributes %v, want %d %v", what, len(got), got, len(want), want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v (all: %v)", what, k, got[k], v, got)
		}
	}
}

func TestLogsFromPathGetOwnerLabelsAnnotations(t *testing.T) {
	f := start(t, nil,
		pod("shop-7c9f8d6b5-x2x9q", "uid-1", "10.1.0.7", metav1.OwnerReference{Kind: "ReplicaSet", Name: "shop-7c9f8d6b5"},
			map[string]string{"app": "shop", "tier": "web", "pod-template-hash": "7c9f8d6b5", "secret-ish": "x"}))
	// A tailed container log: the filelog receiver set these from /var/log/pods/shop_<name>_uid-1/app/.
	path := map[string]string{"k8s.namespace.name": "shop", "k8s.pod.name": "from-path", "k8s.pod.uid": "uid-1", "k8s.container.name": "app"}
	got := f.consume(context.Background(), logsWith(path, map[string]string{"k8s.pod.uid": "unknown"}))
	equal(t, "known pod", got[0], map[string]any{
		"k8s.namespace.name": "shop", "k8s.pod.name": "from-path", // present attributes are kept
		"k8s.pod.uid": "uid-1", "k8s.container.name": "app",
		"k8s.pod.start_time": "2026-12-01T08:00:00Z", "k8s.node.name": "node-a",
		"k8s.replicaset.name": "shop-7c9f8d6b5", "k8s.deployment.name": "shop",
		"k8s.pod.labels.app": "shop", "tier": "web", "k8s.pod.annotations.team": "payments",
	})
	equal(t, "unknown pod", got[1], map[string]any{"k8s.pod.uid": "unknown"})
	if v := testutil.ToFloat64(f.proc.(*processor).matched); v != 1 {
		t.Errorf("matched = %v, want 1", v)
	}
	if v := testutil.ToFloat64(f.proc.(*processor).missed); v != 1 {
		t.Errorf("unmatched = %v, want 1", v)
	}
}

func TestOwners(t *testing.T) {
	f := start(t, func(c *Config) {
		c.Extract = Extract{Metadata: []string{Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob}}
	},
		pod("db-0", "u-sts", "10.1.0.1", metav1.OwnerReference{Kind: "StatefulSet", Name: "db"}, nil),
		pod("agent-x", "u-ds", "10.1.0.2", metav1.OwnerReference{Kind: "DaemonSet", Name: "agent"}, nil),
		pod("migrate-abc", "u-job", "10.1.0.3", metav1.OwnerReference{Kind: "Job", Name: "migrate"}, nil),
		// A ReplicaSet made by hand: its name does not end in the pods' hash, so no Deployment.
		pod("rs-1", "u-rs", "10.1.0.4", metav1.OwnerReference{Kind: "ReplicaSet", Name: "handmade"}, map[string]string{"pod-template-hash": "abc"}),
		pod("bare", "u-bare", "10.1.0.5", metav1.OwnerReference{}, nil),
		// A CronJob's Job: <cronjob>-<scheduled minute since the epoch>; and a dated hand-made Job.
		pod("nightly-29460960-x", "u-cron", "10.1.0.6", metav1.OwnerReference{Kind: "Job", Name: "nightly-29460960"}, nil),
		pod("backup-x", "u-dated", "10.1.0.7", metav1.OwnerReference{Kind: "Job", Name: "backup-20261206"}, nil))
	got := f.consume(context.Background(), logsWith(
		map[string]string{"k8s.pod.uid": "u-sts"}, map[string]string{"k8s.pod.uid": "u-ds"},
		map[string]string{"k8s.pod.uid": "u-job"}, map[string]string{"k8s.pod.uid": "u-rs"},
		map[string]string{"k8s.pod.uid": "u-bare"}, map[string]string{"k8s.pod.uid": "u-cron"},
		map[string]string{"k8s.pod.uid": "u-dated"}))
	equal(t, "statefulset", got[0], map[string]any{"k8s.pod.uid": "u-sts", "k8s.statefulset.name": "db"})
	equal(t, "daemonset", got[1], map[string]any{"k8s.pod.uid": "u-ds", "k8s.daemonset.name": "agent"})
	equal(t, "job", got[2], map[string]any{"k8s.pod.uid": "u-job", "k8s.job.name": "migrate"})
	equal(t, "handmade replicaset", got[3], map[string]any{"k8s.pod.uid": "u-rs", "k8s.replicaset.name": "handmade"})
	equal(t, "no owner", got[4], map[string]any{"k8s.pod.uid": "u-bare"})
	equal(t, "cronjob", got[5], map[string]any{"k8s.pod.uid": "u-cron", "k8s.job.name": "nightly-29460960", "k8s.cronjob.name": "nightly"})
	equal(t, "dated job", got[6], map[string]any{"k8s.pod.uid": "u-dated", "k8s.job.name": "backup-20261206"})
}

func TestByConnectionAndIP(t *testing.T) {
	host := pod("node-exporter", "u-host", "192.168.0.10", metav1.OwnerReference{}, nil)
	host.Spec.HostNetwork = true
	done := pod("job-done", "u-done", "10.1.0.9", metav1.OwnerReference{}, nil)
	done.Status.Phase = corev1.PodSucceeded
	f := start(t, func(c *Config) { c.Extract = Extract{Metadata: []string{PodName, PodIP}} },
		pod("api", "u-api", "10.1.0.8", metav1.OwnerReference{}, nil), host, done)

	grpcFrom := func(ip string) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 43210}})
	}
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("GET /")
	got := f.consume(grpcFrom("10.1.0.8"), batch.FromTraces(td))
	equal(t, "spans by connection", got[0], map[string]any{"k8s.pod.name": "api", "k8s.pod.ip": "10.1.0.8"})

	// An IPv4-mapped IPv6 peer is the same pod.
	got = f.consume(grpcFrom("::ffff:10.1.0.8"), logsWith(map[string]string{}))
	equal(t, "mapped address", got[0], map[string]any{"k8s.pod.name": "api", "k8s.pod.ip": "10.1.0.8"})

	// The resource's own k8s.pod.ip comes before the connection (a gateway forwarding for pods).
	got = f.consume(grpcFrom("10.9.9.9"), logsWith(map[string]string{"k8s.pod.ip": "10.1.0.8"}))
	equal(t, "by attribute", got[0], map[string]any{"k8s.pod.name": "api", "k8s.pod.ip": "10.1.0.8"})

	// Host-network pods share the node's address and finished pods give theirs away: neither is
	// found by IP (they are by UID).
	for _, ip := range []string{"192.168.0.10", "10.1.0.9"} {
		got = f.consume(grpcFrom(ip), logsWith(map[string]string{}))
		equal(t, "not by IP "+ip, got[0], map[string]any{})
	}
	got = f.consume(context.Background(), logsWith(map[string]string{"k8s.pod.uid": "u-host"}))
	equal(t, "host network by uid", got[0], map[string]any{"k8s.pod.uid": "u-host", "k8s.pod.name": "node-exporter"})
}

func TestUnmatchedBatchKeepsEncodedForm(t *testing.T) {
	f := start(t, nil, pod("api", "u-api", "10.1.0.8", metav1.OwnerReference{}, nil))
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().Resource().Attributes().PutStr("k8s.pod.uid", "someone-else")
	ld.ResourceLogs().At(0).ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	enc, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	b, err := batch.FromEncoded(batch.Logs, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.proc.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if out := f.sink.Batches(); len(out) != 1 || !out[0].IsEncoded() {
		t.Fatal("a batch with no known pod must go on with its encoded form")
	}
	// A resource that has every attribute already is not rewritten either.
	f2 := start(t, func(c *Config) { c.Extract = Extract{Metadata: []string{PodName}} }, pod("api2", "u-api2", "10.1.0.9", metav1.OwnerReference{}, nil))
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("k8s.pod.uid", "u-api2")
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("k8s.pod.name", "api2")
	enc, _ = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	b, _ = batch.FromEncoded(batch.Logs, enc)
	if err := f2.proc.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if out := f2.sink.Batches(); len(out) != 1 || !out[0].IsEncoded() {
		t.Fatal("a batch that already has the metadata must go on with its encoded form")
	}
}

func TestWatchFollowsChanges(t *testing.T) {
	f := start(t, func(c *Config) { c.Extract = Extract{Metadata: []string{PodName}, Labels: []FieldExtra{{Key: "app"}}} })
	ctx := context.Background()
	pods := f.client.CoreV1().Pods("shop")
	a := pod("a", "u-a", "10.1.0.20", metav1.OwnerReference{}, nil)
	if _, err := pods.Create(ctx, a, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("pod a indexed", func() bool { return f.store().byPodIP("10.1.0.20") != nil })

	// Labels change: the new value is added from then on.
	a.Labels = map[string]string{"app": "v2"}
	if _, err := pods.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("label update", func() bool {
		e := f.store().byPodUID("u-a")
		return e != nil && len(e.attrs) == 2
	})

	// Deleted: still found during the grace period (its last lines arrive late), gone after.
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("deletion seen", func() bool {
		f.store().mu.RLock()
		defer f.store().mu.RUnlock()
		e := f.store().byUID["u-a"]
		return e != nil && !e.deleted.IsZero()
	})
	got := f.consume(ctx, logsWith(map[string]string{"k8s.pod.uid": "u-a"}))
	equal(t, "deleted, in grace", got[0], map[string]any{"k8s.pod.uid": "u-a", "k8s.pod.name": "a", "k8s.pod.labels.app": "v2"})

	// Its IP goes to a new pod before the old one's grace ends: the new pod owns it.
	b := pod("b", "u-b", "10.1.0.20", metav1.OwnerReference{}, nil)
	if _, err := pods.Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("pod b indexed", func() bool { return f.store().byPodUID("u-b") != nil })
	if e := f.store().byPodIP("10.1.0.20"); e == nil || e.uid != "u-b" {
		t.Fatalf("IP 10.1.0.20 -> %+v, want pod b", e)
	}
	f.clock.add(deleteGrace + time.Second)
	f.store().sweep()
	if f.store().byPodUID("u-a") != nil {
		t.Error("deleted pod still indexed after its grace period")
	}
	if e := f.store().byPodIP("10.1.0.20"); e == nil || e.uid != "u-b" {
		t.Error("sweeping the old pod took the new pod's IP with it")
	}
	if v := testutil.ToFloat64(gaugeOf(t, f.reg, "vigil_k8s_attributes_pods")); v != 1 {
		t.Errorf("vigil_k8s_attributes_pods = %v, want 1", v)
	}
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name}, func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestMaxPods(t *testing.T) {
	f := start(t, func(c *Config) { c.MaxPods = 2 },
		pod("a", "u-a", "10.1.0.1", metav1.OwnerReference{}, nil),
		pod("b", "u-b", "10.1.0.2", metav1.OwnerReference{}, nil),
		pod("c", "u-c", "10.1.0.3", metav1.OwnerReference{}, nil))
	if n := f.store().len(); n != 2 {
		t.Errorf("%d pods indexed, want max_pods = 2", n)
	}
	if v := testutil.ToFloat64(f.proc.(*processor).refused); v != 1 {
		t.Errorf("pods refused = %v, want 1", v)
	}
}

// TestNodeSelector checks that a DaemonSet's agent asks the API server for its node's pods
// only (the fake clientset does not filter on fields; the request is what is checked).
func TestNodeSelector(t *testing.T) {
	var mu sync.Mutex
	var selectors []string
	cfg := NewConfig()
	cfg.Node = "node-a"
	cfg.WaitForMetadata = 10 * time.Second
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		selectors = append(selectors, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		return false, nil, nil
	})
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	p, err := factory(func(c *Config, _ *slog.Logger) (watcher, error) { return watcherFor(client, c), nil }).Create(set, cfg, batch.Traces, component.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), component.NopHost{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(selectors) == 0 || selectors[0] != "spec.nodeName=node-a" {
		t.Fatalf("list field selectors %q, want spec.nodeName=node-a", selectors)
	}
}

func TestTrimKeepsOnlyWhatIsUsed(t *testing.T) {
	cfg := NewConfig()
	cfg.Extract.Labels = []FieldExtra{{Key: "app"}}
	w := watcherFor(fake.NewClientset(), cfg)
	p := pod("api", "u", "10.0.0.1", metav1.OwnerReference{Kind: "ReplicaSet", Name: "api-5d"},
		map[string]string{"app": "api", "pod-template-hash": "5d", "other": "x"})
	tr := w.trim(p)
	if len(tr.ManagedFields) != 0 || len(tr.Spec.Containers) != 0 || len(tr.Annotations) != 0 {
		t.Errorf("trimmed pod keeps managed fields, containers or unused annotations: %+v", tr)
	}
	if len(tr.Labels) != 2 || tr.Labels["app"] != "api" || tr.Labels["pod-template-hash"] != "5d" {
		t.Errorf("trimmed labels %v, want app and pod-template-hash", tr.Labels)
	}
	if len(tr.OwnerReferences) != 1 || tr.OwnerReferences[0].Name != "api-5d" {
		t.Errorf("owners %v, want the controller only", tr.OwnerReferences)
	}
}

func TestWaitForMetadataTimesOut(t *testing.T) {
	cfg := NewConfig()
	cfg.WaitForMetadata = 50 * time.Millisecond
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type})
	p, err := factory(func(*Config, *slog.Logger) (watcher, error) { return never{}, nil }).Create(set, cfg, batch.Logs, component.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(context.Background(), component.NopHost{})
	componenttest.CheckErrors(t, "start", err, "no list of pods from the API server within wait_for_metadata (50ms)")
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type never struct{}

func (never) run(ctx context.Context, _ *store, _ chan<- struct{}) error { <-ctx.Done(); return nil }

// TestSharedAcrossPipelines: the instances of one processor ID (one per pipeline) share one
// watch; it stops with the last of them.
func TestSharedAcrossPipelines(t *testing.T) {
	var mu sync.Mutex
	watches := 0
	client := fake.NewClientset(pod("a", "u-a", "10.1.0.1", metav1.OwnerReference{}, nil))
	newW := func(c *Config, _ *slog.Logger) (watcher, error) {
		mu.Lock()
		watches++
		mu.Unlock()
		return watcherFor(client, c), nil
	}
	cfg := NewConfig()
	cfg.WaitForMetadata = 10 * time.Second
	set := component.NopSettings(component.KindProcessor, component.ID{Type: Type, Name: "shared"})
	var ps []component.Processor
	for _, sig := range []batch.Signal{batch.Logs, batch.Traces} {
		p, err := factory(newW).Create(set, cfg, sig, component.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background(), component.NopHost{}); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if watches != 1 {
		t.Errorf("%d watches for one processor ID, want 1", watches)
	}
	if ps[0].(*processor).sh != ps[1].(*processor).sh {
		t.Error("instances of one ID do not share the index")
	}
	for _, p := range ps {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if len(indexes) != 0 {
		t.Errorf("%d indexes left after the last shutdown", len(indexes))
	}
}

func TestLifecycle(t *testing.T) {
	cfg := NewConfig()
	client := fake.NewClientset()
	componenttest.CheckProcessor(t, factory(func(c *Config, _ *slog.Logger) (watcher, error) { return watcherFor(client, c), nil }), cfg)
}

func TestResourceAttributeTypes(t *testing.T) {
	f := start(t, func(c *Config) { c.Extract.Metadata = []string{PodName} }, pod("api", "u-api", "10.1.0.8", metav1.OwnerReference{}, nil))
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutInt("k8s.pod.uid", 7)          // not a string: ignored
	rl.Resource().Attributes().PutStr("k8s.pod.ip", "not-an-ip") // ignored
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	got := f.consume(context.Background(), batch.FromLogs(ld))
	equal(t, "odd attributes", got[0], map[string]any{"k8s.pod.uid": int64(7), "k8s.pod.ip": "not-an-ip"})
}
