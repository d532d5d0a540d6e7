// Package logparse reads what log files hold: the container runtimes' line formats (CRI-O and
// containerd's "time stream tag message", Docker's json-file), with partial lines joined;
// Kubernetes metadata from the pod log path; and the parsers a tailer applies to a line (JSON,
// logfmt, regular expressions with named groups), with time and severity taken from fields.
package logparse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrMalformed is returned for a line that is not in the expected format.
var ErrMalformed = errors.New("malformed log line")

// ContainerLine is one line as a container runtime wrote it.
type ContainerLine struct {
	Time    time.Time
	Stream  string // stdout or stderr
	Partial bool   // the runtime split a long line: more of it follows
	Message string
}

// ParseCRI reads a CRI-O or containerd line: "<RFC 3339 time> <stream> <P|F> <message>".
func ParseCRI(line []byte) (ContainerLine, error) {
	var l ContainerLine
	line = bytes.TrimSuffix(line, []byte("\n"))
	parts := bytes.SplitN(line, []byte(" "), 4)
	if len(parts) < 3 {
		return l, fmt.Errorf("%w: CRI: want \"time stream tag message\"", ErrMalformed)
	}
	t, err := time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return l, fmt.Errorf("%w: CRI: time %q", ErrMalformed, trunc(parts[0]))
	}
	l.Time = t
	switch s := string(parts[1]); s {
	case "stdout", "stderr":
		l.Stream = s
	default:
		return l, fmt.Errorf("%w: CRI: stream %q", ErrMalformed, trunc(parts[1]))
	}
	// The tag is P or F, possibly with more flags after a colon (P:...).
	tag, _, _ := bytes.Cut(parts[2], []byte(":"))
	switch string(tag) {
	case "P":
		l.Partial = true
	case "F":
	default:
		return l, fmt.Errorf("%w: CRI: tag %q, want P or F", ErrMalformed, trunc(parts[2]))
	}
	if len(parts) == 4 {
		l.Message = string(parts[3])
	}
	return l, nil
}

// ParseDocker reads a line of Docker's json-file driver:
// {"log":"message\n","stream":"stdout","time":"..."}. A log without a final newline is partial.
func ParseDocker(line []byte) (ContainerLine, error) {
	var d struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if err := json.Unmarshal(line, &d); err != nil || d.Log == nil {
		return ContainerLine{}, fmt.Errorf("%w: Docker json-file: want {\"log\":..., \"stream\":..., \"time\":...}", ErrMalformed)
	}
	t, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return ContainerLine{}, fmt.Errorf("%w: Docker json-file: time %q", ErrMalformed, trunc([]byte(d.Time)))
	}
	msg, complete := strings.CutSuffix(*d.Log, "\n")
	return ContainerLine{Time: t, Stream: d.Stream, Partial: !complete, Message: msg}, nil
}

// Joiner puts partial lines back together, per stream, up to max bytes (the rest of a longer
// line is cut off, and the line marked truncated). It remembers where in its file each line it
// holds began, so that a reader never checkpoints past a line not handed on whole (Since).
type Joiner struct {
	max     int
	pending map[string]*joined
}

type joined struct {
	first     time.Time
	offset    int64 // where its first part starts in the file
	b         []byte
	truncated bool
}

// NewJoiner joins lines of at most max bytes.
func NewJoiner(max int) *Joiner { return &Joiner{max: max, pending: map[string]*joined{}} }

// Add takes one line, found at offset in its file; when it completes a line, it returns the
// whole message, the time of its first part, whether it was truncated, and true.
func (j *Joiner) Add(l ContainerLine, offset int64) (msg string, at time.Time, truncated, done bool) {
	p := j.pending[l.Stream]
	if p == nil {
		if !l.Partial {
			if len(l.Message) > j.max {
				return l.Message[:j.max], l.Time, true, true
			}
			return l.Message, l.Time, false, true
		}
		p = &joined{first: l.Time, offset: offset}
		j.pending[l.Stream] = p
	}
	room := j.max - len(p.b)
	if len(l.Message) > room {
		p.b = append(p.b, l.Message[:max(room, 0)]...)
		p.truncated = true
	} else {
		p.b = append(p.b, l.Message...)
	}
	if l.Partial {
		return "", time.Time{}, false, false
	}
	delete(j.pending, l.Stream)
	return string(p.b), p.first, p.truncated, true
}

// Pending is how many bytes wait for the rest of their line.
func (j *Joiner) Pending() int {
	n := 0
	for _, p := range j.pending {
		n += len(p.b)
	}
	return n
}

// Since is the offset of the earliest line still waiting for its rest, if any: what is before
// it has been handed on whole.
func (j *Joiner) Since() (int64, bool) {
	var off int64
	ok := false
	for _, p := range j.pending {
		if !ok || p.offset < off {
			off, ok = p.offset, true
		}
	}
	return off, ok
}

// JoinerState is what a Joiner holds at one moment, to go back to (Restore) when the lines
// added since are to be added again.
type JoinerState map[string]joined

// Save copies what the Joiner holds; it costs nothing when no line waits.
func (j *Joiner) Save() JoinerState {
	if len(j.pending) == 0 {
		return nil
	}
	s := make(JoinerState, len(j.pending))
	for k, p := range j.pending {
		c := *p
		c.b = slices.Clone(p.b)
		s[k] = c
	}
	return s
}

// Restore goes back to a saved state.
func (j *Joiner) Restore(s JoinerState) {
	clear(j.pending)
	for k, p := range s {
		c := p
		c.b = slices.Clone(p.b)
		j.pending[k] = &c
	}
}

// Flush hands on every line still waiting for its rest, as it is (its file ended without it),
// oldest first, and forgets them.
func (j *Joiner) Flush() []ContainerLine {
	var out []ContainerLine
	for stream, p := range j.pending {
		out = append(out, ContainerLine{Time: p.first, Stream: stream, Message: string(p.b)})
	}
	slices.SortFunc(out, func(a, b ContainerLine) int { return a.Time.Compare(b.Time) })
	clear(j.pending)
	return out
}

// Pod is what Kubernetes' pod log path says: /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log.
type Pod struct {
	Namespace, Name, UID, Container string
	Restart                         string
}

// PodFromPath reads the pod's metadata from a kubelet log path.
func PodFromPath(path string) (Pod, bool) {
	dir, file := filepath.Split(filepath.ToSlash(path))
	dir = strings.TrimSuffix(dir, "/")
	container := filepath.Base(dir)
	podDir := filepath.Base(filepath.Dir(dir))
	if filepath.Base(filepath.Dir(filepath.Dir(dir))) != "pods" || !strings.Contains(file, ".log") {
		return Pod{}, false
	}
	parts := strings.Split(podDir, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || container == "" {
		return Pod{}, false
	}
	restart := strings.TrimSuffix(file, ".log")
	if i := strings.IndexByte(restart, '.'); i >= 0 { // 0.log.20261203-100000 after rotation
		restart = restart[:i]
	}
	return Pod{Namespace: parts[0], Name: parts[1], UID: parts[2], Container: container, Restart: restart}, true
}

// Attributes are the pod's as OpenTelemetry names them.
func (p Pod) Attributes() map[string]string {
	return map[string]string{
		"k8s.namespace.name": p.Namespace, "k8s.pod.name": p.Name, "k8s.pod.uid": p.UID,
		"k8s.container.name": p.Container, "k8s.container.restart_count": p.Restart,
	}
}

func trunc(b []byte) string {
	if len(b) > 48 {
		return string(b[:48]) + "…"
	}
	return string(b)
}
