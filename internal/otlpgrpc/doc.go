// Package otlpgrpc carries OTLP over gRPC without decoding it: a codec that moves Export…Request
// bodies as raw bytes (so a relay never unmarshals what it only forwards), the OTLP method names,
// and gzip and zstd decompressors that charge what they hold to the receivers' budgets of bytes in
// flight (ChargeDecompression; the zstd reader serves OTLP/HTTP too).
package otlpgrpc
