#!/bin/sh
# The whole test suite: the unit-test binary, the store tests (test_store: the Redis back end
# on a redis-server of its own), the fuzz smoke run, the tests that need no server
# (tests/offline/*.py: the real binary and scripts, nothing started), then every integration
# and fault test (tests/integration/*.py, tests/faults/*.py) against real redis-server and the
# embedded broker. Each prints
# "N passed, N failed" last; this sums them and prints the same line.
# Usage: tests/run.sh BUILD_DIR [pattern]
BUILD=${1:-build}
PATTERN=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export LF_BIN="$ROOT/$BUILD/leadflow"
# Debian's python3 (with python3-confluent-kafka and python3-redis), not a pyenv shim.
PY=${PYTHON:-/usr/bin/python3}
total_pass=0
total_fail=0
run_one() {
    name=$1
    shift
    out=$(mktemp)
    echo "== $name"
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -n "$last" ]; then
        p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    else
        p=0
        f=1
        echo "$name: no result line (exit $rc): counted as one failure"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$name: exit $rc with no failure counted: counted as one failure"
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    rm -f "$out"
}
if [ -z "$PATTERN" ] || echo unit | grep -q "$PATTERN"; then
    run_one unit "$ROOT/$BUILD/test_unit"
fi
if [ -z "$PATTERN" ] || echo store | grep -q "$PATTERN"; then
    run_one store "$ROOT/$BUILD/test_store" # starts its own redis-server
fi
if [ -f "$ROOT/tests/fuzz/smoke.sh" ] && { [ -z "$PATTERN" ] || echo fuzz | grep -q "$PATTERN"; }; then
    run_one fuzz sh "$ROOT/tests/fuzz/smoke.sh" "$BUILD" # each harness briefly, on its corpus
fi
for t in "$ROOT"/tests/offline/test_*.py "$ROOT"/tests/integration/test_*.py \
    "$ROOT"/tests/faults/test_*.py; do
    [ -f "$t" ] || continue
    if [ -n "$PATTERN" ] && ! echo "$t" | grep -q "$PATTERN"; then continue; fi
    run_one "$(basename "$(dirname "$t")")/$(basename "$t")" "$PY" "$t"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
