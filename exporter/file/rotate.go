package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// backups returns the numbers N of the existing backups path.N, highest first.
func backups(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue // not ours: path.tmp, path.01
		}
		out = append(out, n)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

func backupName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// shiftBackups renames path.N to path.N+1 (highest first, so nothing is overwritten) and path to
// path.1. Backups past max_backups, or older than max_days by modification time, are removed.
func shiftBackups(path string, r Rotation, now time.Time) error {
	nums, err := backups(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nums {
		name := backupName(path, n)
		if r.MaxBackups > 0 && n+1 > r.MaxBackups || expired(name, r.MaxDays, now) {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := os.Rename(name, backupName(path, n+1)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Rename(path, backupName(path, 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("rotating %s: %w", path, errors.Join(errs...))
	}
	return nil
}

func expired(name string, maxDays int, now time.Time) bool {
	if maxDays <= 0 {
		return false
	}
	st, err := os.Stat(name)
	return err == nil && now.Sub(st.ModTime()) > time.Duration(maxDays)*24*time.Hour
}
