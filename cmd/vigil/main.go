// Command vigil is an observability agent: it receives logs, metrics and traces, processes them
// and ships them to the backends you run. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/memtrim"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/agent"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/pipeline"
	"github.com/vigilhq/vigil/internal/selftelemetry"
)

// Set at build time with -ldflags "-X main.version=… -X main.revision=…".
var (
	version  = "dev"
	revision = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: vigil <command> [flags]

Commands:
  run       run the agent (with no --config: the embedded default config)
  validate  check a config file and print every problem found
  version   print the version
  default-config  print the embedded default config
  queue     check a persistent sending queue: vigil queue check DIR [--repair]
  rules     check Prometheus rule files as promtool does: vigil rules check FILE...
  slo       generate Prometheus rules from SLO specs as Sloth does: vigil slo generate FILE...
  hash-password  print the bcrypt hash of the password on stdin, for auth.basic[].password_hash

Run "vigil <command> -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "vigil %s (revision %s, %s, %s/%s)\n", version, buildRevision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "queue":
		return cmdQueue(args[1:], stdout, stderr)
	case "rules":
		return cmdRules(args[1:], stdout, stderr)
	case "slo":
		return cmdSLO(args[1:], stdout, stderr)
	case "hash-password":
		return cmdHashPassword(args[1:], stdout, stderr)
	case "default-config":
		_, _ = stdout.Write(config.Default())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func buildRevision() string {
	if revision != "" {
		return revision
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func loadConfig(path string, f component.Factories) (*config.Config, error) {
	if path == "" {
		return config.LoadDefault(f)
	}
	return config.LoadFile(path, f)
}

func printConfigError(stderr io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Fprintf(stderr, "vigil: config has %d problem(s):\n", len(errs))
		for _, e := range errs {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return
	}
	fmt.Fprintf(stderr, "vigil: %v\n", err)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check (required)")
	print := fs.Bool("print", false, "print the config as it will run: references resolved, defaults filled in, secrets redacted")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "vigil validate: --config is required")
		return 2
	}
	f, err := components()
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	cfg, err := loadConfig(*path, f)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if *print {
		out, err := config.Marshal(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "vigil: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}
	fmt.Fprintf(stdout, "%s: valid\n", *path)
	for _, line := range pipeline.ExplainAcks(cfg, f) {
		fmt.Fprintln(stdout, line)
	}
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded default config)")
	grace := fs.Duration("grace-period", 20*time.Second, "how long shutdown may take to drain in-flight data")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations since start and what is live) to this file at exit (for performance work)")
	watch := fs.Duration("watch-config", 0, "check the config file this often and reload when it changed (0: only on SIGHUP or POST /-/reload)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "vigil: %v\n", err)
			return 1
		}
		defer stop()
	}
	if *memProfile != "" {
		defer writeHeapProfile(*memProfile, stderr)
	}
	f, err := components()
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	cfg, err := loadConfig(*path, f)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	a, err := agent.New(cfg, f, agent.Options{
		Build:       selftelemetry.Build{Version: version, Revision: buildRevision()},
		LogOutput:   stderr,
		GracePeriod: *grace,
		OnStarted:   releaseStartupMemory,
		Load:        func() (*config.Config, error) { return loadConfig(*path, f) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config: what changed is rebuilt (docs/reload.md), rule files and the
	// in-agent Alertmanager configuration are re-read.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if *watch > 0 && *path != "" {
		t := time.NewTicker(*watch)
		defer t.Stop()
		tick = t.C
	}
	go func() {
		last := fileStamp(*path)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				last = fileStamp(*path)
				_, _ = a.Reload() // logged by the agent
			case <-tick:
				// A Kubernetes ConfigMap volume swaps a symlink: stat follows it.
				if s := fileStamp(*path); s != last {
					last = s
					a.Logger.Info("config file changed, reloading", "path", *path)
					_, _ = a.Reload()
				}
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		a.Logger.Error("vigil exited with an error", "error", err)
		return 1
	}
	return 0
}

// fileStamp identifies a version of the file at path: its size and modification time.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// startCPUProfile profiles until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes the heap profile: go tool pprof -sample_index=alloc_space shows
// what was allocated over the run, inuse_space what is live at exit.
func writeHeapProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil: heap profile: %v\n", err)
	}
}

// releaseStartupMemory gives back the pages of the executable that only initialisation touched
// (most of the idle resident size of a binary that links the Kubernetes client); pages used
// later come back from the page cache.
func releaseStartupMemory(log *slog.Logger) {
	if n, err := memtrim.ReleaseImage(); err != nil {
		log.Debug("could not release start-up memory", "error", err.Error())
	} else {
		log.Debug("released start-up memory", "advised_bytes", n)
	}
}
