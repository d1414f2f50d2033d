#!/bin/sh
# Functions longer than N lines (default 80) in the given C files (default src/*/*.c), longest
# first: "lines file:line name". The code's style puts a function's braces in column 0.
# Usage: scripts/long-functions.sh [-n N] [file.c...]
n=80
if [ "${1:-}" = "-n" ]; then
    n=$2
    shift 2
fi
[ $# -eq 0 ] && set -- src/*/*.c
awk -v max="$n" '
FNR == 1 { start = 0 }
/^[A-Za-z_].*\(/ && !/;[ \t]*$/ { sig = $0; sigline = FNR }
/^\{/ { start = FNR; name = sig; at = sigline }
/^\}/ && start {
    len = FNR - start + 1
    if (len > max) {
        sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
        printf "%d %s:%d %s\n", len, FILENAME, at, name
    }
    start = 0
}' "$@" | sort -rn
