// Package batchprocessor is the "batch" processor: it gathers the batches of one pipeline and
// sends them on in bigger ones, by size or after a timeout. Encoded batches are joined as bytes, so
// batching never decodes. Named batchprocessor so it does not collide with internal/batch.
package batchprocessor
