"""`bench/report.py`'s "What this machine allows" section: the floors it computes from a run's
figures, and its verdicts either side of the machine's cores. The figures are those of a real
1 M-event `make bench` run on the 2-core VM (results/20261130T042842Z), cut to what the
section reads. Pure Python: no servers.
Run: python3 tests/offline/test_bench_report.py"""
import copy
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # the runner; starts nothing
import lfharness as H  # noqa: E402
from lfharness import check, check_close  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_report",
                                               os.path.join(ROOT, "bench", "report.py"))
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

RUN = {
    "config": {"cores": 2},
    "phases": {
        "consume_only": {"eps": 635791.3, "resources": {
            "cpu_us_per_event": {"consume_only": 2.7, "devbroker": 0.08}}},
        "python": {"eps": 8761.6},
        "leadflow": {"events": 1000000, "eps": 49367.7, "workers": 1, "resources": {
            "cpu_us_per_event": {"leadflow": 16.07, "redis-server": 11.7, "devbroker": 0.29}},
            "redis_commandstats": {"restore": {"calls": 518741, "usec": 1381443},
                                   "zadd": {"calls": 35115, "usec": 4398681},
                                   "hget": {"calls": 533440, "usec": 682803}}},
        "leadflow_workers": {"events": 1000000, "eps": 61894.1, "workers": 2, "resources": {
            "cpu_us_per_event": {"leadflow": 15.28, "redis-server": 10.96, "devbroker": 0.26}}},
    },
    "memory": {
        "lead_keys": 304099,
        "samples": {"lf:lead:*": {"avg_bytes": 608.5, "avg_fields": 25.9}},
        "zsets": {"lf:top": {"members": 304099, "bytes": 35927024, "bytes_per_member": 118.1},
                  "lf:stage:lead": {"members": 214331, "bytes": 22104424},
                  "lf:stage:visitor": {"members": 78254, "bytes": 10131056},
                  "lf:stage:mql": {"members": 9015, "bytes": 972984},
                  "lf:stage:won": {"members": 0, "bytes": 0}},
    },
}


def rows(r):
    """goal -> (floor text, verdict)"""
    lines = report.goal_bounds(r)
    check(lines and lines[0] == "## What this machine allows", "section heading: %r" % lines[:1])
    out = {}
    for line in lines:
        if line.startswith("| ") and not line.startswith(("| goal", "| ---")):
            goal, floor, verdict = [c.strip() for c in line.strip("|").split(" | ")]
            out[goal.split(":")[0]] = (floor, verdict)
    return out


def number_after(text, prefix):
    i = text.index(prefix) + len(prefix)
    j = i
    while j < len(text) and (text[j].isdigit() or text[j] in ".,"):
        j += 1
    return float(text[i:j].replace(",", "").rstrip("."))


def test_the_real_run_is_out_of_reach_on_two_cores():
    r = rows(RUN)
    check(set(r) == {"leadflow ≥ 0.80 × consume-only", "leadflow ≥ 10 × Python",
                     "≤ 450 bytes of Redis memory per lead"}, "rows: %s" % sorted(r))
    floor, verdict = r["leadflow ≥ 0.80 × consume-only"]
    # 0.8 * 635,791 events/s * 2.78 us = 1.41 cores; per lead write (1,381,443 + 4,398,681) us
    # / 518,741 = 11.1 us, for 304,099 of every 1 M events at that rate: 1.72 cores.
    check_close(number_after(floor, "consuming and decoding alone at that rate: "), 1.41,
                "input side cores", rel=0.01)
    check_close(number_after(floor, "in the same time: "), 1.72, "Redis cores", rel=0.01)
    check_close(number_after(floor, "Together "), 3.14, "cores needed", rel=0.01)
    check(verdict == "out of reach on this machine", "verdict %r" % verdict)
    floor, verdict = r["leadflow ≥ 10 × Python"]
    check("--workers 2" in floor, "the 10x floor uses the --workers run: %r" % floor)
    # 2 cores / (15.28 + 10.96 + 0.26) us = 75,472 events/s = 8.6x of 8,761.6
    check_close(number_after(floor, "all the time allow "), 75472, "events/s allowed", rel=0.001)
    check(verdict == "needs less CPU per event", "verdict %r" % verdict)
    floor, verdict = r["≤ 450 bytes of Redis memory per lead"]
    # stage sets weighted by members: 33,208,464 bytes / 301,600 members = 110.1
    check(floor.startswith("the two sorted-set entries every lead has (`lf:top`, one "
                           "`lf:stage:*`) take 118 + 110 = 228 bytes here, leaving 222"),
          "memory floor: %r" % floor)


def test_verdicts_follow_the_figures():
    r = copy.deepcopy(RUN)
    # A machine with many cores: the same costs fit.
    r["config"]["cores"] = 8
    got = rows(r)
    check(got["leadflow ≥ 0.80 × consume-only"][1] == "not excluded",
          "8 cores: %r" % (got["leadflow ≥ 0.80 × consume-only"],))
    check(got["leadflow ≥ 10 × Python"][1] == "not excluded",
          "8 cores: %r" % (got["leadflow ≥ 10 × Python"],))
    # Without a --workers run the single process's figures are used.
    r = copy.deepcopy(RUN)
    del r["phases"]["leadflow_workers"]
    floor, _ = rows(r)["leadflow ≥ 10 × Python"]
    check("--workers" not in floor and "28.1 µs" in floor, "single-process floor: %r" % floor)
    # No RESTORE calls (a server that refused it): no throughput floor is claimed.
    r = copy.deepcopy(RUN)
    del r["phases"]["leadflow"]["redis_commandstats"]["restore"]
    check("leadflow ≥ 0.80 × consume-only" not in rows(r), "no floor without RESTORE figures")
    # Nothing to compute from: no section.
    check(report.goal_bounds({"config": {}, "phases": {}}) == [], "empty results: no section")


if __name__ == "__main__":
    H.main([test_the_real_run_is_out_of_reach_on_two_cores, test_verdicts_follow_the_figures])
