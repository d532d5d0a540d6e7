#!/usr/bin/env bash
# Builds the benchmark peers that are Go programs into ${VIGIL_CACHE:-~/.cache/vigil}/bin, once,
# and prints the path of each binary asked for on stdout (logs go to stderr). A peer is rebuilt
# only when its sources (main.go, go.mod, go.sum) change.
#   bash bench/peers/build.sh [PEER...]   PEER: otelcol (default), otelcol-filelog, victoria-logs
# otelcol is the collector service with core components (bench/peers/otelcol, the relay peer);
# otelcol-filelog the same release with contrib's filelog receiver and file_storage
# (bench/peers/otelcol-filelog, the logs peer); each is a Go module of its own, not part of
# Vigil's. victoria-logs is the Loki-compatible backend of the logs benchmark and of the e2e
# tests. vmagent and rsyslog come from Debian instead (bench/run.sh installs them).
set -euo pipefail
cd "$(dirname "$0")"

OTELCOL_VERSION=v0.165.0 # every go.opentelemetry.io/collector and contrib module in both go.mod files is at this release
VICTORIALOGS_VERSION=v1.52.1
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
mkdir -p "$cache/bin"
cache=$(cd "$cache" && pwd)

log() { echo "peers: $*" >&2; }

# collector DIR NAME: builds the collector module in DIR as $cache/bin/NAME-$OTELCOL_VERSION.
collector() {
  local dir=$1 name=$2
  grep -q "go.opentelemetry.io/collector/otelcol $OTELCOL_VERSION\$" "$dir/go.mod" ||
    { log "$dir/go.mod is not at $OTELCOL_VERSION; update OTELCOL_VERSION here or the module"; exit 1; }
  local bin="$cache/bin/$name-$OTELCOL_VERSION"
  local stamp
  stamp=$(cat "$dir/main.go" "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -d' ' -f1)
  if [[ ! -x "$bin" || "$(cat "$bin.sources" 2>/dev/null)" != "$stamp" ]]; then
    log "building $name $OTELCOL_VERSION (first run only; takes minutes)"
    local start=$SECONDS
    # -mod=mod: a fresh machine fetches the modules go.sum pins from the module proxy. GOWORK=off:
    # no workspace may pull Vigil's module in. Static, stripped, trimmed, as the release builds are.
    (cd "$dir" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 \
      go build -trimpath -ldflags '-s -w' -o "$bin.tmp" .)
    mv "$bin.tmp" "$bin"
    echo "$stamp" > "$bin.sources"
    log "built $name in $((SECONDS - start))s: $bin"
  fi
  echo "$bin"
}

victorialogs() {
  local bin="$cache/bin/victoria-logs-$VICTORIALOGS_VERSION"
  if [[ ! -x "$bin" ]]; then
    log "building victoria-logs $VICTORIALOGS_VERSION (first run only; takes minutes)"
    local start=$SECONDS gobin="$cache/bin-vl"
    mkdir -p "$gobin"
    # Outside the repository, so that its go.mod plays no part.
    (cd "$cache" && GOBIN="$gobin" go install \
      "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION")
    mv "$gobin/victoria-logs" "$bin"
    log "built victoria-logs in $((SECONDS - start))s: $bin"
  fi
  echo "$bin"
}

[[ $# -gt 0 ]] || set -- otelcol
for peer in "$@"; do
  case $peer in
    otelcol) collector otelcol otelcol-core ;;
    otelcol-filelog) collector otelcol-filelog otelcol-filelog ;;
    victoria-logs) victorialogs ;;
    *) log "unknown peer $peer (otelcol, otelcol-filelog, victoria-logs)"; exit 2 ;;
  esac
done
