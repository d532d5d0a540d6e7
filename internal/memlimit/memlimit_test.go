package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot lays out files (path → content) under a temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestTotalMemory(t *testing.T) {
	const meminfo = "MemTotal:       16000000 kB\nMemFree:         1000 kB\n"
	const machine = 16000000 * 1024
	f := func(name string, files map[string]string, want uint64) {
		t.Helper()
		got, err := Total(fakeRoot(t, files))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: total %d, want %d", name, got, want)
		}
	}
	f("machine only", map[string]string{"proc/meminfo": meminfo}, machine)
	f("v2 unlimited", map[string]string{
		"proc/meminfo":             meminfo,
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "max\n",
	}, machine)
	f("v2 limit at the root (container)", map[string]string{
		"proc/meminfo":             meminfo,
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "536870912\n",
	}, 512<<20)
	f("v2 nested, parent binds", map[string]string{
		"proc/meminfo":     meminfo,
		"proc/self/cgroup": "0::/kubepods/pod1/c1\n",
		"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
		"sys/fs/cgroup/kubepods/pod1/memory.max":    "268435456\n",
		"sys/fs/cgroup/kubepods/memory.max":         "1073741824\n",
	}, 256<<20)
	f("v1 unlimited", map[string]string{
		"proc/meminfo":     meminfo,
		"proc/self/cgroup": "4:memory:/process_api/x\n0::/\n",
		"sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":               "9223372036854771712\n",
	}, machine)
	f("v1 limit", map[string]string{
		"proc/meminfo":     meminfo,
		"proc/self/cgroup": "5:cpuacct,memory:/docker/abc\n",
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
	}, 1<<30)
	f("limit above the machine", map[string]string{
		"proc/meminfo":             meminfo,
		"sys/fs/cgroup/memory.max": "999999999999999\n",
	}, machine)
	f("cgroup without meminfo", map[string]string{
		"sys/fs/cgroup/memory.max": "1048576\n",
	}, 1<<20)

	if _, err := Total(fakeRoot(t, nil)); err == nil {
		t.Error("no files: want an error")
	}
	if _, err := Total(fakeRoot(t, map[string]string{"proc/meminfo": "MemFree: 1 kB\n"})); err == nil {
		t.Error("meminfo without MemTotal: want an error")
	}
}

// TestTotalMemoryHere checks the real machine yields something plausible.
func TestTotalMemoryHere(t *testing.T) {
	got, err := Total("/")
	if err != nil {
		t.Skipf("no memory information on this machine: %v", err)
	}
	if got < 16<<20 {
		t.Errorf("total memory %d bytes is implausibly small", got)
	}
}
