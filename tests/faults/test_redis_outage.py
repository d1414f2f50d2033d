"""Redis outages (issue 4), while the generated stream is produced and consumed:

(a) redis-server (AOF, appendfsync always) is stopped with SIGTERM for ~10 s and restarted
    on the same port and directory: leadflow waits (pauses, retries with backoff), does not
    crash, reports `degraded` and is `ok` again at the end, and the final state equals one
    clean run.
(b) Redis loses its last writes (AOF off): a snapshot (SAVE, copy of dump.rdb) is taken mid
    run, the run goes on, then redis-server and leadflow are both killed -9, the old
    snapshot is restored and both restarted: leadflow must replay from the watermark in the
    snapshot (Kafka's committed offsets are further on) and end equal to the clean run.

Default: 60,000 events, 8 partitions. LF_SOAK=1: 200,000 events, 32 partitions, a 20 s
outage in (a).
"""
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

EVENTS = int(os.environ.get("LF_EVENTS", F.soak(60000, 200000)))
LEADS = EVENTS // 10
PARTITIONS = F.soak(8, 32)
OUTAGE_S = F.soak(10, 20)
RATE = F.soak(2000, 2500)


def rss_kb(proc):
    try:
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def test_redis_stopped_and_restarted_with_aof():
    args = F.gen_args(EVENTS, LEADS)
    ref = F.reference(args, PARTITIONS)
    rng = random.Random(F.SEED * 101)
    env = F.new_env("redis-aof")
    F.start_redis(env, aof=True)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env)
    gen, stats_path = F.generate(env, args, rate=RATE, wait=False)
    run = F.start_run(env, "ro1")
    F.wait_assigned_and_progress(env, run, 0, timeout=90)
    time.sleep(rng.uniform(0.5, 3.0))
    before = F.consumed(env)
    F.check(before < EVENTS, "the input was consumed before the outage")
    rss0 = rss_kb(run)
    F.check_eq(env.redis_proc.stop(timeout=20), 0, "redis-server exit status after SIGTERM")
    F.log("redis-server stopped (SIGTERM) at consumed %d; down for %d s" % (before, OUTAGE_S))
    t_end = time.monotonic() + OUTAGE_S
    rss_max = rss0
    while time.monotonic() < t_end:
        F.check(run.alive(), "leadflow run exited while Redis was down (status %s)"
                % run.p.returncode)
        rss_max = max(rss_max, rss_kb(run))
        time.sleep(0.2)
    F.check("degraded" in run.log_text(), "the run's log never said `degraded` during a %d s "
            "Redis outage" % OUTAGE_S)
    F.log("leadflow RSS %d kB before the outage, at most %d kB during it" % (rss0, rss_max))
    F.check(rss_max < max(4 * rss0, 600 * 1024), "memory grew from %d kB to %d kB while Redis "
            "was down (back-pressure?)" % (rss0, rss_max))
    F.start_redis(env, aof=True)  # same port, same directory: reloads the AOF
    after = F.consumed(env)
    F.check(after >= before, "progress went back from %d to %d over an AOF restart"
            % (before, after))
    # Right after Redis is back the heartbeat may still say degraded; it ends ok.
    seen_degraded = False
    t_hb = time.monotonic() + 5
    while time.monotonic() < t_hb:
        h = env.r.hgetall("lf:ops:instance:ro1")
        if h.get("state") == "degraded":
            seen_degraded = True
            break
        time.sleep(0.05)
    F.log("heartbeat state degraded seen after the restart: %s" % seen_degraded)
    F.wait_assigned_and_progress(env, run, after, timeout=60)
    st = F.finish_gen(env, gen, stats_path)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    F.wait_all_consumed(env, st["events"], [run])
    F.settle(env, [run])
    F.wait_until(lambda: env.r.hget("lf:ops:instance:ro1", "state") == "ok", 20,
                 "the heartbeat of ro1 to say state ok (it says %r, reason %r)"
                 % (env.r.hget("lf:ops:instance:ro1", "state"),
                    env.r.hget("lf:ops:instance:ro1", "reason")))
    F.check("back to normal" in run.log_text(), "no `back to normal` in the run's log")
    F.final_check(env, ref, st, [run])


def committed_offsets(env, partitions):
    c = Consumer({"bootstrap.servers": env.brokers, "group.id": env.group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(F.EVENTS_TOPIC, p) for p in range(partitions)],
                          timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_redis_restored_from_an_old_snapshot():
    args = F.gen_args(EVENTS, LEADS)
    ref = F.reference(args, PARTITIONS)
    rng = random.Random(F.SEED * 103)
    env = F.new_env("redis-snap")
    F.start_redis(env, aof=False)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env)
    gen, stats_path = F.generate(env, args, rate=RATE, wait=False)
    run = F.start_run(env, "rs1")
    F.wait_assigned_and_progress(env, run, 0, timeout=90)
    time.sleep(rng.uniform(1.0, 3.0))
    F.check_eq(env.r.execute_command("SAVE"), True, "SAVE")
    snap = env.path("snapshot.rdb")
    shutil.copyfile(os.path.join(env.redis_dir, "dump.rdb"), snap)
    at_snap = F.consumed(env)
    F.check(at_snap < EVENTS, "the input was consumed before the snapshot")
    # Let it run on well past the snapshot, then lose Redis's last writes and the process.
    F.wait_until(lambda: F.consumed(env) >= min(at_snap + 6000, EVENTS - 1000), 60,
                 "6000 more events consumed after the snapshot")
    F.kill9(run)
    lost_at = F.consumed(env)
    # partition -> next offset (not "epoch", not "<p>.<counter>")
    wm_lost = {k: int(v) for k, v in env.r.hgetall(env.wm_key()).items() if k.isdigit()}
    F.kill9(env.redis_proc)
    env.redis_proc.stop()
    shutil.copyfile(snap, os.path.join(env.redis_dir, "dump.rdb"))
    F.start_redis(env, aof=False)
    restored = F.consumed(env)
    wm = {int(k): int(v) for k, v in env.r.hgetall(env.wm_key()).items() if k.isdigit()}
    F.log("snapshot at consumed ~%d; killed at %d; restored Redis says %d" % (at_snap, lost_at,
                                                                              restored))
    F.check(restored < lost_at, "the restored snapshot is not behind (%d vs %d)"
            % (restored, lost_at))
    committed = committed_offsets(env, PARTITIONS)
    ahead = {p: (committed[p], wm.get(p, 0)) for p in committed if committed[p] > wm.get(p, 0)}
    F.log("partitions whose Kafka committed offset is past the restored Redis watermark: %d"
          " of %d" % (len(ahead), PARTITIONS))
    F.check(ahead, "no Kafka committed offset is past the restored watermark (committed %r, "
            "watermark %r, before the loss %r): the test proves nothing" % (committed, wm,
                                                                           wm_lost))
    run2 = F.start_run(env, "rs2")
    st = F.finish_gen(env, gen, stats_path)
    F.check_eq(st, ref["gen_stats"], "gen stats of this run vs the reference's")
    F.final_check(env, ref, st, [run2])


if __name__ == "__main__":
    F.main([test_redis_stopped_and_restarted_with_aof, test_redis_restored_from_an_old_snapshot])
