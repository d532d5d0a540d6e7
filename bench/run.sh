#!/usr/bin/env bash
# The side-by-side benchmark of issue 5 (`make bench`): builds vigil, loadgen, sink and the peers
# (otelcol-core, once, into ${VIGIL_CACHE:-~/.cache/vigil}/bin; vmagent from Debian), then runs
#   1. the OTLP relay harness, vigil vs otelcol-core   → bench/results/otlp-relay.{md,svg,bench.txt}
#   2. the remote-write relay, vigil vs vmagent        → bench/results/remote-write.md
#   3. the alerting engine's benchmarks (1000 rules over 100k series, notification throughput)
#      and the SLO engine's (spans/s through span SLIs, bytes of state per SLO)
#                                                      → bench/results/alerting.bench.txt
#   4. the logs path: files → VictoriaLogs with 1, 100 and 1000 files, vigil vs the Collector's
#      filelog receiver (otelcol-filelog); syslog over TCP, vigil vs Debian's rsyslog
#                                                      → bench/results/logs.md
# Extra arguments go to the OTLP harness, e.g. `bash bench/run.sh -signals traces -rounds 1`.
# Environment: VIGIL_BIN (measure this binary instead of building one), the peers' OTELCOL_BIN,
# VMAGENT_BIN, OTELCOL_FILELOG_BIN, VICTORIALOGS_BIN, RSYSLOGD_BIN; BENCH_PARTS (comma-separated:
# otlp, rw, alerting, logs; default all four), BENCH_PEERS=0 (vigil alone), RW_ARGS (arguments
# for rwbench; default "-duration 10s -warmup 3s -rounds 2 -alerting"), LOGS_ARGS (arguments for
# logbench, e.g. "-files 1,100 -rate 50000").
set -euo pipefail
cd "$(dirname "$0")/.."

parts=",${BENCH_PARTS:-otlp,rw,alerting,logs},"
peers=${BENCH_PEERS:-1}
log() { echo "bench: $*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -z "${VIGIL_BIN:-}" ]]; then
  log "building vigil"
  # Stripped and static as the peer is built; the version names the commit in the report.
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$tmp/vigil" ./cmd/vigil
  VIGIL_BIN="$tmp/vigil"
fi

if [[ $parts == *,otlp,* ]]; then
  for p in loadgen sink harness; do go build -o "$tmp/$p" "./bench/cmd/$p"; done
  otelcol=()
  if [[ $peers != 0 ]]; then
    OTELCOL_BIN=${OTELCOL_BIN:-$(bash bench/peers/build.sh)}
    otelcol=(-otelcol "$OTELCOL_BIN")
  fi
  "$tmp/harness" -vigil "$VIGIL_BIN" "${otelcol[@]}" -loadgen "$tmp/loadgen" -sink "$tmp/sink" "$@"
fi

if [[ $parts == *,rw,* ]]; then
  go build -o "$tmp/rwbench" ./bench/cmd/rwbench
  vmagent=()
  if [[ $peers != 0 ]]; then
    VMAGENT_BIN=${VMAGENT_BIN:-$(command -v vmagent || true)}
    if [[ -z $VMAGENT_BIN ]]; then
      log "installing vmagent (Debian's victoria-metrics)"
      { apt-get install -y --no-install-recommends victoria-metrics >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends victoria-metrics >/dev/null; }; } ||
        log "could not install victoria-metrics; the remote-write relay runs vigil alone"
      VMAGENT_BIN=$(command -v vmagent || true)
    fi
    [[ -n $VMAGENT_BIN ]] && vmagent=(-vmagent "$VMAGENT_BIN")
  fi
  # shellcheck disable=SC2086 # RW_ARGS is a list of flags
  "$tmp/rwbench" -vigil "$VIGIL_BIN" "${vmagent[@]}" ${RW_ARGS:--duration 10s -warmup 3s -rounds 2 -alerting}
fi

if [[ $parts == *,alerting,* ]]; then
  log "alerting engine benchmarks"
  out=bench/results/alerting.bench.txt
  rev=$(git describe --tags --always --dirty 2>/dev/null || echo dev) # before the report is rewritten
  { echo "# $(date -u +%FT%TZ) $rev, nproc $(nproc)"
    go test ./alerting/engine -run '^$' -bench 'Evaluate1000RulesOver100kSeries|EmbeddedNotifications' -benchtime 3x -count 1
    # Appends to series the store holds already (the first bodies create them): 200 bodies.
    go test ./alerting/store -run '^$' -bench 'AppendRW' -benchtime 200x -count 3
    go test ./slo/engine -run '^$' -bench 'SpanSLI|StatePerSLO' -benchtime 2s -count 3
    go test ./alerting/engine -run '^$' -bench 'EmbeddedNotifications' -benchtime 2000x -count 3
  } | tee "$out" >&2
fi

if [[ $parts == *,logs,* ]]; then
  go build -o "$tmp/logbench" ./bench/cmd/logbench
  VICTORIALOGS_BIN=${VICTORIALOGS_BIN:-$(bash bench/peers/build.sh victoria-logs)}
  peer_args=()
  if [[ $peers != 0 ]]; then
    peer_args+=(-otelcol "${OTELCOL_FILELOG_BIN:-$(bash bench/peers/build.sh otelcol-filelog)}")
    if ! command -v rsyslogd >/dev/null; then
      log "installing rsyslog (Debian's)"
      { apt-get install -y --no-install-recommends rsyslog >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends rsyslog >/dev/null; }; } ||
        log "could not install rsyslog; the syslog run measures vigil alone"
    fi
    RSYSLOGD_BIN=${RSYSLOGD_BIN:-$(command -v rsyslogd || true)}
    [[ -n $RSYSLOGD_BIN ]] && peer_args+=(-rsyslog "$RSYSLOGD_BIN")
  fi
  # shellcheck disable=SC2086 # LOGS_ARGS is a list of flags
  "$tmp/logbench" -vigil "$VIGIL_BIN" -victorialogs "$VICTORIALOGS_BIN" "${peer_args[@]}" ${LOGS_ARGS:-}
fi
