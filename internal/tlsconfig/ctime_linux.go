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
