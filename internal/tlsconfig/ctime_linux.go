package tlsconfig

import (
	"os"
	"syscall"
	"time"
)

// changeTime is the inode's change time: a file swapped by rename (how Kubernetes updates a
// mounted Secret) may keep its size and modification time, never its ctime.
func changeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return time.Time{}
}

// inode is the file's device and inode number. The kernel's file times are coarse (a clock
// tick): two renames within one tick can leave size and times equal, never the inode.
func inode(fi os.FileInfo) [2]uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return [2]uint64{uint64(st.Dev), st.Ino} //nolint:unconvert // Dev's type differs by architecture
	}
	return [2]uint64{}
}
