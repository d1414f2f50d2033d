"""Rebalance churn (issue 4): three `leadflow run` instances in one consumer group while the
generated stream is produced; repeatedly one member is killed (SIGKILL, sometimes SIGTERM)
and another started. After the input is consumed and the group is stable, the Redis state,
the transitions and the progress counters must equal one clean run over the same input.

Default: 60,000 events, 8 partitions, 6 churn events. LF_SOAK=1: 200,000 events, 32
partitions, 20 churn events. LF_CHURN / LF_EVENTS override.
"""
import os
import random
import signal
import sys
import threading
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
    ends (the revoke reads Redis and empties the lead cache the write points into). Forced:
    the input is preloaded, batches are large, and Redis holds every write command back 90 %
    of the time (CLIENT PAUSE ... WRITE, 1.2 s at a time, under leadflow's 2 s command
    timeout), so the first member spends nearly all its time inside a write, waiting for an
    EXEC, and polls the group between chunks when the second one has joined."""
    events, partitions = 40000, 8
    args = F.gen_args(events, events // 10)
    ref = F.reference(args, partitions)
    env = F.new_env("inwrite")
    F.start_redis(env)
    F.start_broker(env, partitions)
    F.write_rules(env, batch_max_events=10000)
    st, _ = F.generate(env, args)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    first = F.start_run(env, "w01")
    F.wait_until(lambda: "assigned 8 partition" in first.log_text(), 90, "w01 assigned")
    stop = threading.Event()

    def hold_writes():
        r = F.H.redislib.Redis(host="127.0.0.1", port=env.redis_port, socket_timeout=10)
        # Ended by UNPAUSE, not by the pause's own timeout: Redis notices that one only at
        # its next cron tick, and a new pause can come first (leadflow's 2 s timeout fires).
        while not stop.is_set():
            r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
            time.sleep(1.2)
            r.execute_command("CLIENT", "UNPAUSE")
            time.sleep(0.1)
    holder = threading.Thread(target=hold_writes, daemon=True)
    holder.start()
    try:
        # w01 is inside its first write once it has sent a WATCH (a read: not held back).
        F.wait_until(lambda: env.r.info("commandstats").get("cmdstat_watch", {}).get("calls"),
                     60, "w01 inside a write")
        second = F.start_run(env, "w02")
        F.wait_until(lambda: "rebalance during a write" in first.log_text(), 90,
                     "w01 logging a rebalance that arrived during a write")
    finally:
        stop.set()
        holder.join(5)

    def handled():
        text = first.log_text()
        after = text[text.index("rebalance during a write"):]
        return "revoked" in after or "assigned" in after
    F.wait_until(handled, 60, "w01 handling the deferred rebalance once its write ended")
    members = [first, second]
    F.wait_all_consumed(env, st["events"], members)
    wait_group_stable(env, members)
    F.final_check(env, ref, st, members)


if __name__ == "__main__":
    F.main([test_rebalance_churn, test_rebalance_during_a_write])
