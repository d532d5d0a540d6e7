#!/bin/sh
# Prints the package version for a build version: packages need one that starts with a digit.
#   v1.2.0 → 1.2.0   v1.2.0-3-gabc1234 → 1.2.0+3.gabc1234   abc1234-dirty (untagged) → 0.0.0+git.abc1234.dirty
v=${1#v}
case $v in
  [0-9]*.[0-9]*) echo "$v" | sed 's/-/+/; s/-/./g' ;;
  *) echo "0.0.0+git.$v" | tr - . ;;
esac
