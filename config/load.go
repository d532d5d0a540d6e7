package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	sloengine "github.com/vigilhq/vigil/slo/engine"
)

// LoadFile reads and loads a config file.
func LoadFile(path string, f component.Factories) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Load(path, data, f)
}

// Load parses, expands, decodes and validates a config. The error, if any, is Errors: every
// problem found, each with file, line and path, and with substituted values redacted.
func Load(file string, data []byte, f component.Factories) (*Config, error) {
	return load(file, data, f, defaultExpander())
}

type rawPipeline struct {
	Receivers        []string `yaml:"receivers"`
	Processors       []string `yaml:"processors"`
	Exporters        []string `yaml:"exporters"`
	Acknowledgements *string  `yaml:"acknowledgements"`
}

type rawService struct {
	Pipelines map[string]rawPipeline `yaml:"pipelines"`
	Telemetry Telemetry              `yaml:"telemetry"`
}

func load(file string, data []byte, f component.Factories, exp *expander) (*Config, error) {
	errs := &errList{file: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, Errors{{File: file, Err: fmt.Errorf("parse YAML: %w", err)}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Err: errors.New("the config must be a YAML mapping")}}
	}
	exp.expandNode(root, "", errs)

	cfg := &Config{
		Receivers:    map[component.ID]component.Config{},
		Processors:   map[component.ID]component.Config{},
		Exporters:    map[component.ID]component.Config{},
		ExporterAcks: map[component.ID]component.AckMode{},
	}
	var svcNode, slosKey *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "receivers":
			decodeSection(val, "receivers", errs, exp, cfg.Receivers, func(t string) (func() component.Config, bool) {
				r, ok := f.Receivers[t]
				return r.NewConfig, ok
			})
		case "processors":
			decodeSection(val, "processors", errs, exp, cfg.Processors, func(t string) (func() component.Config, bool) {
				p, ok := f.Processors[t]
				return p.NewConfig, ok
			})
		case "exporters":
			takeExporterAcks(val, errs, cfg.ExporterAcks)
			decodeSection(val, "exporters", errs, exp, cfg.Exporters, func(t string) (func() component.Config, bool) {
				e, ok := f.Exporters[t]
				return e.NewConfig, ok
			}, "acknowledgements")
		case "service":
			svcNode = val
		case "alerting":
			ac := engine.NewConfig()
			if decodeInto(val, ac, "alerting", errs, exp) {
				ac.SetDirectory(filepath.Dir(file))
				errs.addJoined(val, "alerting", ac.Validate())
			}
			cfg.Alerting = ac
		case "slos":
			slosKey = key
			sc := sloengine.NewConfig()
			if decodeInto(val, sc, "slos", errs, exp) {
				sc.SetDirectory(filepath.Dir(file))
				errs.addJoined(val, "slos", sc.Validate())
			}
			cfg.SLOs = sc
		case "extensions", "connectors":
			errs.add(key, key.Value, errors.New("not supported by Vigil yet (health and metrics are built in: /healthz, /readyz and /metrics on service.telemetry.metrics.address)"))
		default:
			errs.add(key, key.Value, errors.New("unknown top-level section (known: receivers, processors, exporters, service, alerting, slos)"))
		}
	}
	if svcNode == nil {
		errs.add(root, "service", errors.New("missing: a config needs service.pipelines"))
	} else {
		decodeService(svcNode, cfg, f, errs, exp)
	}
	if cfg.SLOs == nil {
		for id := range cfg.Exporters {
			if id.Type == "slo" {
				errs.add(root, "exporters."+id.String(), errors.New("needs the top-level slos section: it counts spans and logs for the SLOs there"))
			}
		}
	}
	if cfg.Alerting == nil {
		if slosKey != nil {
			errs.add(slosKey, "slos", errors.New("needs the top-level alerting section: SLO alerts go through its notifiers, and events SLIs query its store"))
		}
		for id := range cfg.Exporters {
			if id.Type == "alerting" {
				errs.add(root, "exporters."+id.String(), errors.New("needs the top-level alerting section (rule_files, store): it feeds the alerting store"))
			}
		}
		for id := range cfg.Receivers {
			if id.Type == "alerting" {
				errs.add(root, "receivers."+id.String(), errors.New("needs the top-level alerting section (rule_files, store): it receives what the rules write"))
			}
		}
	}
	checkCredentials(cfg, exp, errs)
	if len(errs.errs) > 0 {
		for _, e := range errs.errs {
			e.Err = errors.New(exp.redact(e.Err.Error()))
		}
		return nil, errs.errs
	}
	return cfg, nil
}

