package memtrim

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4): reclaim the range's pages now.
const madvPageout = 21

// ReleaseImage asks the kernel to reclaim the resident pages of the executable's read-only
// mappings (code and constant data). Nothing is lost: they are clean copies of the file, still
// in the page cache, and the ones used later fault back in cheaply. What stays out is what only
// start-up used — for a binary that links the Kubernetes client, most of its resident size at
// idle. It returns the number of bytes advised, or an error when the kernel does not support it.
func ReleaseImage() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var advised int64
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue // only the executable's read-only mappings: writable ones hold state
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout); e != 0 {
			errs = append(errs, fmt.Errorf("madvise %s: %w", fields[0], e))
			continue
		}
		advised += int64(end - start)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if advised == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no read-only mapping of the executable found"))
	}
	return advised, errors.Join(errs...)
}
