// Package secret holds config values that must never be printed: tokens, passwords, API keys.
// A secret.String prints as "[redacted]" through fmt, slog, JSON and YAML; only Value reveals it.
package secret

import "log/slog"

// String is a configuration string that is redacted wherever it could be printed.
type String string

const redacted = "[redacted]"

// Value returns the secret itself, for the one place that needs it (an outgoing header, say).
func (s String) Value() string { return string(s) }

func (s String) String() string   { return redacted }
func (s String) GoString() string { return `secret.String("` + redacted + `")` }

// LogValue keeps secrets out of structured logs.
func (s String) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps secrets out of JSON, YAML and text encodings. An empty one stays empty:
// there is nothing to hide, and a printed config should not suggest a secret is set.
func (s String) MarshalText() ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte(redacted), nil
}
