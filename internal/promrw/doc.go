// Package promrw reads and writes Prometheus remote-write 1.0 and 2.0 request bodies in place, so
// that a remote write → remote write relay can count, validate, shard and re-batch series as byte
// ranges of the request it received, without building Go structs per series or sample.
package promrw
