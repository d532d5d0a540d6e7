#!/usr/bin/env bash
# Builds the benchmark peers that are Go programs into ${VIGIL_CACHE:-~/.cache/vigil}/bin, once,
# and prints the path of each binary on stdout (logs go to stderr). A peer is rebuilt only when
# its sources (main.go, go.mod, go.sum) change. Today: otelcol-core, from the module in
# bench/peers/otelcol (its own go.mod, not part of Vigil's module). vmagent comes from Debian's
# victoria-metrics package instead (bench/run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")"

OTELCOL_VERSION=v0.165.0 # every go.opentelemetry.io/collector module in otelcol/go.mod is at this release
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
mkdir -p "$cache/bin"
cache=$(cd "$cache" && pwd)

log() { echo "peers: $*" >&2; }

grep -q "go.opentelemetry.io/collector/otelcol $OTELCOL_VERSION\$" otelcol/go.mod ||
  { log "otelcol/go.mod is not at $OTELCOL_VERSION; update OTELCOL_VERSION here or the module"; exit 1; }

bin="$cache/bin/otelcol-core-$OTELCOL_VERSION"
stamp=$(cat otelcol/main.go otelcol/go.mod otelcol/go.sum | sha256sum | cut -d' ' -f1)
if [[ ! -x "$bin" || "$(cat "$bin.sources" 2>/dev/null)" != "$stamp" ]]; then
  log "building otelcol-core $OTELCOL_VERSION (first run only; takes minutes)"
  start=$SECONDS
  # -mod=mod: a fresh machine fetches the modules go.sum pins from the module proxy. GOWORK=off:
  # no workspace may pull Vigil's module in. Static, stripped, trimmed, as the release builds are.
  (cd otelcol && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 \
    go build -trimpath -ldflags '-s -w' -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
  echo "$stamp" > "$bin.sources"
  log "built otelcol-core in $((SECONDS - start))s: $bin"
fi
echo "$bin"
