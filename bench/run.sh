#!/bin/sh
# `make bench` (the Makefile calls `sh bench/run.sh BUILD_DIR`): builds the two C helpers,
# runs bench/driver.py (servers, preload, the three throughput measurements, Redis memory per
# known lead and per visitor, the rate the live path sustains, latency at fractions of it),
# then bench/report.py (report.md, chart.png, the tables and issue 16's goal table on stdout),
# then bench/cluster_scale.py (issue 19: instances x one node / a Redis Cluster; skip it with
# LF_BENCH_CLUSTER=0).
# Results: bench/results/<timestamp>/. Settings: see bench/README.md (BENCH_EVENTS, ...).
# Everything started here is stopped at the end, also on failure or Ctrl-C: the driver stops
# its children, and the trap below kills whatever it listed in $WORK/pids and is still alive.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LF=$(cd "$BUILD" && pwd)/leadflow
PY=/usr/bin/python3 # Debian's python3: its packages (python3-confluent-kafka, ...) live there

[ -x "$LF" ] || { echo "bench: $LF not found (run make first)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "bench: redis-server is missing" >&2; exit 2; }
missing=""
for m in confluent_kafka:python3-confluent-kafka redis:python3-redis msgpack:python3-msgpack \
         yaml:python3-yaml; do
    $PY -c "import ${m%%:*}" 2>/dev/null || missing="$missing ${m#*:}"
done
if [ -n "$missing" ]; then
    echo "bench: missing Debian packages:$missing (apt-get install$missing)" >&2
    exit 2
fi
$PY -c "import matplotlib" 2>/dev/null ||
    echo "bench: python3-matplotlib is not installed: the report will have no chart" >&2

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/results/$STAMP"
WORK=$(mktemp -d /tmp/leadflow-bench.XXXXXX)
mkdir -p "$OUT" "$WORK/bin"

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    if [ -f "$WORK/pids" ]; then
        while read -r pid name; do
            # only our own children, and only if the pid still runs the program we started
            if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$name"; then
                kill -TERM "$pid" 2>/dev/null || true
                sleep 1
                kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$WORK/pids"
    fi
    # keep the logs next to the results, drop the big scratch files
    mkdir -p "$OUT/logs"
    for f in "$WORK"/*.err "$WORK"/*.out "$WORK"/*.log "$WORK"/gen-stats.json; do
        [ -f "$f" ] && cp "$f" "$OUT/logs/" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CFLAGS_B="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra"
PKG=$(pkg-config --cflags --libs rdkafka msgpack)
# shellcheck disable=SC2086
cc $CFLAGS_B -o "$WORK/bin/consume_only" "$ROOT/bench/consume_only.c" $PKG
# shellcheck disable=SC2086
cc $CFLAGS_B -pthread -o "$WORK/bin/latency_probe" "$ROOT/bench/latency_probe.c" $PKG

echo "bench: results in $OUT (scratch $WORK)" >&2
rc=0
$PY "$ROOT/bench/driver.py" "$LF" "$WORK" "$WORK/bin" "$OUT" || rc=$?
if [ -f "$OUT/results.json" ]; then
    $PY "$ROOT/bench/report.py" "$OUT" || rc=$?
fi
# Scale-out on a Redis Cluster (issue 19): 1, 2 and 4 instances against one redis-server and a
# 3-master cluster, and bytes per lead at 1 M and 10 M leads (bench/README.md, "Scale-out on a
# Redis Cluster"; ~15 minutes). LF_BENCH_CLUSTER=0 skips it. Its processes go to the same
# $WORK/pids as the driver's, so the trap above stops them too.
if [ "${LF_BENCH_CLUSTER:-1}" != 0 ]; then
    command -v redis-cli >/dev/null || { echo "bench: redis-cli is missing (cluster step)" >&2; exit 2; }
    echo "bench: cluster scale-out (LF_BENCH_CLUSTER=0 skips it) ..." >&2
    $PY "$ROOT/bench/cluster_scale.py" "$LF" "$OUT" "$WORK" || rc=$?
fi
exit $rc