func decodeSection(n *yaml.Node, section string, errs *errList, exp *expander,
	out map[component.ID]component.Config, factory func(string) (func() component.Config, bool), extraKeys ...string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		errs.add(n, section, errors.New("must be a mapping of component id to its config"))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := section + "." + key.Value
		id, err := component.ParseID(key.Value)
		if err != nil {
			errs.add(key, path, err)
			continue
		}
		newCfg, ok := factory(id.Type)
		if !ok {
			errs.add(key, path, fmt.Errorf("unknown %s type %q", strings.TrimSuffix(section, "s"), id.Type))
			continue
		}
		cfg := newCfg()
		// Kept even when invalid, so that pipelines naming it don't add a misleading
		// "not defined" error; a config with errors is never returned.
		out[id] = cfg
		if !decodeInto(val, cfg, path, errs, exp, extraKeys...) {
			continue
		}
		if v, ok := cfg.(component.Validator); ok {
			errs.addJoined(val, path, v.Validate())
		}
	}
}

// decodeInto decodes n into cfg strictly; a null node keeps the defaults.
func decodeInto(n *yaml.Node, cfg any, path string, errs *errList, exp *expander, extraKeys ...string) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true
	}
	before := len(errs.errs)
	checkKnown(n, reflect.TypeOf(cfg), path, errs, extraKeys...)
	if err := n.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				line, msg := splitLine(msg)
				if exp.expandedLines[line] {
					// yaml quotes (a prefix of) the value; it came from a reference, so it may be secret.
					msg = quoted.ReplaceAllString(msg, "[redacted value]")
				}
				errs.errs = append(errs.errs, &Error{File: errs.file, Line: line, Path: pathAtLine(n, line, path), Err: errors.New(msg)})
			}
		} else {
			errs.add(n, path, err)
		}
	}
	return len(errs.errs) == before
}

var (
	quoted     = regexp.MustCompile("`[^`]*`")
	linePrefix = regexp.MustCompile(`^line (\d+): `)
)

// pathAtLine finds the YAML path of the value on the given line, for decode errors that only
// carry a line number; it falls back to base.
func pathAtLine(n *yaml.Node, line int, base string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line == line) {
				if v.Kind == yaml.ScalarNode {
					return join(base, k.Value)
				}
			}
			if p := pathAtLine(v, line, join(base, k.Value)); p != join(base, k.Value) || v.Line == line {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", base, i)
			if c.Line == line && c.Kind == yaml.ScalarNode {
				return p
			}
			if q := pathAtLine(c, line, p); q != p {
				return q
			}
		}
	}
	return base
}

// splitLine takes yaml.v3's "line N: " prefix off a message.
func splitLine(msg string) (int, string) {
	m := linePrefix.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, msg[len(m[0]):]
}

func decodeService(n *yaml.Node, cfg *Config, f component.Factories, errs *errList, exp *expander) {
	var raw rawService
	if !decodeInto(n, &raw, "service", errs, exp) {
		return
	}
	errs.addJoined(n, "service.telemetry", raw.Telemetry.Validate())
	cfg.Service.Telemetry = raw.Telemetry
	cfg.Service.Pipelines = map[PipelineID]*Pipeline{}
	if len(raw.Pipelines) == 0 {
		errs.add(n, "service.pipelines", errors.New("at least one pipeline is required"))
	}
	names := make([]string, 0, len(raw.Pipelines))
	for k := range raw.Pipelines {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		rp := raw.Pipelines[name]
		path := "service.pipelines." + name
		node := lineOf(n, "pipelines."+name)
		sigName, pname, _ := strings.Cut(name, "/")
		sig, err := batch.ParseSignal(sigName)
		if err != nil {
			errs.add(node, path, err)
			continue
		}
		p := &Pipeline{}
		p.Receivers = resolve(node, path, "receivers", rp.Receivers, cfg.Receivers, errs, func(t string) ([]batch.Signal, bool) {
			r, ok := f.Receivers[t]
			return r.Signals, ok
		}, sig, true)
		p.Processors = resolve(node, path, "processors", rp.Processors, cfg.Processors, errs, func(t string) ([]batch.Signal, bool) {
			r, ok := f.Processors[t]
			return r.Signals, ok
		}, sig, false)
		checkConnectionReaders(node, path, p.Processors, cfg.Processors, f, errs)
		p.Exporters = resolve(node, path, "exporters", rp.Exporters, cfg.Exporters, errs, func(t string) ([]batch.Signal, bool) {
			r, ok := f.Exporters[t]
			return r.Signals, ok
		}, sig, true)
		if rp.Acknowledgements != nil {
			m, err := component.ParseAckMode(*rp.Acknowledgements)
			if err != nil {
				errs.add(lineOf(n, "pipelines."+name+".acknowledgements"), path+".acknowledgements", err)
			} else {
				p.Acknowledgements = &m
			}
		}
		cfg.Service.Pipelines[PipelineID{Signal: sig, Name: pname}] = p
	}
}

