#!/bin/sh
# A/B of two leadflow builds on one preloaded stream, alternating A B A B (farm-bench):
#   sh bench/ab.sh BUILD_A BUILD_B [RUNS]        e.g. sh bench/ab.sh build build-old 5
# Starts redis-server and `leadflow devbroker` (from BUILD_B) on free ports, preloads
# AB_EVENTS events (default 200000, AB_LEADS leads) with `leadflow gen`, then times
# `leadflow run --exit-idle-ms 1000` of each build from the first offset to caught up, each
# run on an emptied Redis and a consumer group of its own. farm-bench prints min/median/max
# of wall and CPU seconds per build and the paired A/B ratio; the CPU is leadflow's own
# (Redis's is not in it). Both builds must read the same rules file: deploy/leadflow.yaml.
set -eu
A=$(cd "$1" && pwd)/leadflow
B=$(cd "$2" && pwd)/leadflow
RUNS=${3:-5}
EVENTS=${AB_EVENTS:-200000}
LEADS=${AB_LEADS:-50000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/leadflow-ab.XXXXXX)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
cleanup() {
    [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis.log" >/dev/null
"$B" devbroker --port 0 --partitions 8 >"$WORK/broker.out" 2>"$WORK/broker.err" &
BPID=$!
for _ in $(seq 100); do grep -q bootstrap.servers= "$WORK/broker.out" && break; sleep 0.1; done
BROKERS=$(sed -n 's/^bootstrap.servers=//p' "$WORK/broker.out")
[ -n "$BROKERS" ] || { echo "ab: devbroker did not start" >&2; exit 2; }
"$B" gen --leads "$LEADS" --events "$EVENTS" --brokers "$BROKERS" --quiet
# deploy/leadflow.yaml on event time (a preloaded stream from 2026-01), dedup over gen's span.
sed -e 's/^  idle_clock: wall.*/  idle_clock: event/' -e 's/^  dedup_window: .*/  dedup_window: 30d/' \
    "$ROOT/deploy/leadflow.yaml" >"$WORK/rules.yaml"
for x in A B; do # one run: an empty Redis, a consumer group of its own, run until idle
    eval "bin=\$$x"
    cat >"$WORK/run-$x.sh" <<RUN
redis-cli -p $RPORT flushall >/dev/null || exit 2
exec $bin run -c $WORK/rules.yaml --brokers $BROKERS --redis 127.0.0.1:$RPORT \\
    --group ab-\$\$ --exit-idle-ms 1000 >>$WORK/run-$x.log 2>&1
RUN
done
echo "ab: $EVENTS events preloaded; A=$A B=$B" >&2
farm-bench -n "$RUNS" --timeout 3000 --vs "sh $WORK/run-B.sh" -- sh "$WORK/run-A.sh"
