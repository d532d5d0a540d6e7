// Command faultsink is a sink for reliability tests: it takes OTLP traces and logs (gRPC and
// HTTP) and Prometheus remote write 1.0, records the `seq` of every span, log record or sample
// it accepts (counting duplicates) and injects faults that a control API switches at runtime.
// See README.md.
package main
