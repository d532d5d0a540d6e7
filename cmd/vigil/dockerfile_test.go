package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile reads the instructions of a Dockerfile: comments and blank lines skipped,
// lines ending in a backslash joined with the next.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfile lints deploy/Dockerfile's structure (no Docker engine runs here): a
// multi-stage build whose binary comes from `make build` (scripts/repro.sh runs that line and
// checks it gives `make build`'s bytes), a final stage on a minimal non-root base with no shell
// to run, no HEALTHCHECK (probes do it), exec-form entrypoint, OCI labels, pinned base tags, and
// a .dockerignore that keeps .git and build output out of the context.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../../deploy/Dockerfile")
	args := map[string]string{} // ARG defaults before the first FROM
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).ReplaceAllStringFunc(s, func(m string) string {
			return args[strings.Trim(m, "${}")]
		})
	}
	type stage struct {
		image, name string
		ins         []instruction
	}
	var stages []*stage
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := &stage{image: expand(f[0])}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
		switch in.cmd {
		case "HEALTHCHECK":
			t.Errorf("line %d: HEALTHCHECK: Kubernetes probes /healthz and /readyz instead", in.line)
		case "ADD":
			t.Errorf("line %d: ADD: use COPY (ADD fetches URLs and unpacks archives)", in.line)
		case "MAINTAINER":
			t.Errorf("line %d: MAINTAINER is deprecated: use a LABEL", in.line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	for _, s := range stages {
		if name, tag, ok := strings.Cut(s.image[strings.LastIndex(s.image, "/")+1:], ":"); !ok || tag == "latest" || name == "" {
			t.Errorf("FROM %s: pin a tag (not latest)", s.image)
		}
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
		t.Errorf("runtime image %s, want distroless static, nonroot", final.image)
	}
	var built, copied, user, entry bool
	labels := map[string]bool{}
	for _, in := range build.ins {
		if in.cmd == "RUN" && regexp.MustCompile(`^make build BIN=/out/vigil\b`).MatchString(in.args) {
			built = true
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			t.Errorf("line %d: the image builds with go build directly; use make build, so that it holds the same binary", in.line)
		}
	}
	for _, in := range final.ins {
		switch in.cmd {
		case "RUN":
			t.Errorf("line %d: RUN in the runtime stage: it has no shell", in.line)
		case "COPY":
			copied = copied || in.args == "--from="+build.name+" /out/vigil /usr/bin/vigil"
		case "USER":
			uid, _, _ := strings.Cut(in.args, ":")
			user = regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid)
		case "ENTRYPOINT":
			var argv []string
			entry = json.Unmarshal([]byte(in.args), &argv) == nil && len(argv) > 0 && argv[0] == "/usr/bin/vigil"
		case "LABEL":
			for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z]+)=`).FindAllStringSubmatch(in.args, -1) {
				labels[m[1]] = true
			}
		}
	}
	if !built {
		t.Error("the build stage has no RUN make build BIN=/out/vigil …")
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from=%s /out/vigil /usr/bin/vigil", build.name)
	}
	if !user {
		t.Error("the runtime stage has no numeric non-root USER (Kubernetes' runAsNonRoot checks a number)")
	}
	if !entry {
		t.Error("ENTRYPOINT is not the exec form [\"/usr/bin/vigil\", …]")
	}
	for _, l := range []string{"title", "source", "licenses", "version", "revision"} {
		if !labels["org.opencontainers.image."+l] {
			t.Errorf("no LABEL org.opencontainers.image.%s", l)
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin", "dist"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(ignore) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
}
