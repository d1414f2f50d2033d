"""Rebalance churn (issue 4): three `leadflow run` instances in one consumer group while the
generated stream is produced; repeatedly one member is killed (SIGKILL, sometimes SIGTERM)
and another started. After the input is consumed and the group is stable, the Redis state,
the transitions and the progress counters must equal one clean run over the same input.

Default: 60,000 events, 8 partitions, 6 churn events. LF_SOAK=1: 200,000 events, 32
partitions, 20 churn events. LF_CHURN / LF_EVENTS override.
"""
import os
import random
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

EVENTS = int(os.environ.get("LF_EVENTS", F.soak(60000, 200000)))
LEADS = EVENTS // 10
PARTITIONS = F.soak(8, 32)
CHURN = int(os.environ.get("LF_CHURN", F.soak(6, 20)))
MEMBERS = 3
# One churn event: a rebalance on the mock (median 5 s, up to ~13 s, at session.timeout.ms
# 3000) plus a random pause.
CYCLE_S = 9.0


# librdkafka 2.0.2's mock consumer group aborts now and then under this churn (a member
# rejoining while the mock still holds an earlier group response for it). It takes the
# devbroker down, not leadflow: such a run proves nothing either way, so it is run again once,
# and the second run must pass on its own.
MOCK_ABORT = "rd_kafka_mock_cgrp_member_add: Assertion"


def _mock_aborted():
    return any(p.name == "devbroker" and MOCK_ABORT in p.log_text()
               for env in F.H._CURRENT_ENVS for p in env.procs)


def test_rebalance_churn():
    try:
        _churn()
    except F.TestFailure:
        if not _mock_aborted():
            raise
        F.log("the devbroker aborted inside librdkafka's mock consumer group (%s...): a bug of "
              "the mock, not of leadflow; running the churn test once more" % MOCK_ABORT)
        for env in F.H._CURRENT_ENVS:
            env.close()
        del F.H._CURRENT_ENVS[:]
        _churn()


def _churn():
    args = F.gen_args(EVENTS, LEADS)
    ref = F.reference(args, PARTITIONS)
    rng = random.Random(int(os.environ.get("LF_SEED", "42")) * 31 + CHURN)
    env = F.new_env("churn")
    F.start_redis(env)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env)
    rate = max(500, int(EVENTS / ((CHURN + 1) * CYCLE_S)))
    gen, stats_path = F.generate(env, args, rate=rate, wait=False)
    F.log("producing %d events at %d/s over %d partitions; %d members, %d churn events planned"
          % (EVENTS, rate, PARTITIONS, MEMBERS, CHURN))
    n = 0
    members = []
    for _ in range(MEMBERS):
        n += 1
        members.append(F.start_run(env, "m%02d" % n))
    for m in members:
        F.wait_assigned_and_progress(env, m, -1, timeout=90)
    t0 = time.monotonic()
    churned = kills = terms = 0
    while churned < CHURN:
        time.sleep(rng.uniform(0.2, 3.0))
        before = F.consumed(env)
        if before >= EVENTS:
            break
        victim = rng.choice(members)
        if rng.random() < 0.3:
            t = time.monotonic()
            victim.signal(signal.SIGTERM)
            try:
                rc = victim.p.wait(20)
            except Exception:
                raise F.TestFailure("%s did not exit within 20 s of SIGTERM" % victim.name)
            F.check_eq(rc, 0, "%s exit status after SIGTERM" % victim.name)
            how = "SIGTERM (exit in %.1f s)" % (time.monotonic() - t)
            terms += 1
        else:
            F.kill9(victim)
            how = "SIGKILL"
            kills += 1
        members.remove(victim)
        n += 1
        new = F.start_run(env, "m%02d" % n)
        members.append(new)
        churned += 1
        F.log("churn %d: %s %s at consumed %d; started %s" % (churned, victim.name, how, before,
                                                             new.name))
        # Data flows again and the new member got partitions (or the input is consumed).
        c = F.wait_assigned_and_progress(env, new, F.consumed(env), timeout=90)
        F.log("  %s assigned; consumed %d" % (new.name, c))
    F.log("%d churn events (%d SIGKILL, %d SIGTERM) in %.0f s" % (churned, kills, terms,
                                                                   time.monotonic() - t0))
    st = F.finish_gen(env, gen, stats_path)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    F.check(churned >= CHURN, "only %d of %d churn events landed before the input was "
            "consumed; lower the rate" % (churned, CHURN))
    F.wait_all_consumed(env, st["events"], members)
    wait_group_stable(env, members)
    F.final_check(env, ref, st, members)


