"""leadflow on a Redis Cluster when a write stops between its units or a node loses data
(docs/design.md "Redis Cluster: the write path by slot", points 3 and 6), on a local
three-master cluster and the embedded broker:

- a visitor merged into a lead lives in another hash slot: it is claimed (lf:merging), the lead
  absorbs it and records that (lf:absorbed), then the visitor is cleared. The state a crash
  leaves after the lead's unit, and after the claim, is built by hand from a real run, the
  identify is delivered again, and the end state must be the uninterrupted run's: the
  visitor's points counted once, the visitor gone, its alias set, no mark left. A control
  without the lead's record shows the record is what finishes the merge;
- a primary that comes back empty (SIGKILL, restarted without data, same slots): its slots'
  store epochs are gone, leadflow notices, gives the store a new epoch and replays from the
  start; every lead ends as in a run that lost nothing;
- instances started together on an empty cluster agree on one store epoch (no false loss);
- `redis.cluster.read_from: replica`: `leadflow inspect` reads a replica.
Run: LF_BIN=build/leadflow python3 tests/integration/test_cluster_faults.py"""
import calendar
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq, check_close, HOUR_MS  # noqa: E402

MODEL = """
processing:
  batch_max_ms: 100
  idle_clock: event
limits:
  min_timestamp: "2015-01-01T00:00:00Z"
  max_timestamp: "2100-01-01T00:00:00Z"
model:
  decay:
    half_life: 1d
  stages:
    mql: {enter: 1000, exit: 500}
  engagement:
    - name: page_views
      kind: page_view
      points: 5
    - name: identifies
      kind: identify
      points: 2
"""
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000


def cluster_env(name, masters=3, replicas=0, partitions=1):
    env = H.new_env(name)
    env.start_cluster(masters=masters, replicas=replicas)
    env.start_broker(partitions)
    env.redis_port = env.cluster_ports[0]
    seeds = ",".join("127.0.0.1:%d" % p for p in env.cluster_ports)
    env.write_rules(H.kafka_block(env.brokers, env.group) +
                    "redis:\n  cluster:\n    nodes: \"%s\"\n" % seeds + MODEL)
    return env


def node_of(env, key):
    """A connection to the master serving key (bytes replies)."""
    return env.cluster_conn(env.cluster_slot_owner(H.key_slot(key)))


def kget(env, key):
    c = node_of(env, key)
    try:
        return c.get(key)
    finally:
        c.close()


def lead_record(env, lead):
    key = "lf:lead:{%s}" % lead
    c = node_of(env, key)
    try:
        return lfrecord.record(c.hgetall(key))
    finally:
        c.close()


def consumed(env):
    """Events consumed, summed over the progress hash and its shards on every master."""
    tot = 0
    for p in env.cluster_masters():
        c = env.cluster_conn(p, decode=True)
        try:
            for k in c.scan_iter("lf:wm:*", count=1000):
                for f, v in c.hgetall(k).items():
                    if f.endswith(".consumed"):
                        tot += int(v)
        finally:
            c.close()
    return tot


def run_until(env, name, cond, what, timeout=60):
    proc = env.start_run(name)

    def ok():
        check(proc.alive(), "leadflow run exited (status %s)" % proc.p.returncode)
        return cond()
    H.wait_until(ok, timeout, what, interval=0.2)
    return proc


def merge_events():
    """A known lead u1, a visitor a1 with three page views, then identify u1 <- a1."""
    phase1 = [H.event("page", "m-u1", T0, user="u1", url="https://x.test/a"),
              H.event("page", "m-a1-1", T0 + 60000, anon="a1", url="https://x.test/1"),
              H.event("page", "m-a1-2", T0 + 120000, anon="a1", url="https://x.test/2"),
              H.event("page", "m-a1-3", T0 + 180000, anon="a1", url="https://x.test/3")]
    identify = [H.event("identify", "m-id", T0 + HOUR_MS, user="u1", anon="a1")]
    return phase1, identify


