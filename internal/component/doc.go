// Package component is the contract every receiver, processor and exporter implements: a factory
// with a default config, a create function, Start/Shutdown, and consumers that take ownership of
// the batches handed to them. Read this package first; it is short on purpose.
package component
