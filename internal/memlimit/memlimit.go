// Package memlimit finds how much memory this process may use: its cgroup's limit (v1 or v2, and
// its ancestors'), GOMEMLIMIT, and the machine's memory. The memory limiter's limit_percentage and
// the receivers' default budget of bytes in flight are both derived from it.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// unlimited is the threshold above which a cgroup v1 limit means "no limit" (the kernel reports
// a page-rounded 2^63-1).
const unlimited = 1 << 62

// Total returns the memory available to this process: the smallest memory limit of its
// cgroup and the cgroup's ancestors (v2 memory.max, or v1 memory.limit_in_bytes), capped by the
// machine's MemTotal. root prefixes every path, so tests can lay out a fake /sys and /proc.
func Total(root string) (uint64, error) {
	var best uint64
	consider := func(v uint64) {
		if v > 0 && v < unlimited && (best == 0 || v < best) {
			best = v
		}
	}
	v2, v1 := ownCgroups(root)
	for _, dir := range ancestors(v2) {
		for _, mount := range []string{"sys/fs/cgroup", "sys/fs/cgroup/unified"} {
			if v, ok := readLimit(filepath.Join(root, mount, dir, "memory.max")); ok {
				consider(v)
			}
		}
	}
	for _, dir := range ancestors(v1) {
		if v, ok := readLimit(filepath.Join(root, "sys/fs/cgroup/memory", dir, "memory.limit_in_bytes")); ok {
			consider(v)
		}
	}
	if v, err := memTotal(filepath.Join(root, "proc/meminfo")); err == nil {
		consider(v)
	} else if best == 0 {
		return 0, err
	}
	if best == 0 {
		return 0, errors.New("no memory limit found in cgroups or /proc/meminfo")
	}
	return best, nil
}

// ownCgroups reads /proc/self/cgroup for the process's v2 cgroup ("0::/path") and v1 memory
// cgroup ("N:memory:/path"). Missing entries come back as "/": a container usually sees its own
// cgroup as the root.
func ownCgroups(root string) (v2, v1 string) {
	v2, v1 = "/", "/"
	data, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return v2, v1
	}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case hasController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	return v2, v1
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// ancestors lists a cgroup path and its parents up to the root: a parent's limit binds too.
func ancestors(p string) []string {
	p = path.Clean("/" + p)
	out := []string{p}
	for p != "/" {
		p = path.Dir(p)
		out = append(out, p)
	}
	return out
}

// readLimit reads a cgroup limit file; "max" (v2 for no limit) and unreadable files report false.
func readLimit(name string) (uint64, bool) {
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func memTotal(name string) (uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemTotal: %w", name, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal line", name)
}

// Available is what the process may use, read once: Total("/"), capped by GOMEMLIMIT when that is
// set; 0 when neither is known.
var Available = sync.OnceValue(func() uint64 {
	v, _ := Total("/")
	if soft := debug.SetMemoryLimit(-1); soft > 0 && soft < math.MaxInt64 && (v == 0 || uint64(soft) < v) {
		v = uint64(soft)
	}
	return v
})