def merged_run(env):
    """Both phases through one instance; returns what the interrupted-write tests rebuild:
    the visitor's stored record and version before the merge, the lead's hash before it, the
    identify's offset, and the lead after the merge (the reference)."""
    phase1, identify = merge_events()
    env.produce_events([(e, "json") for e in phase1])
    proc = run_until(env, "m1", lambda: consumed(env) == 4, "phase 1 consumed")
    vkey = "lf:v:{a1}"
    visitor = kget(env, vkey)
    check(visitor is not None, "the visitor is stored before the identify")
    version = int(lfrecord.record({b"p": visitor})["v"])
    lkey = "lf:lead:{u1}"
    c = node_of(env, lkey)
    lead_before = c.hgetall(lkey)
    c.close()
    where = env.produce_events([(e, "json") for e in identify])
    H.wait_until(lambda: consumed(env) == 5 and kget(env, "lf:alias:{a1}") == b"u1", 30,
                 "the identify merged")
    proc.stop()
    ref = lead_record(env, "u1")
    check(kget(env, vkey) is None, "the merged visitor is gone")
    return visitor, version, lead_before, where[0][1], ref


def rewind(env, offset):
    """The progress hash's next offset of partition 0 set back: the identify comes again."""
    key = env.wm_key()
    c = node_of(env, key)
    try:
        c.hset(key, "0", offset)
    finally:
        c.close()


def put(env, key, fn):
    c = node_of(env, key)
    try:
        fn(c)
    finally:
        c.close()


def check_merged_once(env, ref):
    got = lead_record(env, "u1")
    for f in ("eng", "score", "fit"):
        check_close(float(got[f]), float(ref[f]), "lead u1 %s" % f)
    check_eq(got["stage"], ref["stage"], "lead u1 stage")
    check_eq(kget(env, "lf:v:{a1}"), None, "the visitor is cleared")
    check_eq(kget(env, "lf:alias:{a1}"), b"u1", "its alias names the lead")
    check_eq(kget(env, "lf:merging:{a1}"), None, "no mark left")
    c = node_of(env, "lf:absorbed:{u1}")
    try:
        check_eq(c.hgetall("lf:absorbed:{u1}"), {}, "the lead's record of it is cleared")
    finally:
        c.close()


def test_a_merge_stopped_after_the_leads_unit_is_finished_not_counted_twice():
    env = cluster_env("cl-absorbed")
    visitor, version, _, offset, ref = merged_run(env)
    # What a crash right after the lead's unit leaves: the lead absorbed the visitor (and says
    # so), the visitor is still there, claimed, unlinked.
    put(env, "lf:v:{a1}", lambda c: c.set("lf:v:{a1}", visitor, px=3600000))
    put(env, "lf:alias:{a1}", lambda c: c.delete("lf:alias:{a1}"))
    put(env, "lf:merging:{a1}", lambda c: c.set("lf:merging:{a1}", "u1", px=60000))
    put(env, "lf:absorbed:{u1}", lambda c: c.hset("lf:absorbed:{u1}", "a1", version))
    rewind(env, offset)
    run_until(env, "m2", lambda: kget(env, "lf:alias:{a1}") == b"u1",
              "the redelivered identify finishes the merge")
    time.sleep(1)
    check_merged_once(env, ref)


def test_without_the_leads_record_the_redelivered_identify_merges_nothing():
    """The control: the same state without lf:absorbed. The identify is a redelivery (the
    lead's offsets cover it), so nothing links the visitor: it stays as it is; the record is
    what finishes an interrupted merge, and it is not merged a second time."""
    env = cluster_env("cl-absorbed-control")
    visitor, _, _, offset, ref = merged_run(env)
    put(env, "lf:v:{a1}", lambda c: c.set("lf:v:{a1}", visitor, px=3600000))
    put(env, "lf:alias:{a1}", lambda c: c.delete("lf:alias:{a1}"))
    rewind(env, offset)
    run_until(env, "m2", lambda: consumed(env) >= 5, "running again")
    time.sleep(3)
    check(kget(env, "lf:v:{a1}") is not None, "the visitor is left: nothing says it was merged")
    check_eq(kget(env, "lf:alias:{a1}"), None, "no alias")
    check_close(float(lead_record(env, "u1")["eng"]), float(ref["eng"]),
                "lead u1 eng (not merged twice)")


