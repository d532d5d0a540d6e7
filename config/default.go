package config

import (
	_ "embed"

	"github.com/vigilhq/vigil/internal/component"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is how the embedded default config is named in messages.
const DefaultName = "<embedded default>"

// Default returns the embedded default config's text.
func Default() []byte { return defaultYAML }

// LoadDefault loads the embedded default config.
func LoadDefault(f component.Factories) (*Config, error) { return Load(DefaultName, defaultYAML, f) }
