package otlp

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vigilhq/vigil/internal/server"
)

// Default endpoints: loopback, so that nothing is exposed unless the config says so.
const (
	DefaultGRPCEndpoint = "127.0.0.1:4317"
	DefaultHTTPEndpoint = "127.0.0.1:4318"
)

// Config is the otlp receiver's configuration, with the OpenTelemetry Collector's key names.
type Config struct {
	Protocols Protocols `yaml:"protocols"`
	// MaxAttributesPerItem refuses (invalid argument, 400) a request in which a resource,
	// scope, span, span event, link, log record, metric's metadata, data point or exemplar has
	// more attributes.
	MaxAttributesPerItem int `yaml:"max_attributes_per_item"`
	// MaxAttributeBytes refuses (the same way) a request with an attribute of more bytes: its
	// key's and those of the strings and byte arrays in its value.
	MaxAttributeBytes int `yaml:"max_attribute_bytes"`
}

// DefaultMaxAttributesPerItem is the OpenTelemetry SDKs' default attribute count limit, so
// that what an SDK sends passes.
const DefaultMaxAttributesPerItem = 128

// DefaultMaxAttributeBytes leaves room for a long stack trace in exception.stacktrace.
const DefaultMaxAttributeBytes = 128 << 10

// Protocols holds one block per protocol; a nil block means the protocol is off.
//
// As in the Collector, a protocol is on when its key is present, and a key with no value
// ("grpc:" alone) means the protocol with default settings. Protocols decodes itself to get
// that: plain YAML decoding would either leave a nil pointer for "grpc:" or keep the
// default-enabled protocols that the user did not list.
type Protocols struct {
	GRPC *server.GRPC `yaml:"grpc"`
	HTTP *HTTPConfig  `yaml:"http"`
}

// HTTPConfig is the http: block: a listener plus the paths of the three Export endpoints.
type HTTPConfig struct {
	server.HTTP    `yaml:",inline"`
	TracesURLPath  string `yaml:"traces_url_path"`
	MetricsURLPath string `yaml:"metrics_url_path"`
	LogsURLPath    string `yaml:"logs_url_path"`
}

// NewConfig returns the default configuration: both protocols on, on loopback.
func NewConfig() *Config {
	g, h := defaultGRPC(), defaultHTTP()
	return &Config{Protocols: Protocols{GRPC: &g, HTTP: &h}, MaxAttributesPerItem: DefaultMaxAttributesPerItem,
		MaxAttributeBytes: DefaultMaxAttributeBytes}
}

func defaultGRPC() server.GRPC { return server.NewGRPC(DefaultGRPCEndpoint) }

func defaultHTTP() HTTPConfig {
	return HTTPConfig{
		HTTP:           server.NewHTTP(DefaultHTTPEndpoint),
		TracesURLPath:  "/v1/traces",
		MetricsURLPath: "/v1/metrics",
		LogsURLPath:    "/v1/logs",
	}
}

// UnmarshalYAML decodes the protocols: block. It uses the older yaml.v3 Unmarshaler form on
// purpose: that form decodes with the caller's decoder, so strict decoding (unknown keys fail)
// still applies inside the block, where yaml.Node.Decode would start a lenient decoder.
func (p *Protocols) UnmarshalYAML(unmarshal func(any) error) error {
	var present map[string]any
	if err := unmarshal(&present); err != nil {
		return err
	}
	// Non-pointer blocks start from the defaults; a null value leaves them untouched.
	raw := struct {
		GRPC server.GRPC `yaml:"grpc"`
		HTTP HTTPConfig  `yaml:"http"`
	}{GRPC: defaultGRPC(), HTTP: defaultHTTP()}
	if err := unmarshal(&raw); err != nil {
		return err
	}
	p.GRPC, p.HTTP = nil, nil
	if _, ok := present["grpc"]; ok {
		p.GRPC = &raw.GRPC
	}
	if _, ok := present["http"]; ok {
		p.HTTP = &raw.HTTP
	}
	return nil
}

// Validate checks the configuration; errors carry their path inside the component.
func (c *Config) Validate() error {
	p := c.Protocols
	var errs []error
	if p.GRPC == nil && p.HTTP == nil {
		errs = append(errs, errors.New("protocols: enable at least one of grpc and http"))
	}
	if c.MaxAttributeBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_attribute_bytes: must be > 0, got %d", c.MaxAttributeBytes))
	}
	if c.MaxAttributesPerItem <= 0 {
		errs = append(errs, fmt.Errorf("max_attributes_per_item: must be > 0, got %d", c.MaxAttributesPerItem))
	}
	if p.GRPC != nil {
		errs = append(errs, server.Prefix("protocols.grpc", p.GRPC.Validate()))
	}
	if p.HTTP != nil {
		errs = append(errs, server.Prefix("protocols.http", p.HTTP.Validate()))
	}
	if p.GRPC != nil && p.HTTP != nil && p.GRPC.Endpoint == p.HTTP.Endpoint {
		if _, port, err := net.SplitHostPort(p.GRPC.Endpoint); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("protocols.http.endpoint: %q is also the grpc endpoint; give each protocol its own port",
				p.HTTP.Endpoint))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the http: block.
func (h *HTTPConfig) Validate() error {
	errs := []error{h.HTTP.Validate()}
	seen := map[string]string{}
	for _, f := range []struct{ key, path string }{
		{"traces_url_path", h.TracesURLPath},
		{"metrics_url_path", h.MetricsURLPath},
		{"logs_url_path", h.LogsURLPath},
	} {
		p := urlPath(f.path)
		switch {
		case f.path == "":
			errs = append(errs, fmt.Errorf("%s: must not be empty", f.key))
		case strings.ContainsAny(p, " ?#"):
			errs = append(errs, fmt.Errorf("%s: must be a plain URL path, got %q", f.key, f.path))
		case seen[p] != "":
			errs = append(errs, fmt.Errorf("%s: %q is also %s", f.key, f.path, seen[p]))
		default:
			seen[p] = f.key
		}
	}
	return errors.Join(errs...)
}

// urlPath adds the leading slash users often leave out ("v1/traces"), as the Collector does.
func urlPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}