def test_a_merge_stopped_after_the_claim_is_redone():
    env = cluster_env("cl-claimed")
    visitor, _, lead_before, offset, ref = merged_run(env)
    # A crash right after the claim: the visitor is marked, the lead has not absorbed it.
    def restore_lead(c):
        c.delete("lf:lead:{u1}")
        c.hset("lf:lead:{u1}", mapping=lead_before)
    put(env, "lf:lead:{u1}", restore_lead)
    put(env, "lf:v:{a1}", lambda c: c.set("lf:v:{a1}", visitor, px=3600000))
    put(env, "lf:alias:{a1}", lambda c: c.delete("lf:alias:{a1}"))
    put(env, "lf:merging:{a1}", lambda c: c.set("lf:merging:{a1}", "u1", px=60000))
    rewind(env, offset)
    run_until(env, "m2", lambda: kget(env, "lf:alias:{a1}") == b"u1",
              "the redelivered identify merges again")
    time.sleep(1)
    check_merged_once(env, ref)


def counters(env):
    """The progress counters summed per name over the progress hash and its shards."""
    tot = {}
    for p in env.cluster_masters():
        c = env.cluster_conn(p, decode=True)
        try:
            for k in c.scan_iter("lf:wm:*", count=1000):
                for f, v in c.hgetall(k).items():
                    name = f.split(".", 1)[1] if "." in f else None
                    if name and name != "ts":
                        tot[name] = tot.get(name, 0) + int(v)
        finally:
            c.close()
    return tot


def test_a_merge_stopped_after_the_leads_unit_counts_its_batch_once():
    """The visitor's events and the identify in one batch: the lead absorbed them (and their
    offsets), the visitor was never stored. Delivered again, the visitor's events must resolve
    to the lead (its claim is finished at the first read of the id) and be recognised there,
    not applied to a new visitor and counted a second time."""
    env = cluster_env("cl-absorbed-batch")
    phase1, identify = merge_events()
    env.produce_events([(e, "json") for e in phase1 + identify])
    proc = run_until(env, "b1", lambda: consumed(env) == 5 and
                     kget(env, "lf:alias:{a1}") == b"u1", "merged in one batch")
    proc.stop()
    ref, ref_counts = lead_record(env, "u1"), counters(env)
    check_eq(ref_counts.get("applied"), 5, "events applied")
    put(env, "lf:alias:{a1}", lambda c: c.delete("lf:alias:{a1}"))
    put(env, "lf:merging:{a1}", lambda c: c.set("lf:merging:{a1}", "u1", px=60000))
    put(env, "lf:absorbed:{u1}", lambda c: c.hset("lf:absorbed:{u1}", "a1", 0))
    rewind(env, 0)
    proc = run_until(env, "b2", lambda: kget(env, "lf:alias:{a1}") == b"u1",
                     "the merge finished")
    time.sleep(2)
    check_merged_once(env, ref)
    check_eq(counters(env), ref_counts, "progress counters (each event counted once)")


#---- A primary that comes back empty -------------------------------------------------------

LOSS_LEADS, LOSS_EVENTS = 150, 3000


def leads_of(env):
    """Every known lead's record, merged over the masters, bookkeeping aside (write version,
    the order of the per-partition offsets)."""
    out = {}
    for p in env.cluster_masters():
        c = env.cluster_conn(p)
        try:
            for k in c.scan_iter("lf:lead:*", count=1000):
                r = dict(lfrecord.record(c.hgetall(k)))
                for f in ("v", "o", "packed_bytes"):
                    r.pop(f, None)
                out[k.decode()] = r
        finally:
            c.close()
    return out


def restart_empty(env, port):
    """SIGKILL the node and start it again on its port and cluster config, with no data."""
    old = env.cluster_node_proc(port)
    argv = list(old.argv)
    old.kill()
    old.p.wait(10)
    env._proc("redis-cluster-%d" % port, argv)
    H.wait_until(lambda: env._ping(port), 10, "node %d back" % port)
    H.wait_until(lambda: all(env.cluster_state_ok(p) for p in env.cluster_ports), 30,
                 "cluster_state:ok")


