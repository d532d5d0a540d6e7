//go:build !linux

package memtrim

import "errors"

// ReleaseImage is Linux-only.
func ReleaseImage() (int64, error) {
	return 0, errors.New("releasing start-up pages is supported on Linux only")
}
