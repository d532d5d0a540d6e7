package component

import (
	"fmt"
	"regexp"
	"strings"
)

// Kind is the role a component plays in a pipeline.
type Kind uint8

const (
	KindReceiver Kind = iota + 1
	KindProcessor
	KindExporter
)

func (k Kind) String() string {
	switch k {
	case KindReceiver:
		return "receiver"
	case KindProcessor:
		return "processor"
	case KindExporter:
		return "exporter"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ID names a configured component instance: its type and an optional name, written "type/name"
// in config (as in the OpenTelemetry Collector), so that one type can be configured many times.
type ID struct {
	Type string
	Name string
}

var idPart = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
var namePart = regexp.MustCompile(`^[^/\s]+$`)

// ParseID parses "type" or "type/name".
func ParseID(s string) (ID, error) {
	typ, name, hasName := strings.Cut(s, "/")
	if !idPart.MatchString(typ) {
		return ID{}, fmt.Errorf("invalid component id %q: the type must start with a letter and hold only letters, digits and _", s)
	}
	if hasName && !namePart.MatchString(name) {
		return ID{}, fmt.Errorf("invalid component id %q: the name after / must be non-empty, without / or spaces", s)
	}
	return ID{Type: typ, Name: name}, nil
}

func (id ID) String() string {
	if id.Name == "" {
		return id.Type
	}
	return id.Type + "/" + id.Name
}
