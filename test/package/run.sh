#!/usr/bin/env bash
# Package test (`make package-test`, part of `make test`): installs dist/'s .deb with dpkg -i,
# checks the vigil user, the files and their modes, the systemd unit (systemd-analyze verify),
# runs the installed binary's `vigil validate` on the installed config as that user, starts it
# as that user and asks /readyz, then purges the package and checks that it left nothing. The
# .rpm is checked with rpm's own queries (files, scripts, dependencies). Needs root (as CI runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
DIST=${DIST:-dist}

log() { echo "package-test: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "installing a package needs root (CI runs as root); run it as root"
apt_install() {
  apt-get install -y --no-install-recommends "$@" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
command -v rpm >/dev/null || { log "installing rpm (apt), to query the .rpm"; apt_install rpm; }
command -v curl >/dev/null || apt_install curl

# The packages of this version and architecture (make package-test passes both): dist/ may
# hold others, of earlier commits or of a second architecture (the release builds two).
deb="$DIST/vigil_${PKG_VERSION:?set by make package-test}_${ARCH:?set by make package-test}.deb"
rpmarch=$ARCH
case $ARCH in amd64) rpmarch=x86_64 ;; arm64) rpmarch=aarch64 ;; esac
# shellcheck disable=SC2012 # nfpm's names: no newlines; the newest is the one just built
rpmf=$(ls -t "$DIST"/vigil-*."$rpmarch".rpm 2>/dev/null | head -1)
[[ -f $deb && -n $rpmf ]] || fail "no vigil $PKG_VERSION .deb or .rpm for $ARCH in $DIST (make package)"
if dpkg-query -W -f '${Status}' vigil 2>/dev/null | grep -q installed; then
  fail "a vigil package is installed on this machine already; this test would replace it (dpkg --purge vigil first)"
fi
getent passwd vigil >/dev/null && fail "a user vigil exists already; this test creates and removes it"

cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null
  dpkg --purge vigil >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "dpkg -i $deb"
dpkg -i "$deb" >/dev/null

# The user: a system account without a login shell, home in the state directory.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd vigil) || fail "no user vigil after install"
(( uid < 1000 )) || fail "vigil's uid $uid is not a system uid"
[[ $home == /var/lib/vigil && $shell == /usr/sbin/nologin ]] || fail "vigil's home $home, shell $shell"
[[ $(getent group vigil | cut -d: -f3) == "$gid" ]] || fail "vigil's group is not vigil"

# Files, owners and modes.
check() { # check PATH MODE OWNER:GROUP
  [[ -e $1 ]] || fail "$1 missing"
  local got
  got=$(stat -c '%a %U:%G' "$1")
  [[ $got == "$2 $3" ]] || fail "$1 is $got, want $2 $3"
}
check /usr/bin/vigil 755 root:root
check /usr/lib/systemd/system/vigil.service 644 root:root
check /etc/vigil/config.yaml 640 root:vigil
check /etc/default/vigil 640 root:vigil
check /var/lib/vigil 750 vigil:vigil
cmp -s /etc/vigil/config.yaml config/default.yaml || fail "/etc/vigil/config.yaml is not the default config"
dpkg -s vigil | grep -q '^Depends: passwd' || fail "the .deb does not depend on passwd (useradd)"

# The unit: runs as vigil, with the config installed and the hardening set.
unit=/usr/lib/systemd/system/vigil.service
for want in 'User=vigil' 'ExecStart=/usr/bin/vigil run --config /etc/vigil/config.yaml' 'StateDirectory=vigil' 'ExecReload=/bin/kill -HUP $MAINPID' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'CapabilityBoundingSet='; do
  grep -qxF "$want" "$unit" || fail "$unit lacks $want"
done
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
fi

# The installed binary, as the vigil user, with the unit's environment.
set -a
# shellcheck disable=SC1091
. /etc/default/vigil
set +a
out=$(runuser -u vigil -- env VIGIL_DATA_DIR="$VIGIL_DATA_DIR" /usr/bin/vigil validate --config /etc/vigil/config.yaml 2>&1) ||
  fail "vigil validate on the installed config: $out"
grep -q 'valid' <<<"$out" || fail "vigil validate said: $out"
/usr/bin/vigil version | grep -q '^vigil ' || fail "vigil version"

# A short run as vigil: it starts, writes its state under /var/lib/vigil, answers /readyz.
# The installed config's ports, moved to free ones so that nothing else on the machine collides.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tel=$(port) grpc=$(port) http=$(port)
cfg=/var/lib/vigil/test-config.yaml
sed -e "s/127.0.0.1:8888/127.0.0.1:$tel/g" -e "s/127.0.0.1:4317/127.0.0.1:$grpc/" -e "s/127.0.0.1:4318/127.0.0.1:$http/" /etc/vigil/config.yaml >"$cfg"
chown root:vigil "$cfg" && chmod 640 "$cfg"
# setpriv execs in place, so $! is vigil itself.
setpriv --reuid=vigil --regid=vigil --init-groups env VIGIL_DATA_DIR="$VIGIL_DATA_DIR" /usr/bin/vigil run --config "$cfg" >/tmp/vigil-package-test.log 2>&1 &
pid=$!
ready=0
for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$tel/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
[[ $(ps -o user= -p $pid 2>/dev/null | tr -d ' ') == vigil ]] || { cat /tmp/vigil-package-test.log >&2; fail "vigil is not running as user vigil"; }
kill -TERM $pid
wait $pid || true
(( ready )) || { cat /tmp/vigil-package-test.log >&2; fail "the installed vigil did not answer /readyz within 10s"; }
[[ -d /var/lib/vigil/alerting && $(stat -c %U /var/lib/vigil/alerting) == vigil ]] || fail "no state written under /var/lib/vigil as vigil"
rm -f "$cfg"

# Purge: files, state, user and group gone.
dpkg --purge vigil >/dev/null
for p in /usr/bin/vigil "$unit" /etc/vigil /var/lib/vigil; do
  [[ ! -e $p ]] || fail "$p is left after dpkg --purge"
done
getent passwd vigil >/dev/null && fail "user vigil is left after dpkg --purge"
trap - EXIT

# The .rpm, by rpm's own reading of it.
files=$(rpm -qlp "$rpmf" 2>/dev/null)
for want in /usr/bin/vigil /usr/lib/systemd/system/vigil.service /etc/vigil/config.yaml /etc/default/vigil /var/lib/vigil; do
  grep -qxF "$want" <<<"$files" || fail "$rpmf lacks $want"
done
rpm -qp --configfiles "$rpmf" 2>/dev/null | grep -qxF /etc/vigil/config.yaml || fail "$rpmf: /etc/vigil/config.yaml is not a config file"
rpm -qp --scripts "$rpmf" 2>/dev/null | grep -q 'useradd --system' || fail "$rpmf has no preinstall creating the user"
rpm -qp --requires "$rpmf" 2>/dev/null | grep -q '^shadow-utils' || fail "$rpmf does not require shadow-utils"
log "ok: $(basename "$deb") installs, validates, runs as vigil and purges cleanly; $(basename "$rpmf") holds the same files and scripts"
