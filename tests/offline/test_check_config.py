"""`leadflow check-config` as a user runs it: the real binary ($LF_BIN, as tests/run.sh
exports it) on the example rules file, on a file with three mistakes, on a missing file, and
with usage errors. Its exit status is 0 for a valid file and 1 for an invalid or unreadable
one or a usage error (README: 1 is every command's usage status). No server is started.
Run: LF_BIN=build/leadflow python3 tests/offline/test_check_config.py"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # the runner; starts nothing
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

GOOD = os.path.join(ROOT, "deploy", "leadflow.yaml")
BAD = os.path.join(ROOT, "tests", "unit", "data", "three_mistakes.yaml")
MISSING = os.path.join(ROOT, "tests", "unit", "data", "nope.yaml")


def check_config(*args):
    p = subprocess.run([H.LF_BIN, "check-config"] + list(args), capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_valid_quiet():
    rc, out, err = check_config("-q", GOOD)
    check_eq((rc, out, err), (0, "", ""), "check-config -q deploy/leadflow.yaml: status, "
             "stdout, stderr")


def test_three_mistakes():
    rc, out, err = check_config(BAD)
    check_eq(rc, 1, "check-config on three mistakes: exit status (stderr %r)" % err)
    lines = [int(m.group(1)) for m in re.finditer(r"three_mistakes\.yaml:(\d+):\d+: ", err)]
    check_eq(lines, [5, 9, 14], "lines of the errors (stderr %r)" % err)
    check("3 problems in " in err, "the count of problems: %r" % err)
    check_eq(out, "", "no summary for an invalid file")


def test_missing_file():
    rc, out, err = check_config(MISSING)
    check_eq(rc, 1, "check-config on a missing file: exit status")
    check("cannot read the rules file" in err, "the reason: %r" % err)


def test_usage_errors():
    rc, out, err = check_config()
    check_eq(rc, 1, "check-config with no file: exit status")
    check("which file?" in err, "the message: %r" % err)
    rc, out, err = check_config("--bogus", GOOD)
    check_eq(rc, 1, "check-config --bogus: exit status")
    check("unknown option --bogus" in err, "the message: %r" % err)


if __name__ == "__main__":
    H.main([test_valid_quiet, test_three_mistakes, test_missing_file, test_usage_errors])
