#!/usr/bin/env bash
# Reproducible build check: builds vigil here with `make build`, and again from a copy of the tree
# at another path, without .git (as deploy/Dockerfile's build context is), by the Dockerfile's
# own build line with the version and revision passed as its build arguments; then builds the
# .deb and .rpm twice. Every pair must have the same sha256: the image, the packages and a plain
# `make build` hold the same binary.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
read -r version revision epoch < <(make -s version)

make -s build BIN="$tmp/a/vigil"
mkdir -p "$tmp/src"
# The working tree as it is (tracked and untracked files, not ignored ones), without .git.
git ls-files -z --cached --others --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
  tar --null -T - -cf - | tar -xf - -C "$tmp/src"
line=$(sed -n 's/^RUN \(make build .*\)$/\1/p' deploy/Dockerfile)
[[ $line == *"BIN=/out/vigil"* ]] || { echo "repro: deploy/Dockerfile has no 'RUN make build BIN=/out/vigil …' line" >&2; exit 1; }
mkdir -p "$tmp/b"
(cd "$tmp/src" && VERSION=$version REVISION=$revision SOURCE_DATE_EPOCH=$epoch bash -c "${line//\/out\/vigil/$tmp/b/vigil} -s")

fail=0
same() { # same WHAT A B
  local a b
  a=$(sha256sum "$2" | cut -d' ' -f1)
  b=$(sha256sum "$3" | cut -d' ' -f1)
  if [[ $a == "$b" ]]; then
    echo "repro: $1 reproducible: sha256 $a"
  else
    echo "repro: $1 differs between two builds: $a ($2) and $b ($3)" >&2
    fail=1
  fi
}
same "vigil binary" "$tmp/a/vigil" "$tmp/b/vigil"
"$tmp/b/vigil" version | grep -q "$revision" || { echo "repro: the binary does not report revision $revision" >&2; fail=1; }

for n in 1 2; do
  make -s package DIST="$tmp/dist$n" >/dev/null
done
for p in "$tmp"/dist1/*; do
  same "package $(basename "$p")" "$p" "$tmp/dist2/$(basename "$p")"
done
exit $fail
