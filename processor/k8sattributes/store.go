package k8sattributes

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Pod is what the processor keeps of a pod: the identity it is found by and the attributes it
// adds, computed once when the pod is seen so that lookups on the hot path only read.
type Pod struct {
	UID       string
	IPs       []string // pod IPs; empty for host-network pods (their IP is the node's, shared)
	Namespace string
	Name      string
	Node      string
	Start     time.Time
	// Owners maps owner kind (ReplicaSet, StatefulSet, DaemonSet, Job) to the owner's name.
	Owners map[string]string
	// PodTemplateHash is the pod-template-hash label that a Deployment's ReplicaSet name ends in.
	PodTemplateHash string
	Labels          map[string]string
	Annotations     map[string]string
}

// attr is one resource attribute to add.
type attr struct{ key, value string }

// entry is an indexed pod and what it adds.
type entry struct {
	uid     string
	ips     []string
	attrs   []attr
	deleted time.Time // zero while the pod exists
}

// store indexes pods by UID and IP. A deleted pod stays findable for a grace period, since its
// last data (a log file read to its end, spans in a client's queue) arrives after the API server
// removed it. The number of pods is bounded: beyond max a new pod is not indexed and counted.
type store struct {
	cfg   *Config
	grace time.Duration
	now   func() time.Time

	mu    sync.RWMutex
	byUID map[string]*entry
	byIP  map[string]*entry

	refused func() // counts a pod not indexed because the store is full
}

func newStore(cfg *Config, grace time.Duration, now func() time.Time, refused func()) *store {
	return &store{cfg: cfg, grace: grace, now: now, byUID: map[string]*entry{}, byIP: map[string]*entry{}, refused: refused}
}

// upsert indexes p, replacing what was known of it; an IP moves to the newest pod that has it.
func (s *store) upsert(p *Pod) {
	e := &entry{uid: p.UID, ips: slices.Clone(p.IPs), attrs: s.attributes(p)}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, known := s.byUID[p.UID]
	if !known && len(s.byUID) >= s.cfg.MaxPods {
		s.sweepLocked()
		if len(s.byUID) >= s.cfg.MaxPods {
			if s.refused != nil {
				s.refused()
			}
			return
		}
	}
	if known {
		s.unindexIPsLocked(old)
	}
	s.byUID[p.UID] = e
	for _, ip := range e.ips {
		s.byIP[ip] = e
	}
}

// remove marks the pod deleted; it is dropped from the index after the grace period.
func (s *store) remove(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byUID[uid]; ok && e.deleted.IsZero() {
		e.deleted = s.now()
	}
}

// sweep drops the pods deleted longer ago than the grace period.
func (s *store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
}

func (s *store) sweepLocked() {
	cut := s.now().Add(-s.grace)
	for uid, e := range s.byUID {
		if !e.deleted.IsZero() && e.deleted.Before(cut) {
			delete(s.byUID, uid)
			s.unindexIPsLocked(e)
		}
	}
}

func (s *store) unindexIPsLocked(e *entry) {
	for _, ip := range e.ips {
		if s.byIP[ip] == e {
			delete(s.byIP, ip)
		}
	}
}

func (s *store) byPodUID(uid string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byUID[uid]
}

func (s *store) byPodIP(ip string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byIP[ip]
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byUID)
}

// attributes is what a resource of pod p gets, in a fixed order.
func (s *store) attributes(p *Pod) []attr {
	var out []attr
	add := func(k, v string) {
		if v != "" {
			out = append(out, attr{k, v})
		}
	}
	for _, m := range s.cfg.Extract.Metadata {
		switch m {
		case Namespace:
			add(m, p.Namespace)
		case PodName:
			add(m, p.Name)
		case PodUID:
			add(m, p.UID)
		case PodIP:
			if len(p.IPs) > 0 {
				add(m, p.IPs[0])
			}
		case PodStart:
			if !p.Start.IsZero() {
				add(m, p.Start.UTC().Format(time.RFC3339))
			}
		case NodeName:
			add(m, p.Node)
		case ReplicaSet:
			add(m, p.Owners["ReplicaSet"])
		case Deployment:
			add(m, deploymentOf(p))
		case StatefulSet:
			add(m, p.Owners["StatefulSet"])
		case DaemonSet:
			add(m, p.Owners["DaemonSet"])
		case Job:
			add(m, p.Owners["Job"])
		case CronJob:
			add(m, cronJobOf(p))
		}
	}
	for _, f := range s.cfg.Extract.Labels {
		if v, ok := p.Labels[f.Key]; ok {
			out = append(out, attr{tagName(f, "k8s.pod.labels."), v})
		}
	}
	for _, f := range s.cfg.Extract.Annotations {
		if v, ok := p.Annotations[f.Key]; ok {
			out = append(out, attr{tagName(f, "k8s.pod.annotations."), v})
		}
	}
	return out
}

// deploymentOf is the Deployment that owns p's ReplicaSet: a Deployment names its ReplicaSets
// <deployment>-<pod-template-hash>, and its pods carry that hash as a label. Reading it from
// the name spares the agent read access to ReplicaSets (and a second watch). A ReplicaSet made
// by hand has a name that does not end in its pods' hash, and no Deployment is claimed.
func deploymentOf(p *Pod) string {
	rs := p.Owners["ReplicaSet"]
	if rs == "" || p.PodTemplateHash == "" {
		return ""
	}
	if d, ok := strings.CutSuffix(rs, "-"+p.PodTemplateHash); ok && d != "" {
		return d
	}
	return ""
}

// cronJobOf is the CronJob that made p's Job: a CronJob names its Jobs <cronjob>-<scheduled
// time in minutes since the epoch>, as Deployments name their ReplicaSets, so the agent need
// not read Jobs. Only a suffix of 8 digits from 24000000 (August 2015, before CronJobs existed)
// counts, so that a Job named by hand "migrate-2" or "backup-20261206" claims no CronJob.
func cronJobOf(p *Pod) string {
	job := p.Owners["Job"]
	i := strings.LastIndexByte(job, '-')
	if i <= 0 || len(job)-i-1 != 8 {
		return ""
	}
	n, err := strconv.Atoi(job[i+1:])
	if err != nil || n < 24_000_000 {
		return ""
	}
	return job[:i]
}

func tagName(f FieldExtra, prefix string) string {
	if f.TagName != "" {
		return f.TagName
	}
	return prefix + f.Key
}

// keep is the set of label and annotation keys the config extracts; a watched pod keeps only
// these (plus pod-template-hash), so the cache does not hold every pod's full metadata.
func (c *Config) keep() (labels, annotations map[string]bool) {
	labels = map[string]bool{podTemplateHash: true}
	annotations = map[string]bool{}
	for _, f := range c.Extract.Labels {
		labels[f.Key] = true
	}
	for _, f := range c.Extract.Annotations {
		annotations[f.Key] = true
	}
	return labels, annotations
}

const podTemplateHash = "pod-template-hash"

func filter(m map[string]string, keep map[string]bool) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := maps.Clone(m)
	maps.DeleteFunc(out, func(k, _ string) bool { return !keep[k] })
	if len(out) == 0 {
		return nil
	}
	return out
}
