package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	slothDocType = reflect.TypeFor[slothDoc]()
	durationType = reflect.TypeFor[time.Duration]()
)

// checkKnown reports every mapping key in n that has no field in t (by yaml tag), with its line
// and path: yaml.v3 rejects unknown fields only through a Decoder, which stops at the first.
func checkKnown(n *yaml.Node, t reflect.Type, path string, report func(line int, path, msg string)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder says so
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			p := join(path, key.Value)
			if !ok {
				known := make([]string, 0, len(fields))
				for k := range fields {
					known = append(known, k)
				}
				slices.Sort(known)
				report(key.Line, p, fmt.Sprintf("unknown field (known: %s)", strings.Join(known, ", ")))
				continue
			}
			checkKnown(val, ft, p, report)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), report)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkKnown(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), report)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
