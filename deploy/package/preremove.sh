#!/bin/sh
# Stops the agent before its files go (not on upgrade: dpkg passes "upgrade", rpm a count of 1).
set -e
case "$1" in
  remove | 0)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now vigil >/dev/null 2>&1 || true
    fi
    ;;
esac
