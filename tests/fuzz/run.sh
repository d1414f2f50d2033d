#!/bin/sh
# Run the libFuzzer harnesses one after the other (2 cores: never two at once).
# Usage: tests/fuzz/run.sh FUZZ_BIN_DIR SECONDS CORPUS_DIR CRASH_DIR "msgpack json url ..."
# For each harness NAME:
#   1. replay: every file of tests/fuzz/regressions/NAME/ (crashes found and fixed) once;
#   2. fuzz for SECONDS on CORPUS_DIR/NAME, which receives the new inputs, reading the seeds
#      of tests/fuzz/corpus/NAME/ and the regression inputs too (both left untouched); a
#      crash is saved in CRASH_DIR/NAME/.
# Prints one line per harness with libFuzzer's figures, the crash report when one fails,
# and last "N passed, N failed" (a harness passes when both steps do). Exit 1 on a failure.
BIN=$1
SECONDS_EACH=$2
CORPUS=$3
CRASHES=$4
TARGETS=$5
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
pass=0
fail=0

# libFuzzer flags per harness: the longest input worth trying (events over the size limit,
# timestamps over a few dozen bytes are refused at once) and the dictionary.
max_len() {
    case $1 in
    msgpack | json) echo 4096 ;;
    url) echo 1024 ;;
    time) echo 64 ;;
    config) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for h in $TARGETS; do
    exe="$BIN/fuzz_$h"
    seeds="$ROOT/tests/fuzz/corpus/$h"
    regs="$ROOT/tests/fuzz/regressions/$h"
    dict="$ROOT/tests/fuzz/$h.dict"
    if [ ! -x "$exe" ]; then
        echo "FAIL fuzz_$h: $exe is missing (build it with make fuzz-build)"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$CORPUS/$h" "$CRASHES/$h"
    opts="-max_len=$(max_len "$h") -timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
    [ -f "$dict" ] && opts="$opts -dict=$dict"

    # 1. The regression inputs, each run once.
    nreg=0
    if [ -d "$regs" ]; then
        nreg=$(find "$regs" -type f | wc -l)
    fi
    if [ "$nreg" -gt 0 ]; then
        # shellcheck disable=SC2046,SC2086  # file names are hashes, without spaces
        if ! "$exe" $opts -runs=1 $(find "$regs" -type f | sort) >"$log" 2>&1; then
            echo "FAIL fuzz_$h: a regression input crashes again"
            tail -n 60 "$log"
            fail=$((fail + 1))
            continue
        fi
    fi

    # 2. Fuzzing.
    src=""
    [ -d "$regs" ] && src="$regs"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$exe" $opts -max_total_time="$SECONDS_EACH" -artifact_prefix="$CRASHES/$h/" \
        "$CORPUS/$h" "$seeds" $src >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
    figures="${secs}s, ${runs:-?} runs (${eps:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, regressions $nreg"
    if [ "$rc" -eq 0 ]; then
        echo "ok fuzz_$h: $figures"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$h (exit $rc): $figures"
        grep -E 'ERROR|SUMMARY|invariant broken|runtime error|Test unit written' "$log" | head -n 10
        echo "--- the end of the log:"
        tail -n 60 "$log"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
