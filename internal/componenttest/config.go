package componenttest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/component"
)

// DecodeConfig decodes YAML into cfg (which holds the defaults) strictly — unknown keys are
// errors — and then validates it, as the config loader does for one component's section. Empty
// input keeps the defaults.
func DecodeConfig(src []byte, cfg component.Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if v, ok := cfg.(component.Validator); ok {
		return v.Validate()
	}
	return nil
}

// LoadConfig decodes testdata/name into cfg (which holds the defaults) as DecodeConfig does.
// A missing file fails the test.
func LoadConfig(t testing.TB, name string, cfg component.Config) error {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return DecodeConfig(data, cfg)
}

// CheckErrors fails t unless err holds every one of wants, or, with no wants, unless err is nil.
func CheckErrors(t testing.TB, name string, err error, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, w)
		}
	}
	if len(wants) == 0 && err != nil {
		t.Errorf("%s: %v", name, err)
	}
}
