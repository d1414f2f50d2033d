"""`leadflow run --workers N`: N worker processes, each its own member of the consumer group.

- Two workers over a preloaded stream end in the same Redis state, transitions and counters
  as one clean single-process run; a SIGTERM to leadflow stops both cleanly (exit 0).
- A worker killed with SIGKILL in the middle of the stream stops the other one, and leadflow
  exits with the dead worker's status (137), leaving no process behind; a restarted
  single-process run then finishes the input, and nothing is lost or counted twice.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

EVENTS, PARTITIONS = 30000, 8


def workers_of(proc):
    """The pids of a leadflow process's children."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[1]) == proc.pid:
            out.append(int(d))
    return sorted(out)


def instance_partitions(env, name):
    parts = env.r.hget("lf:ops:instance:" + name, "partitions") or ""
    ids = parts.split(":", 1)[1] if ":" in parts else ""
    return [int(x) for x in ids.split(",") if x]


def setup(name, events, produce=True):
    """Servers, rules and the reference run; with `produce`, the input too (returns its gen
    stats), else the gen arguments to produce it with."""
    args = F.gen_args(events, events // 10)
    ref = F.reference(args, PARTITIONS)
    env = F.new_env(name)
    F.start_redis(env)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env, batch_max_events=1000)
    if not produce:
        return env, ref, args
    st, _ = F.generate(env, args)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    return env, ref, st


def test_two_workers_equal_one_run():
    env, ref, st = setup("workers", EVENTS)
    run = F.start_run(env, "wk", extra=["--workers", "2"])
    F.wait_until(lambda: len(workers_of(run)) == 2, 10, "two worker processes")

    def both_hold_partitions():
        a, b = instance_partitions(env, "wk-1"), instance_partitions(env, "wk-2")
        return a and b and sorted(a + b) == list(range(PARTITIONS))
    F.wait_until(both_hold_partitions, 60, "wk-1 and wk-2 sharing the partitions")
    F.wait_all_consumed(env, st["events"], [run])
    F.settle(env, [run])
    kids = workers_of(run)
    F.check_eq(run.stop(timeout=30), 0, "leadflow --workers 2 exit status after SIGTERM")
    for pid in kids:
        F.check(not os.path.exists("/proc/%d" % pid) or
                open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z",
                "worker %d still running after leadflow exited" % pid)
    text = run.log_text()
    for w in ("w1", "w2"):
        F.check("leadflow[%s] info: shutting down" % w in text, "worker %s shut down cleanly" % w)
    F.compare(F.snapshot(env), ref, st)


def test_a_killed_worker_stops_the_others():
    env, ref, args = setup("workerkill", EVENTS, produce=False)
    run = F.start_run(env, "wk", extra=["--workers", "2"])
    F.wait_until(lambda: instance_partitions(env, "wk-1") and instance_partitions(env, "wk-2"),
                 60, "both workers holding partitions")
    kids = workers_of(run)
    F.check_eq(len(kids), 2, "worker processes")
    # The input arrives from now on, over ~5 s: preloaded, two fast workers were sometimes
    # through all of it before the test's poll saw a tenth consumed.
    gen, stats_path = F.generate(env, args, rate=EVENTS // 5, wait=False)
    F.wait_until(lambda: F.consumed(env) > EVENTS // 10, 120, "a tenth of the input consumed",
                 interval=0.01)
    # Writes held for 3 s from here: the kill lands while the input is still arriving (and
    # likely in a write).
    env.r.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    os.kill(kids[0], signal.SIGKILL)
    F.log("worker 1 killed at consumed %d of %d" % (F.consumed(env), EVENTS))
    try:
        rc = run.p.wait(30)
    except Exception:
        raise F.TestFailure("leadflow did not exit within 30 s of a worker's SIGKILL")
    F.check_eq(rc, 128 + signal.SIGKILL, "leadflow's exit status (the killed worker's)")
    F.check("exited with status 137: stopping the other workers" in run.log_text(),
            "the failure is logged")
    F.wait_until(lambda: not os.path.exists("/proc/%d" % kids[1]), 10, "the other worker gone",
                 interval=0.01)
    F.check(F.consumed(env) < EVENTS, "the kill came before the end of the input")
    st = F.finish_gen(env, gen, stats_path)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    again = F.start_run(env, "single")
    F.final_check(env, ref, st, [again])


if __name__ == "__main__":
    F.main([test_two_workers_equal_one_run, test_a_killed_worker_stops_the_others])
