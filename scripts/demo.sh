#!/bin/sh
# `make demo`: the whole pipeline for about a minute on private, throw-away components:
# a redis-server and the embedded Kafka broker on free loopback ports, `leadflow gen`
# producing a realistic stream, `leadflow run` scoring it. Prints a live progress line,
# a few real transitions and the top ten, then stops everything it started.
# Usage: scripts/demo.sh BUILD_DIR   (env: DEMO_EVENTS, DEMO_RATE, DEMO_LEADS)
set -eu
BUILD=${1:-build}
LF="$(pwd)/$BUILD/leadflow"
EVENTS=${DEMO_EVENTS:-300000}
RATE=${DEMO_RATE:-5000}
LEADS=${DEMO_LEADS:-20000}
DIR=$(mktemp -d /tmp/leadflow-demo.XXXXXX)
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

REDIS_PORT=$(free_port)
KAFKA_PORT=$(free_port)
echo "demo: redis-server on 127.0.0.1:$REDIS_PORT, devbroker on 127.0.0.1:$KAFKA_PORT (in $DIR)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
PIDS="$PIDS $!"
"$LF" devbroker --port "$KAFKA_PORT" --partitions 8 >"$DIR/broker.out" 2>"$DIR/broker.log" &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do
    grep -q bootstrap.servers "$DIR/broker.out" 2>/dev/null && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
grep -q bootstrap.servers "$DIR/broker.out" || { echo "demo: the devbroker did not start"; cat "$DIR/broker.log"; exit 1; }
BROKERS="127.0.0.1:$KAFKA_PORT"

# The example rules, with transitions as JSON so kcat shows them readably, and the decay
# sweep on event time alone: gen replays a month of events in a minute, a backfill, where the
# wall clock would demote every cooled MQL each time leadflow catches up with gen.
sed -e 's/^\( *transitions_format:\).*/\1 json/' -e 's/^\( *idle_clock:\).*/\1 event/' \
    deploy/leadflow.yaml >"$DIR/leadflow.yaml"
"$LF" run -c "$DIR/leadflow.yaml" --brokers "$BROKERS" --redis "127.0.0.1:$REDIS_PORT" \
    --group leadflow-demo --instance demo 2>"$DIR/run.log" &
RUN_PID=$!
PIDS="$PIDS $RUN_PID"

echo "demo: streaming $EVENTS events for $LEADS leads at $RATE events/s through leadflow run"
"$LF" gen --leads "$LEADS" --events "$EVENTS" --rate "$RATE" --seed 42 --brokers "$BROKERS" \
    --topic leadflow.events --stats "$DIR/gen.json" 2>"$DIR/gen.log" &
GEN_PID=$!
PIDS="$PIDS $GEN_PID"

progress() {
    # One HMGET: all figures from the same heartbeat.
    set -- $(redis-cli -p "$REDIS_PORT" --raw HMGET lf:ops:instance:demo events_in applied \
        duplicates dead_lettered events_per_s lag transitions_out state 2>/dev/null | tr '\n' ' ')
    printf '\r  events %-9s applied %-9s dup %-6s dead %-6s  %7s ev/s  lag %-7s transitions %-7s  %s   ' \
        "${1:-0}" "${2:-0}" "${3:-0}" "${4:-0}" "${5:-0}" "${6:-0}" "${7:-0}" "${8:-}"
}
while kill -0 "$GEN_PID" 2>/dev/null; do
    progress
    sleep 1
done
wait "$GEN_PID" || { echo; echo "demo: gen failed"; cat "$DIR/gen.log"; exit 1; }
# Let leadflow catch up with everything produced.
for _ in $(seq 1 120); do
    progress
    in=$(redis-cli -p "$REDIS_PORT" HGET lf:ops:instance:demo events_in)
    [ "${in:-0}" -ge "$EVENTS" ] && break
    sleep 1
done
progress
echo
kill -0 "$RUN_PID" 2>/dev/null || { echo "demo: leadflow run stopped"; tail -20 "$DIR/run.log"; exit 1; }

echo
echo "== a few stage transitions (kcat -b $BROKERS -t leadflow.stage-transitions -C)"
kcat -b "$BROKERS" -t leadflow.stage-transitions -C -o beginning -c 200 -e -q 2>/dev/null |
    grep '"to":"mql"' | head -n 3 || true
kcat -b "$BROKERS" -t leadflow.stage-transitions -C -o beginning -c 2 -e -q 2>/dev/null || true
echo
# gen's events span January 2026 (its defaults): ranked now, their engagement has decayed to
# nothing and only fit would count; ranked at the stream's end, as of its last events.
echo "== the top ten at the end of the stream (leadflow top --at 2026-01-31T00:00:00Z)"
LEADFLOW_CONFIG="$DIR/leadflow.yaml" "$LF" top -n 10 --at 2026-01-31T00:00:00Z \
    --redis "127.0.0.1:$REDIS_PORT"
echo
echo "== stats (leadflow stats)"
LEADFLOW_CONFIG="$DIR/leadflow.yaml" "$LF" stats --redis "127.0.0.1:$REDIS_PORT" --group leadflow-demo | head -n 40
kill -TERM "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
echo
echo "demo: done; stopped redis-server, the devbroker and leadflow run."
