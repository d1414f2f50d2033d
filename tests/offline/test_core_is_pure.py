"""The pure core links no Kafka and no Redis client (issue 15, docs/design.md): the build runs
scripts/check-core.sh on the unit-test binary and libleadflow_core.a and fails when either
names a librdkafka or hiredis symbol. This shows the check passes on the core and that it can
fail: on the product's binary and library, which do use both clients, it must refuse.
Run: LF_BIN=build/leadflow python3 tests/offline/test_core_is_pure.py"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # the runner; starts nothing
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(H.LF_BIN))
CHECK = os.path.join(ROOT, "scripts", "check-core.sh")


def check_core(binary, lib):
    p = subprocess.run(["sh", CHECK, os.path.join(BUILD, binary), os.path.join(BUILD, lib)],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def test_unit_binary_and_core_are_pure():
    rc, err = check_core("test_unit", "libleadflow_core.a")
    check_eq(rc, 0, "check-core on test_unit and the core library (stderr %r)" % err)


def test_check_refuses_kafka_and_redis():
    rc, err = check_core("leadflow", "libleadflow.a")
    check_eq(rc, 1, "check-core on the product binary: exit status")
    for what in ("rd_kafka_", "freeReplyObject", "needs Kafka or Redis", "loads"):
        check(what in err, "the refusal names %r: %r" % (what, err[:400]))


if __name__ == "__main__":
    H.main([test_unit_binary_and_core_are_pure, test_check_refuses_kafka_and_redis])
