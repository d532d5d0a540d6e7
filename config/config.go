package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/vigilhq/vigil/alerting/engine"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/tlsconfig"
	sloengine "github.com/vigilhq/vigil/slo/engine"
)

// Config is a loaded, validated configuration.
type Config struct {
	Receivers  map[component.ID]component.Config
	Processors map[component.ID]component.Config
	Exporters  map[component.ID]component.Config
	// ExporterAcks holds the `acknowledgements` key of the exporters that set one.
	ExporterAcks map[component.ID]component.AckMode
	Service      Service
	// Alerting is the top-level alerting section (nil: no rules are evaluated).
	Alerting *engine.Config
	// SLOs is the top-level slos section (nil: no SLOs); it needs Alerting.
	SLOs *sloengine.Config
}

// AckMode is the acknowledgement mode of the hand-off from pipeline pid to exporter exp: the
// exporter's own `acknowledgements` if it sets one, else the pipeline's, else durable.
func (c *Config) AckMode(pid PipelineID, exp component.ID) component.AckMode {
	if m, ok := c.ExporterAcks[exp]; ok {
		return m
	}
	if p := c.Service.Pipelines[pid]; p != nil && p.Acknowledgements != nil {
		return *p.Acknowledgements
	}
	return component.AckDurable
}

// AcksNone reports whether every exporter of pipeline pid is in mode none: the pipeline then
// carries no acknowledgements at all.
func (c *Config) AcksNone(pid PipelineID) bool {
	p := c.Service.Pipelines[pid]
	if p == nil {
		return false
	}
	for _, exp := range p.Exporters {
		if c.AckMode(pid, exp) != component.AckNone {
			return false
		}
	}
	return len(p.Exporters) > 0
}

// Service wires components into pipelines and configures Vigil's own telemetry.
type Service struct {
	Pipelines map[PipelineID]*Pipeline
	Telemetry Telemetry
}

// PipelineID names a pipeline: its signal and an optional name ("traces", "traces/tail").
type PipelineID struct {
	Signal batch.Signal
	Name   string
}

func (p PipelineID) String() string {
	if p.Name == "" {
		return p.Signal.String()
	}
	return p.Signal.String() + "/" + p.Name
}

// Pipeline lists the components of one pipeline, processors in order.
type Pipeline struct {
	Receivers  []component.ID
	Processors []component.ID
	Exporters  []component.ID
	// Acknowledgements is the pipeline's `acknowledgements` key (nil: not set): the mode of its
	// exporters that set none of their own.
	Acknowledgements *component.AckMode
}

// Telemetry is service.telemetry.
type Telemetry struct {
	Logs    LogsTelemetry    `yaml:"logs"`
	Metrics MetricsTelemetry `yaml:"metrics"`
}

// LogsTelemetry configures Vigil's own logs (written to stderr).
type LogsTelemetry struct {
	Level    string `yaml:"level"`    // debug, info, warn, error
	Encoding string `yaml:"encoding"` // json or console
}

// MetricsTelemetry configures the self-telemetry listener, which serves /metrics, /healthz and
// /readyz. Either address or the OpenTelemetry Collector's readers form may be used.
type MetricsTelemetry struct {
	Level   string   `yaml:"level"` // none turns the listener off; anything else keeps it
	Address string   `yaml:"address"`
	Readers []Reader `yaml:"readers"`
	// TLS and Auth protect the listener as they do a receiver's; /healthz and /readyz stay
	// open to probes.
	TLS  *tlsconfig.Server `yaml:"tls"`
	Auth *server.Auth      `yaml:"auth"`
}

// Reader is the otelcol form `readers: [{pull: {exporter: {prometheus: {host, port}}}}]`.
type Reader struct {
	Pull *struct {
		Exporter struct {
			Prometheus *struct {
				Host string `yaml:"host"`
				Port int    `yaml:"port"`
			} `yaml:"prometheus"`
		} `yaml:"exporter"`
	} `yaml:"pull"`
}

// DefaultTelemetryAddress is where /metrics, /healthz and /readyz listen unless configured.
const DefaultTelemetryAddress = "127.0.0.1:8888"

// ListenAddress is the self-telemetry listener's address, or "" when turned off.
func (m *MetricsTelemetry) ListenAddress() string {
	if m.Level == "none" {
		return ""
	}
	if m.Address != "" {
		return m.Address
	}
	for _, r := range m.Readers {
		if r.Pull != nil && r.Pull.Exporter.Prometheus != nil {
			p := r.Pull.Exporter.Prometheus
			host := p.Host
			if host == "" {
				host = "127.0.0.1"
			}
			return net.JoinHostPort(host, strconv.Itoa(p.Port))
		}
	}
	return DefaultTelemetryAddress
}

// Validate checks service.telemetry.
func (t *Telemetry) Validate() error {
	var errs []error
	if !slices.Contains([]string{"", "debug", "info", "warn", "error"}, t.Logs.Level) {
		errs = append(errs, fmt.Errorf("logs.level: must be debug, info, warn or error, got %q", t.Logs.Level))
	}
	if !slices.Contains([]string{"", "json", "console"}, t.Logs.Encoding) {
		errs = append(errs, fmt.Errorf("logs.encoding: must be json or console, got %q", t.Logs.Encoding))
	}
	if !slices.Contains([]string{"", "none", "basic", "normal", "detailed"}, t.Metrics.Level) {
		errs = append(errs, fmt.Errorf("metrics.level: must be none, basic, normal or detailed, got %q", t.Metrics.Level))
	}
	for i, r := range t.Metrics.Readers {
		if r.Pull == nil || r.Pull.Exporter.Prometheus == nil {
			errs = append(errs, fmt.Errorf("metrics.readers[%d]: only pull.exporter.prometheus is supported", i))
		}
	}
	if a := t.Metrics.ListenAddress(); a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("metrics.address: must be host:port, got %q", a))
		}
	}
	if t.Metrics.TLS != nil {
		errs = append(errs, server.Prefix("metrics.tls", t.Metrics.TLS.Validate()))
	}
	if t.Metrics.Auth != nil {
		errs = append(errs, server.Prefix("metrics.auth", t.Metrics.Auth.Validate()))
		if len(t.Metrics.Auth.ClientCerts) > 0 && (t.Metrics.TLS == nil || t.Metrics.TLS.ClientCAFile == "") {
			errs = append(errs, errors.New("metrics.auth.client_certs: needs metrics.tls.client_ca_file"))
		}
	}
	return errors.Join(errs...)
}
