package component

import (
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
