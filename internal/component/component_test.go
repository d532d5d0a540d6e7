package component

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
)

func TestParseID(t *testing.T) {
	f := func(in string, want ID, wantErr string) {
		t.Helper()
		got, err := ParseID(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseID(%q) error = %v, want %q", in, err, wantErr)
			}
			return
		}
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseID(%q) = %v, %v", in, got, err)
		}
	}
	f("otlp", ID{Type: "otlp"}, "")
	f("otlp/jaeger-1", ID{Type: "otlp", Name: "jaeger-1"}, "")
	f("memory_limiter", ID{Type: "memory_limiter"}, "")
	f("", ID{}, "the type must start with a letter")
	f("1otlp", ID{}, "the type must start with a letter")
	f("otlp/", ID{}, "name after / must be non-empty")
	f("otlp/a/b", ID{}, "without /")
}

func TestMakeFactoriesRejectsDuplicatesAndGaps(t *testing.T) {
	rf := ReceiverFactory{Type: "r", Signals: []batch.Signal{batch.Traces},
		NewConfig: func() Config { return nil },
		Create:    func(Settings, Config, map[batch.Signal]Consumer) (Component, error) { return nil, nil }}
	if _, err := MakeFactories([]ReceiverFactory{rf, rf}, nil, nil); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Errorf("duplicate: %v", err)
	}
	broken := rf
	broken.Create = nil
	if _, err := MakeFactories([]ReceiverFactory{broken}, nil, nil); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("incomplete: %v", err)
	}
	f, err := MakeFactories([]ReceiverFactory{rf}, nil, nil)
	if err != nil || f.Receivers["r"].Type != "r" {
		t.Errorf("valid: %v", err)
	}
}

type myConfig struct{ N int }

type myExporter struct{ ConsumerFunc }

func (*myExporter) Start(context.Context, Host) error { return nil }
func (*myExporter) Shutdown(context.Context) error    { return nil }

func TestCreateAdaptersCheckTheConfigType(t *testing.T) {
	create := CreateExporter(func(_ Settings, c *myConfig) (*myExporter, error) {
		if c.N < 0 {
			return nil, errors.New("negative")
		}
		return &myExporter{}, nil
	})
	set := NopSettings(KindExporter, ID{Type: "mine"})
	if e, err := create(set, &myConfig{N: 1}); err != nil || e == nil {
		t.Fatalf("create = %v, %v", e, err)
	}
	if _, err := create(set, &struct{}{}); err == nil || !strings.Contains(err.Error(), "want *component.myConfig") {
		t.Errorf("wrong config type: %v", err)
	}
	// A failed create returns a nil interface, not an interface holding a nil pointer.
	if e, err := create(set, &myConfig{N: -1}); err == nil || e != nil {
		t.Errorf("failed create = %#v, %v; want a nil Exporter", e, err)
	}
}
