package component

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

// ReceiverFactory creates receivers of one type. One receiver instance serves every pipeline
// that names its ID: next holds one consumer per signal it is used for.
type ReceiverFactory struct {
	Type      string
	Signals   []batch.Signal
	NewConfig func() Config
	Create    func(set Settings, cfg Config, next map[batch.Signal]Consumer) (Component, error)
}

// ProcessorFactory creates processors of one type; each pipeline gets its own instance.
type ProcessorFactory struct {
	Type    string
	Signals []batch.Signal
	// MutatesData tells fan-out to hand this pipeline its own copy of shared data.
	MutatesData bool
	// Buffers says the processor answers its caller before the data moved on (it holds batches
	// to join them). It must then hold the acknowledgements of what it buffers (package ack)
	// until its send is done; `vigil validate` says how long a client may wait for it (the
	// config's Holding.MaxHold).
	Buffers   bool
	NewConfig func() Config
	Create    func(set Settings, cfg Config, sig batch.Signal, next Consumer) (Processor, error)
}

// Holding is implemented by the configs of buffering processors: MaxHold is the longest the
// processor holds data before sending it on (a batch timeout), which clients wait for in
// addition under the durable and end_to_end acknowledgement modes.
type Holding interface {
	MaxHold() time.Duration
}

// ConnectionReader is implemented by processor configs that use the client connection a batch
// came with (server.ClientAddr): such a processor must come before any buffering one.
type ConnectionReader interface {
	ReadsConnection() bool
}

// AckPointer is implemented by exporter configs that can say what their acknowledgement means
// in a mode ("written to the persistent queue and fsynced"), for `vigil validate`.
type AckPointer interface {
	AckPoint(m AckMode) string
}

// ExporterFactory creates exporters of one type.
type ExporterFactory struct {
	Type      string
	Signals   []batch.Signal
	NewConfig func() Config
	Create    func(set Settings, cfg Config) (Exporter, error)
}

// Factories is the set of component types an agent is built with.
type Factories struct {
	Receivers  map[string]ReceiverFactory
	Processors map[string]ProcessorFactory
	Exporters  map[string]ExporterFactory
}

// MakeFactories indexes factories by type and fails on a duplicate or incomplete factory.
func MakeFactories(rs []ReceiverFactory, ps []ProcessorFactory, es []ExporterFactory) (Factories, error) {
	f := Factories{
		Receivers:  map[string]ReceiverFactory{},
		Processors: map[string]ProcessorFactory{},
		Exporters:  map[string]ExporterFactory{},
	}
	for _, r := range rs {
		if r.Type == "" || r.NewConfig == nil || r.Create == nil || len(r.Signals) == 0 {
			return Factories{}, fmt.Errorf("receiver factory %q is incomplete", r.Type)
		}
		if _, dup := f.Receivers[r.Type]; dup {
			return Factories{}, fmt.Errorf("receiver type %q registered twice", r.Type)
		}
		f.Receivers[r.Type] = r
	}
	for _, p := range ps {
		if p.Type == "" || p.NewConfig == nil || p.Create == nil || len(p.Signals) == 0 {
			return Factories{}, fmt.Errorf("processor factory %q is incomplete", p.Type)
		}
		if _, dup := f.Processors[p.Type]; dup {
			return Factories{}, fmt.Errorf("processor type %q registered twice", p.Type)
		}
		f.Processors[p.Type] = p
	}
	for _, e := range es {
		if e.Type == "" || e.NewConfig == nil || e.Create == nil || len(e.Signals) == 0 {
			return Factories{}, fmt.Errorf("exporter factory %q is incomplete", e.Type)
		}
		if _, dup := f.Exporters[e.Type]; dup {
			return Factories{}, fmt.Errorf("exporter type %q registered twice", e.Type)
		}
		f.Exporters[e.Type] = e
	}
	return f, nil
}

// Supports reports whether sig is in signals.
func Supports(signals []batch.Signal, sig batch.Signal) bool { return slices.Contains(signals, sig) }

// typed asserts a component's config to the type its package defines.
func typed[C any](set Settings, cfg Config) (*C, error) {
	c, ok := cfg.(*C)
	if !ok {
		return nil, fmt.Errorf("%s %s: config is %T, want %T", set.Kind, set.ID, cfg, (*C)(nil))
	}
	return c, nil
}

// CreateReceiver adapts a create function that takes the package's own config type and returns
// its own receiver type.
func CreateReceiver[C any, R Component](create func(Settings, *C, map[batch.Signal]Consumer) (R, error)) func(Settings, Config, map[batch.Signal]Consumer) (Component, error) {
	return func(set Settings, cfg Config, next map[batch.Signal]Consumer) (Component, error) {
		c, err := typed[C](set, cfg)
		if err != nil {
			return nil, err
		}
		r, err := create(set, c, next)
		if err != nil {
			return nil, err // not r: a nil pointer in an interface is not nil
		}
		return r, nil
	}
}

// CreateProcessor adapts a create function that takes the package's own config type.
func CreateProcessor[C any, P Processor](create func(Settings, *C, batch.Signal, Consumer) (P, error)) func(Settings, Config, batch.Signal, Consumer) (Processor, error) {
	return func(set Settings, cfg Config, sig batch.Signal, next Consumer) (Processor, error) {
		c, err := typed[C](set, cfg)
		if err != nil {
			return nil, err
		}
		p, err := create(set, c, sig, next)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// CreateExporter adapts a create function that takes the package's own config type.
func CreateExporter[C any, E Exporter](create func(Settings, *C) (E, error)) func(Settings, Config) (Exporter, error) {
	return func(set Settings, cfg Config) (Exporter, error) {
		c, err := typed[C](set, cfg)
		if err != nil {
			return nil, err
		}
		e, err := create(set, c)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}
