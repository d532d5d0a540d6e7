package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/queue"
)

const queueUsage = `Usage: vigil queue check DIR [--repair]

Checks a persistent sending queue (write-ahead log) and prints what it holds: segments, records
waiting to be sent, and corrupt or torn records. DIR is one exporter's queue
(sending_queue.directory/<exporter id>, e.g. /var/lib/vigil/queue/otlp-primary) or the shared
sending_queue.directory, whose exporter queues are then checked one by one. Stop the agent first:
a queue in use is locked.

  --repair  cut a torn tail and rewrite segments without their corrupt records

Exit status: 0 clean (or repaired), 1 corrupt records found and not repaired (or the queue could
not be read), 2 usage error.
`

func cmdQueue(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return cmdQueueCheck(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, queueUsage)
		return 0
	}
	fmt.Fprintf(stderr, "vigil queue: unknown subcommand %q\n\n%s", args[0], queueUsage)
	return 2
}

func cmdQueueCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("queue check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, queueUsage) }
	repair := fs.Bool("repair", false, "cut a torn tail and rewrite segments without their corrupt records")
	dirs, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(dirs) != 1 {
		fmt.Fprintf(stderr, "vigil queue check: want one directory, got %d\n\n%s", len(dirs), queueUsage)
		return 2
	}
	targets, err := queueDirs(dirs[0])
	if err != nil {
		fmt.Fprintf(stderr, "vigil queue check: %v\n", err)
		return 1
	}
	code := 0
	for i, dir := range targets {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		rep, err := queue.Check(dir, *repair)
		if err != nil {
			fmt.Fprintf(stderr, "vigil queue check: %s: %v\n", dir, err)
			code = 1
			continue
		}
		out := rep.String()
		fmt.Fprint(stdout, out)
		if !strings.HasSuffix(out, "\n") {
			fmt.Fprintln(stdout)
		}
		if rep.Corrupt > 0 && !rep.Repaired {
			code = 1
		}
	}
	return code
}

// queueDirs returns dir itself when it is a queue, or else the queues directly under it (dir is
// then a shared sending_queue.directory). A queue is a directory holding segments (*.wal) or
// an acknowledgement checkpoint (ack); see docs/wal.md.
func queueDirs(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	isQueue := func(d string) bool {
		des, err := os.ReadDir(d)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(des, func(de os.DirEntry) bool {
			return !de.IsDir() && (strings.HasSuffix(de.Name(), ".wal") || de.Name() == "ack")
		})
	}
	if isQueue(dir) {
		return []string{dir}, nil
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if sub := filepath.Join(dir, de.Name()); de.IsDir() && isQueue(sub) {
			out = append(out, sub)
		}
	}
	if len(out) == 0 {
		return nil, errors.New(dir + " holds no persistent queue (no *.wal segments, here or one level down)")
	}
	return out, nil
}

// parseInterspersed parses fs's flags wherever they stand among the positional arguments, which
// it returns: the flag package stops at the first argument that is not a flag, and
// "check DIR --repair" reads naturally.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
