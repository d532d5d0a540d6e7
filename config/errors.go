package config

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file, located by line and YAML path.
type Error struct {
	File string
	Line int
	Path string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a config, reported together.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

type errList struct {
	file string
	errs Errors
}

func (l *errList) add(n *yaml.Node, path string, err error) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Path: path, Err: err})
}

// addJoined adds each error of a (possibly joined) error, prefixing its own path if it has one
// ("endpoint: must be set" under "exporters.otlp" becomes "exporters.otlp.endpoint: must be set").
func (l *errList) addJoined(n *yaml.Node, path string, err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			l.addJoined(n, path, e)
		}
		return
	}
	var le interface {
		error
		LineAndPath() (int, string)
	}
	if errors.As(err, &le) { // an error that knows its own line (a document inlined in the config)
		line, sub := le.LineAndPath()
		l.add(&yaml.Node{Line: line}, path+"."+sub, errors.Unwrap(le))
		return
	}
	msg := err.Error()
	if sub, rest, ok := strings.Cut(msg, ": "); ok && looksLikePath(sub) {
		l.add(lineOf(n, sub), path+"."+sub, errors.New(rest))
		return
	}
	l.add(n, path, err)
}

func looksLikePath(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\"'") {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '[' || r == ']' || r == '/' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// lineOf finds the node a dotted sub-path points at, for a better line number; it falls back to n.
func lineOf(n *yaml.Node, sub string) *yaml.Node {
	cur := n
	for _, key := range strings.Split(sub, ".") {
		if cur == nil || cur.Kind != yaml.MappingNode {
			return n
		}
		var found *yaml.Node
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == key {
				found = cur.Content[i]
				if cur.Content[i+1].Kind == yaml.MappingNode {
					found = cur.Content[i+1]
				}
				break
			}
		}
		if found == nil {
			return cur
		}
		cur = found
	}
	return cur
}
