package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// refPattern matches ${env:NAME}, ${env:NAME:-default}, ${NAME} and ${file:/path}.
// "$$" escapes a literal "$".
var refPattern = regexp.MustCompile(`\$\$|\$\{(?:(env|file):)?([^}:]+?)(?::-([^}]*))?\}`)

// expander substitutes references in scalar values and remembers every substituted value, so
// that error messages can be scrubbed of them: a reference is how secrets enter the config.
type expander struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
	secrets   []string
	// expandedLines are the lines of values that came from references, whose text decode errors
	// must not quote.
	expandedLines map[int]bool
	// nodes are the scalars by path, refs the paths whose value was one reference as a whole
	// (checkCredentials).
	nodes map[string]*yaml.Node
	refs  map[string]bool
}

func (e *expander) expandValue(s string) (string, bool, error) {
	var firstErr error
	whole := false
	if m := refPattern.FindStringIndex(s); m != nil && m[0] == 0 && m[1] == len(s) && s != "$$" {
		whole = true
	}
	out := refPattern.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		m := refPattern.FindStringSubmatch(ref)
		scheme, name, def := m[1], strings.TrimSpace(m[2]), m[3]
		hasDefault := strings.Contains(ref, ":-")
		var val string
		switch scheme {
		case "", "env":
			v, ok := e.lookupEnv(name)
			switch {
			case ok:
				val = v
			case hasDefault:
				val = def
			default:
				if firstErr == nil {
					firstErr = fmt.Errorf("environment variable %s is not set (write ${env:%s:-default} for a default)", name, name)
				}
				return ""
			}
		case "file":
			b, err := e.readFile(name)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("read ${file:%s}: %w", name, err)
				}
				return ""
			}
			val = strings.TrimRight(string(b), "\r\n")
		}
		if val != "" {
			e.secrets = append(e.secrets, val)
		}
		return val
	})
	return out, whole, firstErr
}

// expandNode walks the document and expands references in scalar values (not in keys).
func (e *expander) expandNode(n *yaml.Node, path string, errs *errList) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			e.expandNode(c, p, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			e.expandNode(n.Content[i+1], join(path, n.Content[i].Value), errs)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			e.noteScalar(n, path, false)
			return
		}
		// A reference with a default is no pure reference: its default is written in the file.
		_, def, _ := strings.Cut(n.Value, ":-")
		v, whole, err := e.expandValue(n.Value)
		e.noteScalar(n, path, whole && err == nil && (def == "" || def == "}"))
		if err != nil {
			errs.add(n, path, err)
			n.Tag, n.Value, n.Style = "!!null", "", 0 // reported once; no decode error on top
			return
		}
		n.Value = v
		if e.expandedLines == nil {
			e.expandedLines = map[int]bool{}
		}
		e.expandedLines[n.Line] = true
		if whole {
			// A value that is a single reference takes the YAML type of what it expands to, so
			// that "${env:PORT}" can fill an integer field.
			n.Tag, n.Style = "", 0
		}
	}
}

// redact replaces every substituted value in s.
func (e *expander) redact(s string) string {
	for _, v := range e.secrets {
		if len(v) >= 4 { // shorter values (ports, booleans) would garble messages and are no secrets
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func defaultExpander() *expander {
	return &expander{lookupEnv: os.LookupEnv, readFile: os.ReadFile}
}
