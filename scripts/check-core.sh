#!/bin/sh
# The pure core links no Kafka and no Redis client (docs/design.md). Fails when the unit-test
# binary (argument 1) or the core archive (argument 2) names a librdkafka or hiredis symbol,
# or the binary loads either library.
# Usage: scripts/check-core.sh build/test_unit build/libleadflow_core.a
set -u
bin=$1
lib=$2
pat='rd_kafka_|redis[A-Z]|freeReplyObject|sdsnew'
bad=0
syms=$(nm "$bin" 2>/dev/null | grep -E " ($pat)" | head -5)
if [ -n "$syms" ]; then
    echo "check-core: $bin links Kafka or Redis client symbols:" >&2
    echo "$syms" >&2
    bad=1
fi
und=$(nm -u "$lib" 2>/dev/null | grep -E " ($pat)" | sort -u | head -5)
if [ -n "$und" ]; then
    echo "check-core: $lib needs Kafka or Redis client symbols (src/core/ must not):" >&2
    echo "$und" >&2
    bad=1
fi
libs=$(ldd "$bin" 2>/dev/null | grep -E 'librdkafka|libhiredis')
if [ -n "$libs" ]; then
    echo "check-core: $bin loads $libs" >&2
    bad=1
fi
exit $bad
