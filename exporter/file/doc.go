// Package file is the "file" exporter: it appends every batch to a file as one OTLP/JSON line
// (or a length-prefixed OTLP protobuf record), buffered, with size-based rotation.
package file
