"""Broker faults (issue 4) through the devbroker's control port, while leadflow consumes the
generated stream: the broker taken down for ~5 s and brought back, request errors on
Produce (leadflow's transitions and dead letters), Fetch and OffsetCommit, and added
latency. leadflow must recover by itself every time, and the final state must equal one
clean run.

The input is written by `leadflow gen --out` and produced by this test in chunks, so that
no producer of the test is in flight while a fault is injected (the Produce errors hit
leadflow's producer, and the mock cannot duplicate the input). After each chunk a fault is
injected while leadflow is working through it; the test then waits (up to 90 s) until
everything produced so far is consumed.

Default: 60,000 events, 8 partitions, 8 faults. LF_SOAK=1: 200,000 events, 32 partitions,
the fault list twice.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

EVENTS = int(os.environ.get("LF_EVENTS", F.soak(60000, 200000)))
LEADS = EVENTS // 10
PARTITIONS = F.soak(8, 32)

FAULTS = [
    ("broker down 5 s", ["broker-down 1"], 5.0, ["broker-up 1"]),
    ("Produce NOT_LEADER_FOR_PARTITION x5",
     ["request-errors Produce NOT_LEADER_FOR_PARTITION 5"], 4.0,
     ["clear-request-errors Produce"]),
    ("Fetch REQUEST_TIMED_OUT x5", ["request-errors Fetch REQUEST_TIMED_OUT 5"], 3.0,
     ["clear-request-errors Fetch"]),
    ("OffsetCommit REQUEST_TIMED_OUT x3", ["request-errors OffsetCommit REQUEST_TIMED_OUT 3"],
     3.0, ["clear-request-errors OffsetCommit"]),
    ("Produce REQUEST_TIMED_OUT x3", ["request-errors Produce REQUEST_TIMED_OUT 3"], 4.0,
     ["clear-request-errors Produce"]),
    ("Fetch NOT_LEADER_FOR_PARTITION x5",
     ["request-errors Fetch NOT_LEADER_FOR_PARTITION 5"], 3.0, ["clear-request-errors Fetch"]),
    ("broker rtt 300 ms for 4 s", ["rtt 1 300"], 4.0, ["rtt 1 0"]),
    ("broker down 3 s during Produce errors",
     ["request-errors Produce NOT_LEADER_FOR_PARTITION 3", "broker-down 1"], 3.0,
     ["broker-up 1"]),
]


def read_records(path):
    """`leadflow gen --out` records: (key, value) pairs."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    i = 0
    while i < len(data):
        (kl,) = struct.unpack_from(">I", data, i)
        i += 4
        key = data[i:i + kl]
        i += kl
        (vl,) = struct.unpack_from(">I", data, i)
        i += 4
        out.append((key, data[i:i + vl]))
        i += vl
    return out


def produce_chunk(env, records):
    p = env.producer(**{"linger.ms": 100})
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)

    for k, v in records:
        while True:
            try:
                p.produce(F.EVENTS_TOPIC, key=k, value=v, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    F.check(left == 0 and not errors, "produce: %d undelivered, errors %s" % (left, errors[:3]))


def test_broker_faults():
    args = F.gen_args(EVENTS, LEADS)
    ref = F.reference(args, PARTITIONS)
    env = F.new_env("broker")
    F.start_redis(env)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env)
    out = env.path("events.bin")
    stats_path = env.path("gen-stats.json")
    g = env._proc("gen", [F.LF_BIN, "gen"] + args + ["--out", out, "--stats", stats_path,
                                                     "--quiet"])
    F.check_eq(g.p.wait(300), 0, "leadflow gen --out exit status")
    recs = read_records(out)
    st = F.json.load(open(stats_path))
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    F.check_eq(len(recs), st["events"], "records in the gen file")
    faults = FAULTS * (2 if F.SOAK else 1)
    chunks = len(faults) + 1
    size = (len(recs) + chunks - 1) // chunks
    run = F.start_run(env, "bf1")
    produced = 0
    timings = []
    nwarn = 0
    overcount = None
    for c in range(chunks):
        chunk = recs[c * size:(c + 1) * size]
        produce_chunk(env, chunk)
        produced += len(chunk)
        if c == 0:
            F.wait_assigned_and_progress(env, run, 0, timeout=90)
        if c < len(faults):
            name, cmds, hold, undo = faults[c]
            at = F.consumed(env)
            for cmd in cmds:
                F.control(env, cmd)
            t0 = time.monotonic()
            while time.monotonic() - t0 < hold:
                F.check(run.alive(), "leadflow run exited during fault %r (status %s)"
                        % (name, run.p.returncode))
                time.sleep(0.1)
            for cmd in undo:
                F.control(env, cmd)
            F.wait_until(lambda: _consumed_alive(env, run) >= produced, 90,
                         "recovery after %r: everything produced so far (%d) consumed"
                         % (name, produced))
            took = time.monotonic() - t0
            time.sleep(0.5)
            now = F.consumed(env)
            warns = len([ln for ln in run.log_text().split("\n") if " warn: " in ln]) - nwarn
            nwarn += warns
            timings.append((name, at, took))
            F.log("fault %r injected at consumed %d of %d produced; all consumed %.1f s "
                  "after it began; %d warning(s) logged; consumed now %d"
                  % (name, at, produced, took, warns, now))
            if now != produced and not overcount:
                overcount = "after fault %r: consumed %d != %d produced" % (name, now,
                                                                          produced)
                F.log("DOUBLE COUNT " + overcount)
                wmh = env.r.hgetall(env.wm_key())
                bw = F.watermarks(env)
                for p in sorted(bw):
                    F.log("  partition %d: log %d..%d; Redis next offset %s, consumed %s, "
                          "applied %s, duplicates %s, dead %s"
                          % (p, bw[p][0], bw[p][1], wmh.get(str(p)),
                             wmh.get("%d.consumed" % p), wmh.get("%d.applied" % p),
                             wmh.get("%d.duplicates" % p), wmh.get("%d.dead" % p)))
    F.check_retention(env, st["events"])
    F.final_check(env, ref, st, [run])


def _consumed_alive(env, run):
    F.check(run.alive(), "leadflow run exited (status %s)" % run.p.returncode)
    return F.consumed(env)


if __name__ == "__main__":
    F.main([test_broker_faults])
