// Package serieslimit is the "series_limit" processor: a per-pipeline cap on the number of distinct
// metric series seen within a time window. New series beyond the cap are dropped and counted;
// series already known always pass.
package serieslimit
