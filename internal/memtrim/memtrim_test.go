//go:build linux

package memtrim

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func rssFileKiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The test binary is itself a large executable whose start-up touched many pages: releasing
// them must shrink its file-backed resident set, and the process must go on working.
func TestReleaseImage(t *testing.T) {
	before := rssFileKiB(t)
	advised, err := ReleaseImage()
	if errors.Is(err, syscall.EINVAL) {
		t.Skipf("kernel without MADV_PAGEOUT (Linux < 5.4): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKiB(t)
	if advised <= 0 || after >= before {
		t.Fatalf("advised %d bytes; RssFile %d kB before, %d kB after: want it smaller", advised, before, after)
	}
	t.Logf("RssFile %d kB → %d kB (%d kB advised)", before, after, advised/1024)
}
