// Package otlpgrpc carries OTLP over gRPC without decoding it: a codec that moves Export…Request
// bodies as raw bytes (so a relay never unmarshals what it only forwards), the OTLP method names,
// and a zstd compressor for gRPC built on klauspost/compress.
package otlpgrpc
