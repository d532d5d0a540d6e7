// Package otlp is the OTLP receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) for traces,
// metrics and logs. Protobuf requests are passed on as the bytes received, validated by a scan
// but never decoded; JSON requests are decoded into pdata.
package otlp
