package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

// checkKnown also normalises a bare 0 duration. It reports every mapping key in n that has no field in t, with its line and path.
// yaml.v3 can reject unknown fields only through a Decoder, which would lose line numbers when
// decoding a sub-tree and stops at the first one; this walk reports them all.
//
// extra names keys that n's own level may hold besides t's fields (the loader takes them out
// before decoding, like every exporter's acknowledgements).
func checkKnown(n *yaml.Node, t reflect.Type, path string, errs *errList, extra ...string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType && n.Kind == yaml.ScalarNode && n.Tag == "!!int" && n.Value == "0" {
		// The Collector accepts a bare 0 for "never" (max_elapsed_time: 0); yaml.v3 wants a unit.
		n.Tag, n.Value = "!!str", "0s"
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		for _, k := range extra {
			fields[k] = reflect.TypeFor[string]()
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				errs.add(key, join(path, key.Value), fmt.Errorf("unknown field (known: %s)", known(fields)))
				continue
			}
			checkKnown(val, ft, join(path, key.Value), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKnown(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default
		}
		out[name] = f.Type
	}
}

func known(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
