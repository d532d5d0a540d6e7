package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/secret"
)

// errInlineCredential is the error of a credential written into the config file itself.
var errInlineCredential = errors.New("a credential written into the config: give it as ${env:NAME} or ${file:path} (vigil hash-password makes password hashes)")

// checkCredentials refuses credentials written inline: every secret field of a component's
// config struct (bearer tokens, tokens, password hashes; not header values, which also carry
// tenant names and other plain settings, though they are redacted the same way) must be a
// single ${env:} or ${file:} reference, so that a config file can be shared, committed or
// printed without its secrets.
func checkCredentials(cfg *Config, exp *expander, errs *errList) {
	walk := func(path string, v any) {
		if v != nil {
			findCredentials(reflect.ValueOf(v), path, exp, errs, 0)
		}
	}
	for _, sec := range []struct {
		name string
		m    map[component.ID]component.Config
	}{{"receivers", cfg.Receivers}, {"processors", cfg.Processors}, {"exporters", cfg.Exporters}} {
		for _, id := range slices.SortedFunc(maps.Keys(sec.m), func(a, b component.ID) int { return strings.Compare(a.String(), b.String()) }) {
			walk(sec.name+"."+id.String(), sec.m[id])
		}
	}
	walk("service.telemetry", &cfg.Service.Telemetry)
	if cfg.Alerting != nil {
		walk("alerting", cfg.Alerting)
	}
	if cfg.SLOs != nil {
		walk("slos", cfg.SLOs)
	}
}

var secretType = reflect.TypeFor[secret.String]()

// findCredentials walks v (at YAML path) for secret.String struct fields.
func findCredentials(v reflect.Value, path string, exp *expander, errs *errList, depth int) {
	if depth > 24 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			findCredentials(v.Elem(), path, exp, errs, depth+1)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			findCredentials(v.Index(i), fmt.Sprintf("%s[%d]", path, i), exp, errs, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			p := path
			if !strings.Contains(opts, "inline") {
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				p = join(path, name)
			}
			if f.Type == secretType {
				if s := v.Field(i).String(); s != "" && exp.inline(p, s) {
					errs.add(exp.nodes[p], p, errInlineCredential)
				}
				continue
			}
			findCredentials(v.Field(i), p, exp, errs, depth+1)
		}
	}
}

// inline reports whether the value at path was written in the file rather than given by a
// reference. Where the path is not one the expander saw (a component's config that renames
// its keys), the value decides: a reference's value is one it substituted.
func (e *expander) inline(path, value string) bool {
	if _, seen := e.nodes[path]; seen {
		return !e.refs[path]
	}
	for _, s := range e.secrets {
		if s == value {
			return false
		}
	}
	return true
}

// noteScalar remembers where each scalar is, and whether it was one reference as a whole.
func (e *expander) noteScalar(n *yaml.Node, path string, wholeRef bool) {
	if e.nodes == nil {
		e.nodes, e.refs = map[string]*yaml.Node{}, map[string]bool{}
	}
	e.nodes[path] = n
	if wholeRef {
		e.refs[path] = true
	}
}
