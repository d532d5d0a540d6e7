// Package prometheus is the prometheus receiver: it scrapes targets the way Prometheus does, with
// the upstream config, discovery and scrape packages, and hands each scrape to the pipeline as one
// remote-write batch (labels after relabelling, staleness markers, `up` and the scrape series).
package prometheus
