package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Check verifies a persistent queue directory without opening the queue, for
// `vigil queue check DIR [--repair]`. It takes the directory's lock, so it fails (naming the
// directory) while a running vigil holds it. It reports what a start would replay and every
// damaged stretch it finds. With repair it truncates damaged tails and rewrites segments with
// damage in the middle so that they hold only their valid records (each rewrite is atomic);
// records already lost to damage stay lost, but the next start no longer has to skip them.
func Check(dir string, repair bool) (Report, error) {
	r := Report{Dir: dir}
	fi, err := os.Stat(dir)
	if err != nil {
		return r, fmt.Errorf("queue check: %w", err)
	}
	if !fi.IsDir() {
		return r, fmt.Errorf("queue check: %s is not a directory", dir)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return r, fmt.Errorf("queue check: %w", err)
	}
	defer lock.Close()
	scan, err := scanDir(dir)
	if err != nil {
		return r, fmt.Errorf("queue check %s: %w", dir, err)
	}
	if scan.ackErr != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("%s: unreadable (%v): every record counts as pending and "+
			"would be sent again on start", ackFile, scan.ackErr))
	}
	for _, s := range scan.segments {
		name := filepath.Base(s.path)
		r.Segments++
		r.Bytes += s.size
		for _, rec := range s.records {
			r.Records++
			if scan.acked(rec.seq) {
				continue
			}
			r.Pending++
			r.Items += rec.items
			if at := time.Unix(0, rec.at); r.Oldest.IsZero() || at.Before(r.Oldest) {
				r.Oldest = at
			}
		}
		for _, d := range s.damage {
			r.Corrupt++
			n := d.end - d.off
			switch {
			case d.tail(int(s.size)) && d.torn:
				r.Problems = append(r.Problems, fmt.Sprintf("%s:%d: torn tail of %d bytes (%s): an append "+
					"interrupted by a crash; it was never acknowledged and is cut off on start", name, d.off, n, d.why))
			case d.tail(int(s.size)):
				r.Problems = append(r.Problems, fmt.Sprintf("%s:%d: %d corrupt bytes at the end (%s); "+
					"any records in them are lost", name, d.off, n, d.why))
			default:
				r.Problems = append(r.Problems, fmt.Sprintf("%s:%d: %d corrupt bytes (%s) before the next valid "+
					"record at offset %d; any records in them are lost", name, d.off, n, d.why, d.end))
			}
		}
		if !repair || len(s.damage) == 0 {
			continue
		}
		if len(s.damage) == 1 && s.damage[0].tail(int(s.size)) {
			err = truncateFile(osFS{}, s.path, int64(s.damage[0].off))
		} else {
			err = rewriteSegment(s.path, s.size, s.records)
		}
		if err != nil {
			return r, fmt.Errorf("queue check %s: repair %s: %w", dir, name, err)
		}
		r.Repaired = true
	}
	return r, nil
}

// String is the report `vigil queue check` prints.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "persistent queue %s\n", r.Dir)
	fmt.Fprintf(&b, "  segments: %d (%s on disk)\n", r.Segments, humanBytes(r.Bytes))
	fmt.Fprintf(&b, "  records:  %d valid, %d pending delivery (%d items)\n", r.Records, r.Pending, r.Items)
	if !r.Oldest.IsZero() {
		fmt.Fprintf(&b, "  oldest pending: %s (%s ago)\n", r.Oldest.UTC().Format(time.RFC3339),
			time.Since(r.Oldest).Round(time.Second))
	}
	if len(r.Problems) == 0 {
		b.WriteString("  no problems found\n")
		return b.String()
	}
	fmt.Fprintf(&b, "  damaged stretches: %d\n", r.Corrupt)
	b.WriteString("  problems:\n")
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	switch {
	case r.Repaired:
		b.WriteString("  repaired: damaged data removed; valid records kept\n")
	case r.Corrupt > 0:
		b.WriteString("  not repaired: run again with --repair to remove the damaged data (vigil also skips it on start)\n")
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