def test_a_primary_back_empty_is_noticed_and_replayed():
    ref_env = cluster_env("cl-loss-ref")
    ref_env.generate(LOSS_LEADS, LOSS_EVENTS, 5)
    proc = run_until(ref_env, "r1", lambda: consumed(ref_env) == LOSS_EVENTS, "reference run")
    time.sleep(2)
    ref = leads_of(ref_env)
    proc.stop()
    check(len(ref) > 50, "the reference has leads: %d" % len(ref))

    env = cluster_env("cl-loss")
    env.generate(LOSS_LEADS, LOSS_EVENTS, 5)
    proc = run_until(env, "l1", lambda: consumed(env) == LOSS_EVENTS, "first pass")
    victim = max(env.cluster_masters(),
                 key=lambda p: env.cluster_conn(p).dbsize())
    restart_empty(env, victim)
    # The instance notices at its next write or fence: give it one (the sweep writes as the
    # event clock moves; a new event for a lead in any slot does too).
    env.produce_events([(H.event("page", "m-late-%d" % i, T0 + i, user="late-%d" % i,
                                 url="https://x.test/late"), "json") for i in range(20)])

    def replayed():
        return "replaying every partition from the start" in proc.log_text()
    H.wait_until(replayed, 60, "the loss noticed and the replay started")
    time.sleep(1)

    def rebuilt():
        got = leads_of(env)
        return all(got.get(k) == v for k, v in ref.items())
    try:
        H.wait_until(rebuilt, 90, "every lead rebuilt as in the run that lost nothing",
                     interval=1)
    except H.TestFailure:
        got = leads_of(env)
        bad = [k for k, v in ref.items() if got.get(k) != v]
        raise H.TestFailure("%d of %d leads differ after the replay, e.g. %s: %s vs %s" % (
            len(bad), len(ref), bad[0], got.get(bad[0]), ref[bad[0]]))
    check(proc.alive(), "the instance kept running")


def test_instances_started_together_agree_on_one_epoch():
    env = cluster_env("cl-epoch", partitions=3)
    env.generate(60, 600, 9)
    procs = [env.start_run("e%d" % i) for i in range(3)]
    H.wait_until(lambda: consumed(env) == 600, 60, "everything consumed")
    for p in procs:
        check("lost" not in p.log_text().lower(),
              "%s took a store being created for a lost one:\n%s" % (p.name,
                                                                     p.log_text()[-1500:]))
    epochs = set()
    for p in env.cluster_masters():
        c = env.cluster_conn(p, decode=True)
        try:
            for k in c.scan_iter("lf:epoch:{*", count=5000):
                epochs.add(c.get(k))
        finally:
            c.close()
    check_eq(len(epochs), 1, "store epochs over the slots")


def test_read_from_replica_reads_a_replica():
    env = cluster_env("cl-replica", replicas=1)
    env.produce_events([(H.event("page", "m-r1", T0, user="r1", url="https://x.test/r"),
                         "json")])
    proc = run_until(env, "rr", lambda: consumed(env) == 1, "consumed")
    proc.stop()
    key = "lf:lead:{r1}"
    owner = env.cluster_slot_owner(H.key_slot(key))
    replica = env.cluster_replicas_of(owner)[0]
    c = env.cluster_conn(owner)
    check(c.execute_command("WAIT", 1, 5000) >= 1, "the replica has the lead")
    c.close()

    def listed():  # CLUSTER SLOTS lists a replica once its offset is known to be non-zero
        c = env.cluster_conn(owner, decode=True)
        try:
            return any(len(e) > 3 for e in c.execute_command("CLUSTER", "SLOTS"))
        finally:
            c.close()
    H.wait_until(listed, 30, "the replicas in CLUSTER SLOTS")

    def hgetall_calls(port):
        c = env.cluster_conn(port, decode=True)
        try:
            return int(c.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))
        finally:
            c.close()
    with open(env.rules_path) as f:
        text = f.read()
    env.write_rules(text.replace("  cluster:\n", "  cluster:\n    read_from: replica\n", 1),
                    name="replica.yaml")
    before_r, before_o = hgetall_calls(replica), hgetall_calls(owner)
    rc, out, err = env.run_cli(["inspect", "-c", env.rules_path, "r1"])
    check_eq(rc, 0, "inspect exit status\n" + err)
    check("r1" in out, "inspect shows the lead:\n" + out)
    check(hgetall_calls(replica) > before_r, "the replica served the lead's HGETALL")
    check_eq(hgetall_calls(owner), before_o, "HGETALLs on the primary")


if __name__ == "__main__":
    H.main([test_a_merge_stopped_after_the_leads_unit_is_finished_not_counted_twice,
            test_without_the_leads_record_the_redelivered_identify_merges_nothing,
            test_a_merge_stopped_after_the_claim_is_redone,
            test_a_merge_stopped_after_the_leads_unit_counts_its_batch_once,
            test_a_primary_back_empty_is_noticed_and_replayed,
            test_instances_started_together_agree_on_one_epoch,
            test_read_from_replica_reads_a_replica])
