#!/bin/sh
# The fuzz part of `make test` (tests/run.sh calls it): builds the libFuzzer harnesses, replays
# every regression input, then runs each harness for FUZZ_SMOKE_SECONDS (default 8) on its
# seed corpus. New inputs go to a temporary directory, so the repository is never written;
# crash inputs are kept in BUILD_DIR/fuzz/crashes/NAME/. Last line "N passed, N failed".
# Without clang and libFuzzer this fails loudly: `make deps` installs them.
# Usage: tests/fuzz/smoke.sh BUILD_DIR
BUILD=${1:-build}
SECS=${FUZZ_SMOKE_SECONDS:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
case $BUILD in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
mkdir -p "$BDIR/fuzz/crashes"

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC is not installed: the fuzz harnesses need clang with libFuzzer" \
        "(run make deps: it installs clang and libclang-rt-14-dev)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! make --no-print-directory fuzz-build BUILD="$BUILD" >"$BDIR/fuzz/build.log" 2>&1; then
    tail -n 30 "$BDIR/fuzz/build.log"
    echo "fuzz: building the harnesses failed (full log: $BDIR/fuzz/build.log); if libFuzzer" \
        "is what is missing, run make deps (it installs libclang-rt-14-dev)"
    echo "0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/leadflow-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
sh "$ROOT/tests/fuzz/run.sh" "$BDIR/fuzz" "$SECS" "$work" "$BDIR/fuzz/crashes" \
    "msgpack json url time config"
