// Package batch is the unit of data that flows through a pipeline: one signal's items, held either
// as encoded OTLP (the request bytes as received) or as decoded pdata, converted lazily and at most
// once, so that a relay whose processors never look inside forwards bytes without decoding them.
package batch
