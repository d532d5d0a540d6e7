package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ReloadCheck is how often, at most, a handshake looks at whether the certificate, key or CA
// files changed: a renewed certificate (cert-manager, certbot, a rotated Secret) is served
// within about this long, without a restart.
const ReloadCheck = time.Second

var reloadCheck = ReloadCheck // tests shorten it

// stamp is what tells a file changed: its size, modification time, inode change time and
// inode.
type stamp struct {
	size       int64
	mod, ctime time.Time
	inode      [2]uint64
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{size: fi.Size(), mod: fi.ModTime(), ctime: changeTime(fi), inode: inode(fi)}, nil
}

// reloading holds a value loaded from files and loads it again when one of them changes,
// looking at most once per ReloadCheck. A reload that fails keeps the last good value and is
// logged once per change of the files, so that a half-written renewal never takes a listener
// down.
type reloading[T any] struct {
	what  string
	paths []string
	load  func() (T, error)
	now   func() time.Time

	mu      sync.Mutex
	cur     T
	stamps  []stamp
	checked time.Time
	failed  []stamp // the stamps a reload last failed at, not to log it again
}

func newReloading[T any](what string, load func() (T, error), paths ...string) (*reloading[T], error) {
	r := &reloading[T]{what: what, paths: paths, load: load, now: time.Now}
	stamps, err := r.stampAll()
	if err != nil {
		return nil, err
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur, r.stamps, r.checked = v, stamps, r.now()
	return r, nil
}

func (r *reloading[T]) stampAll() ([]stamp, error) {
	out := make([]stamp, len(r.paths))
	for i, p := range r.paths {
		s, err := stampOf(p)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].size != b[i].size || !a[i].mod.Equal(b[i].mod) || !a[i].ctime.Equal(b[i].ctime) || a[i].inode != b[i].inode {
			return false
		}
	}
	return true
}

// get returns the current value, reloaded first if the files changed.
func (r *reloading[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < reloadCheck {
		return r.cur
	}
	r.checked = now
	stamps, err := r.stampAll()
	if err != nil || equalStamps(stamps, r.stamps) {
		return r.cur // a file missing for a moment (being replaced) keeps the last good value
	}
	v, err := r.load()
	if err != nil {
		if !equalStamps(stamps, r.failed) {
			r.failed = stamps
			slog.Warn("TLS files changed but do not load; still serving the previous "+r.what, "files", r.paths, "error", err)
		}
		return r.cur
	}
	r.cur, r.stamps, r.failed = v, stamps, nil
	slog.Info("TLS "+r.what+" reloaded", "files", r.paths)
	return r.cur
}

func keyPair(cert, key string) (*reloading[*tls.Certificate], error) {
	r, err := newReloading("certificate", func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		return &c, nil
	}, cert, key)
	if err != nil {
		return nil, fmt.Errorf("load cert_file/key_file: %w", err)
	}
	return r, nil
}

func pool(path string) (*reloading[*x509.CertPool], error) {
	return newReloading("CA", func() (*x509.CertPool, error) { return loadPool(path) }, path)
}
