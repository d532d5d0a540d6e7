package componenttest

import (
	"bytes"
	"errors"
	"io"

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
