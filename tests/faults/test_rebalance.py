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


def test_rebalance_churn():
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


if __name__ == "__main__":
    F.main([test_rebalance_churn])
