package component

import (
	"context"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/batch"
)

// NopHost is a Host for tests: it records nothing and fails nothing.
type NopHost struct{}

// ReportFatal ignores err.
func (NopHost) ReportFatal(error) {}

type nopCounters struct{}

func (nopCounters) Add(Outcome, batch.Signal, int) {}

// NopSettings returns Settings for tests: a discarding logger, counters that count nothing and a
// fresh registry.
func NopSettings(kind Kind, id ID) Settings {
	return Settings{
		ID:           id,
		Kind:         kind,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Counters:     nopCounters{},
		Registerer:   prometheus.NewRegistry(),
		ReportHealth: func(error) {},
	}
}

// Discard is a consumer that accepts and forgets everything.
var Discard Consumer = ConsumerFunc(func(context.Context, *batch.Batch) error { return nil })
