"""kill -9 torture (issue 4): `leadflow run` is killed with SIGKILL at random instants while
the generated stream is produced and consumed, restarted each time; the final Redis state,
the transitions and the progress counters must equal one clean run over the same input.

Default: 60,000 events, 8 partitions, 8 kills. LF_SOAK=1: 200,000 events, 32 partitions,
24 kills. LF_KILLS / LF_EVENTS override.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

EVENTS = int(os.environ.get("LF_EVENTS", F.soak(60000, 200000)))
LEADS = EVENTS // 10
PARTITIONS = F.soak(8, 32)
KILLS = int(os.environ.get("LF_KILLS", F.soak(8, 24)))
# Seconds one kill/restart cycle takes on the mock (group join after a dead member: about
# two session timeouts) plus the random run time before the kill.
CYCLE_S = 7.0


def test_kill9_torture():
    args = F.gen_args(EVENTS, LEADS)
    ref = F.reference(args, PARTITIONS)
    rng = random.Random(int(os.environ.get("LF_SEED", "42")) * 7919 + KILLS)
    env = F.new_env("kill9")
    F.start_redis(env)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env)
    # Produce while consuming, at a rate that makes the stream outlast the kills.
    rate = max(500, int(EVENTS / (KILLS * CYCLE_S)))
    gen, stats_path = F.generate(env, args, rate=rate, wait=False)
    F.log("producing %d events at %d/s over %d partitions; %d kills planned"
          % (EVENTS, rate, PARTITIONS, KILLS))
    kills = 0
    run = None
    n = 0
    last = -1
    t0 = time.monotonic()
    while kills < KILLS:
        n += 1
        run = F.start_run(env, "k%02d" % n)
        c = F.wait_assigned_and_progress(env, run, last, timeout=90)
        if c >= EVENTS:
            break
        # A random instant: often within the first batches after the (re)start (the outbox
        # flush, the catch-up of the backlog), sometimes later.
        delay = rng.choice([rng.uniform(0, 0.3), rng.uniform(0, 1.5), rng.uniform(0.5, 3)])
        time.sleep(delay)
        before = F.consumed(env)
        if before >= EVENTS:
            break
        F.kill9(run)
        kills += 1
        last = F.consumed(env)
        F.log("kill %d: %s after %.2f s of progress; consumed %d" % (kills, run.name, delay,
                                                                    last))
    F.log("%d kills in %.0f s" % (kills, time.monotonic() - t0))
    if not run.alive():
        n += 1
        run = F.start_run(env, "k%02d" % n)
    st = F.finish_gen(env, gen, stats_path)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    F.check(kills >= KILLS, "only %d of %d kills landed before the input was consumed; "
            "lower the rate" % (kills, KILLS))
    F.final_check(env, ref, st, [run])


if __name__ == "__main__":
    F.main([test_kill9_torture])