// takeExporterAcks takes the `acknowledgements` key, which every exporter has whatever its
// type, out of each exporter's section before the section is decoded into the exporter's own
// config, and records its mode.
func takeExporterAcks(n *yaml.Node, errs *errList, out map[component.ID]component.AckMode) {
	if n.Kind != yaml.MappingNode {
		return // decodeSection reports it
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if val.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(val.Content); j += 2 {
			k, v := val.Content[j], val.Content[j+1]
			if k.Value != "acknowledgements" {
				continue
			}
			val.Content = append(val.Content[:j:j], val.Content[j+2:]...)
			path := "exporters." + key.Value + ".acknowledgements"
			if v.Kind != yaml.ScalarNode {
				errs.add(v, path, errors.New("must be durable, end_to_end or none"))
				break
			}
			m, err := component.ParseAckMode(v.Value)
			if err != nil {
				errs.add(v, path, err)
				break
			}
			if id, err := component.ParseID(key.Value); err == nil {
				out[id] = m
			}
			break
		}
	}
}

// checkConnectionReaders refuses a processor that reads the client connection (k8s_attributes
// finding pods by the sender's address) placed after a buffering processor: the batches a
// buffering processor sends on join many clients' requests, so no connection is known there.
func checkConnectionReaders(n *yaml.Node, path string, ids []component.ID, defined map[component.ID]component.Config,
	f component.Factories, errs *errList) {
	var buffer component.ID
	for _, id := range ids {
		if cr, ok := defined[id].(component.ConnectionReader); ok && cr.ReadsConnection() && buffer.Type != "" {
			errs.add(n, path+".processors", fmt.Errorf("processor %q finds data's origin by the client connection, "+
				"which processor %q hides (it joins many clients' requests): list %q before %q", id, buffer, id, buffer))
		}
		if f.Processors[id.Type].Buffers && buffer.Type == "" {
			buffer = id
		}
	}
}

func resolve(n *yaml.Node, path, list string, names []string, defined map[component.ID]component.Config,
	errs *errList, signals func(string) ([]batch.Signal, bool), sig batch.Signal, required bool) []component.ID {
	if required && len(names) == 0 {
		errs.add(n, path+"."+list, errors.New("at least one is required"))
	}
	kind := strings.TrimSuffix(list, "s")
	var ids []component.ID
	seen := map[component.ID]bool{}
	for _, name := range names {
		id, err := component.ParseID(name)
		if err != nil {
			errs.add(n, path+"."+list, err)
			continue
		}
		if seen[id] {
			errs.add(n, path+"."+list, fmt.Errorf("%s %q is listed twice", kind, name))
			continue
		}
		seen[id] = true
		if _, ok := defined[id]; !ok {
			errs.add(n, path+"."+list, fmt.Errorf("%s %q is not defined in the top-level %s section", kind, name, list))
			continue
		}
		if s, ok := signals(id.Type); ok && !component.Supports(s, sig) {
			errs.add(n, path+"."+list, fmt.Errorf("%s %q does not support %s (it supports %v)", kind, name, sig, s))
			continue
		}
		ids = append(ids, id)
	}
	return ids
}
