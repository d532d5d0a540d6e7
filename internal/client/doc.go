// Package client holds the outgoing-connection settings exporters share: the gRPC and HTTP client
// blocks (endpoint, tls, headers, compression, connection tuning) with the OpenTelemetry
// Collector's key names, their validation, and the code that turns them into connections.
package client
