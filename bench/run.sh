#!/usr/bin/env bash
# Relay benchmark: builds vigil, loadgen and sink, then runs the harness. Extra arguments go to the
# harness, e.g. `bash bench/run.sh -duration 10s -compression zstd`. Writes bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -z "${VIGIL_BIN:-}" ]]; then
  echo "bench: building vigil" >&2
  go build -o "$tmp/vigil" ./cmd/vigil
  VIGIL_BIN="$tmp/vigil"
fi
go build -o "$tmp/loadgen" ./bench/cmd/loadgen
go build -o "$tmp/sink" ./bench/cmd/sink
go build -o "$tmp/harness" ./bench/cmd/harness

"$tmp/harness" -vigil "$VIGIL_BIN" -loadgen "$tmp/loadgen" -sink "$tmp/sink" -out bench/results/latest.md "$@"