def wait_group_stable(env, members, timeout=60):
    """Every partition owned by exactly one live member, per their heartbeats."""
    want = set(range(env.partitions))

    def cond():
        owned = []
        for m in members:
            F.check(m.alive(), "%s exited (status %s)" % (m.name, m.p.returncode))
            h = env.r.hgetall("lf:ops:instance:" + m.name[len("run-"):])
            parts = h.get("partitions", "")
            ids = parts.split(":", 1)[1] if ":" in parts else ""
            owned += [int(x) for x in ids.split(",") if x]
        return sorted(owned) == sorted(want)
    F.wait_until(cond, timeout, "a stable group: every partition owned by one live member")


def test_rebalance_during_a_write():
    """A rebalance that arrives while a batch's writes are in flight is handled when the write
    ends (the revoke reads Redis and empties the lead cache the write points into).

    Forced, not left to chance: the input is preloaded and batches are large (tens of
    64-lead transactions each). As soon as the first member sends its first WATCH, Redis holds
    every write back (CLIENT PAUSE ... WRITE; the first member's command timeout is raised
    for this). Its first batch is then stuck early in its write, with transactions still to
    send. The second member joins meanwhile; once the group has had time to ask the first
    one to give up its partitions, writes are let go, and the first member meets the revoke
    at its next poll between two transactions of the same write."""
    for attempt in (1, 2):
        if _rebalance_during_a_write(last=attempt == 2):
            return


def _rebalance_during_a_write(last):
    events, partitions = 40000, 8
    args = F.gen_args(events, events // 10)
    ref = F.reference(args, partitions)
    env = F.new_env("inwrite")
    F.start_redis(env)
    F.start_broker(env, partitions)
    rules2 = F.write_rules(env, batch_max_events=10000)
    # The first member waits out the hold; the second keeps the 2 s timeout, so its start
    # (a RESTORE probe: a write) is not held for long. The first member's first batch fills
    # up (it lingers for the preloaded input instead of taking the first fetch's few events
    # and writing them at once): the write the hold catches is then a long one.
    with open(rules2) as f:
        text = f.read()
    text = re.sub(r"(?m)^(  timeout_ms:).*$", r"\1 30000", text, count=1)
    text = re.sub(r"(?m)^(  batch_max_ms:).*$", r"\1 3000", text, count=1)
    text = re.sub(r"(?m)^(  batch_linger_ms:).*$", r"\1 2000", text, count=1)
    env.write_rules(text, name="w01.yaml")
    st, _ = F.generate(env, args)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    first = F.start_run(env, "w01")
    r = env.r

    def stat(cmd):
        return r.info("commandstats").get("cmdstat_" + cmd, {}).get("calls", 0)
    t_end = time.monotonic() + 90
    while not stat("watch"):
        F.check(time.monotonic() < t_end and first.alive(), "w01 never started a write")
        time.sleep(0.002)
    r.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    execs = stat("exec")
    # A finished batch records its partitions' next offsets (fields "<partition>" of the
    # progress hash; the transactions before only add to its counters, "<partition>.<name>").
    finished = any(f.isdigit() for f in r.hkeys(env.wm_key()))
    if execs > 8 or finished:
        r.execute_command("CLIENT", "UNPAUSE")
        msg = ("w01 was past its first write's start when writes were held (%d transactions "
               "done)" % execs)
        F.check(not last, msg)
        F.log(msg + ": once more")
        for e in F.H._CURRENT_ENVS:
            e.close()
        del F.H._CURRENT_ENVS[:]
        return False
    try:
        F.log("writes held after w01's first %d transaction(s); starting w02" % execs)
        second = env.start_run("w02", rules=rules2)
        env.runs.append(second)
        F.wait_until(lambda: "consuming" in second.log_text(), 30, "w02 started")
        # Its join, then w01's next group heartbeat (every 0.5 s) learning of it.
        time.sleep(2.5)
        text = first.log_text()
        F.check("rebalance during" not in text and "revoked" not in text,
                "w01 handled a rebalance while held inside a write")
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    F.wait_until(lambda: "rebalance during a write" in first.log_text(), 30,
                 "w01 logging a rebalance that arrived during a write")

    def handled():
        text = first.log_text()
        after = text[text.index("rebalance during a write"):]
        return "revoked" in after or "assigned" in after
    F.wait_until(handled, 60, "w01 handling the deferred rebalance once its write ended")
    members = [first, second]
    F.wait_all_consumed(env, st["events"], members)
    wait_group_stable(env, members)
    F.final_check(env, ref, st, members)
    return True


if __name__ == "__main__":
    F.main([test_rebalance_churn, test_rebalance_during_a_write])
