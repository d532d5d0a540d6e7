#!/bin/sh
# dpkg --purge also removes the state directory and the user; a plain remove keeps them, so
# that a reinstall finds its checkpoints, queues and alert state.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = "purge" ]; then
  rm -rf /var/lib/vigil /etc/vigil
  if getent passwd vigil >/dev/null; then userdel vigil >/dev/null 2>&1 || true; fi
  if getent group vigil >/dev/null; then groupdel vigil >/dev/null 2>&1 || true; fi
fi
