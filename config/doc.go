// Package config loads Vigil's YAML: it expands ${env:NAME} and ${file:/path} references, decodes
// every component's section strictly into the config its factory provides, validates it, and
// reports every problem at once with file, line and YAML path. Secrets are never printed.
package config
