#!/usr/bin/env bash
# Builds the release and lint tools Vigil's make targets use into ${VIGIL_CACHE:-~/.cache/vigil}/bin,
# once per version, from the Go module proxy (never into this repository's go.mod), and prints
# the path of each binary asked for on stdout (logs go to stderr).
#   bash scripts/tools.sh TOOL...   TOOL: nfpm (packages), actionlint (workflow lint), staticcheck
#   (Go lint; the same version as .github/workflows/ci.yaml)
set -euo pipefail

NFPM_VERSION=v2.48.0
ACTIONLINT_VERSION=v1.7.12
STATICCHECK_VERSION=v0.8.2
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
mkdir -p "$cache/bin"
cache=$(cd "$cache" && pwd)

log() { echo "tools: $*" >&2; }

# tool NAME PACKAGE VERSION: go install PACKAGE@VERSION as $cache/bin/NAME-VERSION.
tool() {
  local name=$1 pkg=$2 version=$3
  local bin="$cache/bin/$name-$version"
  if [[ ! -x "$bin" ]]; then
    log "building $name $version (first run only)"
    local start=$SECONDS gobin="$cache/bin-$name"
    mkdir -p "$gobin"
    # Outside the repository, so that its go.mod plays no part.
    (cd "$cache" && GOWORK=off GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath "$pkg@$version")
    mv "$gobin/$name" "$bin"
    log "built $name in $((SECONDS - start))s: $bin"
  fi
  echo "$bin"
}

for t in "$@"; do
  case $t in
    nfpm) tool nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm "$NFPM_VERSION" ;;
    actionlint) tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" ;;
    staticcheck) tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION" ;;
    *) log "unknown tool $t (nfpm, actionlint, staticcheck)"; exit 2 ;;
  esac
done
