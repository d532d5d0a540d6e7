#!/usr/bin/env bash
# End-to-end tests: makes sure telemetrygen and Jaeger v2 are built (into $VIGIL_CACHE/bin, once),
# builds vigil and the faultsink (test/e2e/faultsink), and runs the tests in test/e2e against
# them. Works from any directory.
# Extra arguments go to `go test`, e.g. `bash test/e2e/run.sh -run TestJaeger`.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

TELEMETRYGEN_VERSION=v0.161.0
JAEGER_VERSION=v1.76.0
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
mkdir -p "$cache/bin"
cache=$(cd "$cache" && pwd) # absolute: the builds below run in other directories

log() { echo "e2e: $*" >&2; }

# timed NAME CMD...: runs CMD, logging how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  log "building $name (first run only; may take minutes)"
  "$@"
  log "built $name in $((SECONDS - start))s"
}

build_telemetrygen() {
  local gobin="$cache/bin-tg"
  mkdir -p "$gobin"
  # Outside the repository, so that its go.mod plays no part.
  (cd "$cache" && GOBIN="$gobin" go install \
    "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$TELEMETRYGEN_VERSION")
  mv "$gobin/telemetrygen" "$cache/bin/telemetrygen-$TELEMETRYGEN_VERSION"
}

build_jaeger() {
  # `go install …/cmd/jaeger@version` is refused (the module has replace directives), so Jaeger
  # is built in a throwaway module of its own, never in this repository's go.mod.
  local src="$cache/src/jaeger"
  mkdir -p "$src"
  (
    cd "$src"
    export GOFLAGS="${GOFLAGS:-} -mod=mod"
    [[ -f go.mod ]] || go mod init jaegerbuild
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
    go build -o "$cache/bin/jaeger-$JAEGER_VERSION" github.com/jaegertracing/jaeger/cmd/jaeger
  )
}

# promtool of the Prometheus release whose packages Vigil builds with (go.mod), for the rule
# unit tests that use keys newer than Debian's promtool: native histograms, start_timestamp,
# query_offset.
PROMETHEUS_MODULE_VERSION=$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
build_promtool() {
  local gobin="$cache/bin-promtool"
  mkdir -p "$gobin"
  (cd "$cache" && GOBIN="$gobin" go install \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
  mv "$gobin/promtool" "$cache/bin/promtool-$PROMETHEUS_MODULE_VERSION"
}

TELEMETRYGEN_BIN="$cache/bin/telemetrygen-$TELEMETRYGEN_VERSION"
JAEGER_BIN="$cache/bin/jaeger-$JAEGER_VERSION"
PROMTOOL_MODULE_BIN="$cache/bin/promtool-$PROMETHEUS_MODULE_VERSION"
[[ -x "$TELEMETRYGEN_BIN" ]] || timed "telemetrygen $TELEMETRYGEN_VERSION" build_telemetrygen
[[ -x "$JAEGER_BIN" ]] || timed "jaeger $JAEGER_VERSION" build_jaeger
[[ -x "$PROMTOOL_MODULE_BIN" ]] || timed "promtool $PROMETHEUS_MODULE_VERSION" build_promtool
# The Loki push API's implementation the logs tests ship to and query back with LogsQL; built
# by the benchmark's peer script, which the logs benchmark shares (one version, one cache).
VICTORIALOGS_BIN=$(bash bench/peers/build.sh victoria-logs)

# Prometheus and VictoriaMetrics (the Prometheus-path tests read data back from them) come from
# Debian. As CI runs, as root; apt-get update only when the install fails without it.
apt_install() {
  apt-get install -y --no-install-recommends "$@" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
need_apt() { # need_apt COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  if [[ $(id -u) -eq 0 ]]; then
    timed "$2 (apt)" apt_install "$2"
  else
    log "$1 is not on PATH and this is not root: install it (apt-get install $2), or the tests that use it fail"
  fi
}
need_apt prometheus prometheus
need_apt victoria-metrics victoria-metrics
need_apt prometheus-alertmanager prometheus-alertmanager
need_apt logger bsdutils # util-linux logger: an independent syslog client
need_apt openssl openssl # its s_client: an independent TLS syslog client, and the certificates
need_apt python3 python3 # its http.server is the plain static web server a scrape test reads
PROMETHEUS_BIN=$(command -v prometheus || true)
PROMTOOL_BIN=$(command -v promtool || true) # Debian's prometheus package ships it
PYTHON3_BIN=$(command -v python3 || true)
ALERTMANAGER_BIN=$(command -v prometheus-alertmanager || true)
AMTOOL_BIN=$(command -v amtool || true) # shipped with prometheus-alertmanager
VICTORIAMETRICS_BIN=$(command -v victoria-metrics || true)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "building vigil and the faultsink"
go build -o "$tmp/vigil" ./cmd/vigil
go build -o "$tmp/faultsink" ./test/e2e/faultsink

export VIGIL_BIN="$tmp/vigil" FAULTSINK_BIN="$tmp/faultsink" TELEMETRYGEN_BIN JAEGER_BIN PROMETHEUS_BIN PROMTOOL_BIN PROMTOOL_MODULE_BIN VICTORIAMETRICS_BIN PYTHON3_BIN ALERTMANAGER_BIN AMTOOL_BIN VICTORIALOGS_BIN
cd "$repo"
go test -tags e2e -count=1 -v -timeout 15m ./test/e2e/... "$@"
