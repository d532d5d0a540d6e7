#!/usr/bin/env bash
# Lints .github/workflows with actionlint (scripts/tools.sh), with shellcheck for the run:
# scripts (installed from Debian when missing and this is root, as CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null && [[ $(id -u) -eq 0 ]]; then
  apt-get install -y --no-install-recommends shellcheck >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends shellcheck >/dev/null; }
fi
command -v shellcheck >/dev/null || { echo "lint-workflows: shellcheck is needed (apt-get install shellcheck)" >&2; exit 1; }
actionlint=$(bash scripts/tools.sh actionlint)
"$actionlint" -no-color -shellcheck "$(command -v shellcheck)"
echo "lint-workflows: $(ls .github/workflows | tr '\n' ' ')ok"
