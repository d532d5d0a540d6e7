#!/bin/sh
# The dedicated system user Vigil runs as: no login shell, no password, home in its state dir.
set -e
if ! getent group vigil >/dev/null; then
  groupadd --system vigil
fi
if ! getent passwd vigil >/dev/null; then
  useradd --system --gid vigil --home-dir /var/lib/vigil --no-create-home \
    --shell /usr/sbin/nologin --comment "Vigil observability agent" vigil
fi
