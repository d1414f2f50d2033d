"""leadflow on a local Redis Cluster (three masters, three replicas: `redis-server
--cluster-enabled yes` on free loopback ports, `redis-cli --cluster create`) with three
`leadflow run` instances of one group, against the reference: one instance on one standalone
redis-server over the same input. The end states must be equal field by field: every lead and
visitor record (lfrecord.record, bookkeeping aside), every alias, the transitions published (a
multiset of (transition_id, payload)), the funnel, the stage sets and lf:top merged over their
per-slot shards, and the progress counters summed over the progress hash and its shards.

The input is `leadflow gen`'s (identifies and aliases merge visitors into leads), produced to
four partitions with every id that an event links to another (userId, anonymousId,
previousId) on one partition: docs/contract.md "Determinism" promises the same state whatever
the timing and the number of instances for such leads. Both sides run with
processing.idle_clock: event (the input comes in parts; the wall clock would demote every
cooled MQL at the first pause).

Tests: the equivalence; the same with the master holding the most leads SIGKILLed mid-run and
its replica promoted; the same with slots holding leads migrated mid-run by hand (IMPORTING/
MIGRATING, half the keys MIGRATEd, a pause under load: ASK; then SETSLOT NODE: MOVED); a
cluster node without redis.cluster.nodes refused at once; and a check of the comparison
itself (a copy of the reference into the cluster in the sharded layout compares equal, one
altered field or transition does not).
Run: LF_BIN=build/leadflow python3 tests/integration/test_cluster.py"""
import collections
import json
import os
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

PARTITIONS = 4
LEADS, EVENTS, SEED = 300, 4000, 31
BATCH_MAX_EVENTS = 100  # several batches per partition
INSTANCES = ("c1", "c2", "c3")
DONE_TIMEOUT = 150


#---- The input: gen's stream, linked ids on one partition --------------------------------------

def read_gen_file(path):
    """`leadflow gen --out` records: [(key, value)]."""
    with open(path, "rb") as f:
        b = f.read()
    out, i = [], 0
    while i < len(b):
        kl = struct.unpack(">I", b[i:i + 4])[0]
        k = b[i + 4:i + 4 + kl]
        i += 4 + kl
        vl = struct.unpack(">I", b[i:i + 4])[0]
        out.append((k, b[i + 4:i + 4 + vl]))
        i += 4 + vl
    return out


def linked_ids(value):
    """The ids an event names (userId, anonymousId, previousId); none for a bad record."""
    try:
        e = H.mp_unpack(value)
    except Exception:  # noqa: BLE001 (a malformed record: dead-lettered, linked to nothing)
        return []
    if not isinstance(e, dict):
        return []
    return [e[f] for f in ("userId", "anonymousId", "previousId") if isinstance(e.get(f), str)]


def partition_by_identity(recs, partitions=PARTITIONS):
    """[(key, value, partition)] in gen's order: the ids linked by any event (union-find) on
    the partition of the smallest id of their group; records naming no id by their key."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    named = [linked_ids(v) for _, v in recs]
    for ids in named:
        for x in ids[1:]:
            a, b = find(ids[0]), find(x)
            if a != b:
                parent[max(a, b)] = min(a, b)
    out = []
    for (k, v), ids in zip(recs, named):
        root = find(ids[0]) if ids else k.decode("utf-8", "replace")
        out.append((k, v, H.key_slot(root) % partitions))
    return out


_INPUT = []


def the_input(env):
    """The records (key, value, partition), generated once per process."""
    if not _INPUT:
        path = env.path("input.bin")
        gen = env._proc("gen", [H.LF_BIN, "gen", "--leads", str(LEADS), "--events", str(EVENTS),
                                "--seed", str(SEED), "--out", path, "--quiet"])
        check_eq(gen.p.wait(120), 0, "leadflow gen exit status")
        recs = partition_by_identity(read_gen_file(path))
        check_eq(len(recs), EVENTS, "records generated")
        parts = collections.Counter(p for _, _, p in recs)
        check(len(parts) == PARTITIONS and min(parts.values()) > EVENTS // 10,
              "the input spreads over %d partitions: %s" % (PARTITIONS, dict(parts)))
        _INPUT.extend(recs)
    return list(_INPUT)


def rules(env, cluster):
    kw = {"batch_max_events": BATCH_MAX_EVENTS}
    path = env.deploy_cluster_rules(**kw) if cluster else env.deploy_rules(**kw)
    return H.set_processing(path, dedup_window=H.GEN_DEDUP_WINDOW, idle_clock="event")


#---- Reading a store: a standalone redis-server or every master of a cluster -------------------

SHARD = r"(?::\{[^{}]*\})?"
ID_KEY = re.compile(r"^lf:(lead|v|alias|absorbed|merging):\{(.*)\}$")
INDEX_KEY = re.compile(r"^lf:(top|funnel|stage:[a-z]+)" + SHARD + "$")
# One node: lf:outbox:<topic>:<partition>; a cluster: lf:outbox:<topic>:{t} (every partition's
# entries of a slot, fields "<partition>:<transition_id>").
OUTBOX_KEY = re.compile(r"^lf:outbox:(.+?)(?::(\d+))?" + SHARD + "$")
WM_KEY = re.compile(r"^lf:wmc?:([^:]+):" + re.escape(H.EVENTS_TOPIC) + "(" + SHARD + ")$")
COUNTERS = ("consumed", "applied", "duplicates", "dead", "filtered", "transitions")


def scan_types(c, match):
    keys = list(c.scan_iter(match=match, count=1000))
    pipe = c.pipeline(transaction=False)
    for k in keys:
        pipe.type(k)
    return [(k.decode(), t.decode()) for k, t in zip(keys, pipe.execute())]


def read_store(conns, now_s=None):
    """Everything the comparison looks at, merged over the nodes (conns: bytes clients of a
    standalone server, or of every master)."""
    now_s = time.time() if now_s is None else now_s
    s = {"leads": {}, "aliases": {}, "funnel": collections.Counter(),
         "stage": {st: {} for st in H.ACTIVE_STAGES}, "top": {},
         "progress": collections.Counter(), "next": {}, "ts": {}, "outbox": 0,
         "absorbed": 0, "merging": 0, "twice": [], "unknown": [], "keys": 0}
    where = {}
    for c in conns:
        kt = scan_types(c, "lf:*")
        s["keys"] += len(kt)
        pipe = c.pipeline(transaction=False)
        for k, t in kt:
            if t == "hash":
                pipe.hgetall(k)
            elif t == "string":
                pipe.get(k)
            elif t == "zset":
                pipe.zrange(k, 0, -1, withscores=True)
            elif t == "set":
                pipe.smembers(k)
            else:
                pipe.type(k)
        port = c.connection_pool.connection_kwargs.get("port")
        for (k, t), v in zip(kt, pipe.execute()):
            if k in where:
                s["twice"].append("%s on %s and %s" % (k, where[k], port))
            where[k] = port
            _take(s, k, v, now_s)
    return s


def _take(s, k, v, now_s):
    m = ID_KEY.match(k)
    if m:
        kind, ident = m.groups()
        if kind == "alias":
            s["aliases"][ident] = v.decode()
        elif kind in ("absorbed", "merging"):
            s[kind] += 1
        else:
            rec = lfrecord.record(v if isinstance(v, dict) else {b"p": v})
            rec = {f: x for f, x in rec.items() if f not in lfrecord.BOOKKEEPING}
            if ident in s["leads"]:
                s["twice"].append("the record of %s as a lead and a visitor" % ident)
            s["leads"][ident] = rec
        return
    m = INDEX_KEY.match(k)
    if m:
        name = m.group(1)
        if name == "funnel":
            for f, n in v.items():
                f = f.decode()
                if f.startswith("visitor:"):
                    if int(f[8:]) > now_s:
                        s["funnel"]["visitor (live)"] += int(n)
                else:
                    s["funnel"][f] += int(n)
            return
        zs = s["top"] if name == "top" else s["stage"].setdefault(name[6:], {})
        for member, score in v:
            member = member.decode()
            if member in zs:
                s["twice"].append("%s in two shards of lf:%s" % (member, name))
            zs[member] = score
        return
    m = OUTBOX_KEY.match(k)
    if m:
        if isinstance(v, dict):
            s["outbox"] += len(v)
        return
    m = WM_KEY.match(k)
    if m:
        sharded = bool(m.group(2))
        for f, n in v.items():
            f = f.decode()
            p, _, c = f.partition(".")
            if not p.isdigit():
                continue  # "epoch": the store's, random per store
            if c in COUNTERS:
                s["progress"][f] += int(n)
            elif sharded:
                s["unknown"].append("%s field %s" % (k, f))
            elif c == "ts":
                s["ts"][p] = int(n)
            elif not c:
                s["next"][p] = int(n)
            else:
                s["unknown"].append("%s field %s" % (k, f))
        return
    if not re.match(r"^lf:(epoch|ops:|ctl:|outboxes:|probe:|layout$)", k):
        s["unknown"].append(k)


def progress_totals(s):
    tot = collections.Counter()
    for f, n in s["progress"].items():
        tot[f.split(".", 1)[1]] += n
    return tot


#---- Comparing two stores ----------------------------------------------------------------------

def _dict_diff(what, a, b, names, limit=5, detail=None):
    out = []
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a:
        out.append("%s: %d only in %s, e.g. %s" % (
            what, len(only_a), names[0], ", ".join(map(str, only_a[:limit]))))
    if only_b:
        out.append("%s: %d only in %s, e.g. %s" % (
            what, len(only_b), names[1], ", ".join(map(str, only_b[:limit]))))
    differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    if differ:
        out.append("%s: %d differ" % (what, len(differ)))
        for k in differ[:limit]:
            out.append("  %s: %s" % (k, detail(a[k], b[k], names) if detail else
                                     "%s %r, %s %r" % (names[0], a[k], names[1], b[k])))
    return out


def _fields(a, b, names):
    return "; ".join("%s: %s %r, %s %r" % (f, names[0], a.get(f), names[1], b.get(f))
                     for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f))


def compare_stores(a, b, names=("single", "cluster")):
    """The differences between two read_store results, as lines (none: equal)."""
    out = _dict_diff("lead/visitor records", a["leads"], b["leads"], names, detail=_fields)
    out += _dict_diff("aliases", a["aliases"], b["aliases"], names)
    out += _dict_diff("funnel (merged)", a["funnel"], b["funnel"], names)
    for st in sorted(set(a["stage"]) | set(b["stage"])):
        out += _dict_diff("lf:stage:%s (merged)" % st, a["stage"].get(st, {}),
                          b["stage"].get(st, {}), names)
    out += _dict_diff("lf:top (merged)", a["top"], b["top"], names)
    out += _dict_diff("progress counters (summed)", a["progress"], b["progress"], names,
                      limit=40)
    out += _dict_diff("next offsets", a["next"], b["next"], names)
    out += _dict_diff("partition event clocks (<p>.ts)", a["ts"], b["ts"], names)
    for x, n in zip((a, b), names):
        if x["outbox"]:
            out.append("%s: %d transition(s) still in an outbox" % (n, x["outbox"]))
        if x["twice"]:
            out.append("%s: stored twice: %s" % (n, "; ".join(x["twice"][:5])))
    if out:
        for x, n in zip((a, b), names):
            if x["absorbed"] or x["merging"]:
                out.append("(%s holds %d lf:absorbed:{id} hash(es) and %d lf:merging:{anon} "
                           "key(s): visitors merged, or being merged, whose own keys were not "
                           "cleared yet)" % (n, x["absorbed"], x["merging"]))
    return out


def compare_transitions(a, b, names=("single", "cluster")):
    """a, b: [(transition_id, canonical payload)] as published. Lines: missing, extra, one id
    with two contents, duplicates."""
    out = []
    ca, cb = collections.Counter(a), collections.Counter(b)
    for x, n in ((ca, names[0]), (cb, names[1])):
        dup = [t for t, k in x.items() if k > 1]
        if dup:
            out.append("transitions published more than once by %s: %d, e.g. %s" % (
                n, len(dup), dup[0][0]))
    ids_a = {t: p for t, p in ca}
    ids_b = {t: p for t, p in cb}
    out += _dict_diff("transitions (by transition_id)", ids_a, ids_b, names)
    for x, n in ((ca, names[0]), (cb, names[1])):
        per_id = collections.Counter(t for t, _ in x)
        two = [t for t, k in per_id.items() if k > 1 and len({p for i, p in x if i == t}) > 1]
        if two:
            out.append("%s published one transition_id with two contents: %s" % (n, two[:3]))
    return out


def read_transitions(env, at_least, idle_s=3.0):
    msgs = env.consume(H.TRANSITIONS_TOPIC, lambda m: len(m) >= at_least, timeout=60,
                       idle_after=idle_s)
    out = []
    for m in msgs:
        t = H.decode_transition(m.value())
        out.append((t["transition_id"], json.dumps(t, sort_keys=True)))
    return out


#---- Running ------------------------------------------------------------------------------------

def wait_assigned(runs, timeout=60):
    """Until every instance logged an assignment (the group has all of them)."""
    def cond():
        for r in runs:
            check(r.alive(), "%s exited (status %s):\n%s" % (
                r.name, r.p.returncode, r.log_text()[-1500:]))
        return all("assigned" in r.log_text() for r in runs)
    H.wait_until(cond, timeout, "every instance assigned partitions", interval=0.2)
    time.sleep(1.0)


def consumed(conns):
    return progress_totals(read_light(conns))["consumed"]


def read_light(conns):
    """Progress, outboxes and stage-set sizes only (polled while waiting)."""
    s = {"progress": collections.Counter(), "outbox": 0, "stage": collections.Counter()}
    for c in conns:
        kt = scan_types(c, "lf:wm*") + scan_types(c, "lf:outbox:*") + \
            scan_types(c, "lf:stage:*")
        pipe = c.pipeline(transaction=False)
        for k, t in kt:
            if t == "hash":
                pipe.hgetall(k)
            elif t == "zset":
                pipe.zcard(k)
            else:
                pipe.type(k)
        for (k, t), v in zip(kt, pipe.execute()):
            if WM_KEY.match(k):
                for f, n in v.items():
                    if f.decode().partition(".")[2] in COUNTERS:
                        s["progress"][f.decode()] += int(n)
            elif OUTBOX_KEY.match(k) and isinstance(v, dict):
                s["outbox"] += len(v)
            elif k.startswith("lf:stage:") and t == "zset":
                s["stage"][re.sub(SHARD + "$", "", k)] += v
    return s


def describe_progress(conns, slots=None):
    """The progress hashes (of `slots` only, else all) with their counters, per node: for a
    failure."""
    lines = []
    for c in conns:
        port = c.connection_pool.connection_kwargs.get("port")
        for k, t in sorted(scan_types(c, "lf:wm*")):
            if t != "hash" or (slots is not None and H.key_slot(k) not in slots):
                continue
            h = {f.decode(): v.decode() for f, v in c.hgetall(k).items()}
            lines.append("  node %s %s: %s" % (port, k, " ".join(
                "%s=%s" % kv for kv in sorted(h.items()) if kv[0] != "epoch")))
    return "\n".join(lines)


def wait_done(conns_of, n, runs, timeout=DONE_TIMEOUT, quiet_s=3.0):
    """Until the progress counters say n records were consumed (or more: counted twice,
    which the comparison then names), every outbox is empty and nothing changes for quiet_s
    (the decay sweep may still write). conns_of(): the clients to read (a cluster's live
    masters, asked again at every poll)."""
    state = {"last": None, "since": None}

    def cond():
        for r in runs:
            check(r.alive(), "%s exited (status %s)" % (r.name, r.p.returncode))
        conns = conns_of()
        try:
            cur = read_light(conns)
        finally:
            for c in conns:
                c.close()
        got = progress_totals(cur)["consumed"]
        if got > n and not state.get("over"):
            state["over"] = got
            print("# consumed %d > %d records produced (the comparison tells which counters)"
                  % (got, n), flush=True)
        snap = (sorted(cur["progress"].items()), cur["outbox"], sorted(cur["stage"].items()))
        if got < n or cur["outbox"]:
            state["last"] = None
            state["progress"] = (got, cur["outbox"])
            return None
        if snap != state["last"]:
            state["last"], state["since"] = snap, time.monotonic()
            return None
        return time.monotonic() - state["since"] >= quiet_s
    try:
        H.wait_until(cond, timeout, "%d records consumed, outboxes empty, quiet" % n,
                     interval=0.5)
    except H.TestFailure as e:
        raise H.TestFailure("%s; last seen (consumed, outbox entries) %s" % (
            e, state.get("progress")))


def masters_of(env):
    return lambda: [env.cluster_conn(p) for p in env.cluster_masters()]


_REF = {}


def reference():
    """One instance on one standalone redis-server over the input: its store and its
    transitions, run once per process."""
    if not _REF:
        env = H.new_env("cref")
        env.start_redis()
        env.start_broker(PARTITIONS)
        recs = the_input(env)
        path = rules(env, cluster=False)
        run = env.start_run(instance="ref", rules=path)
        wait_assigned([run])
        env.produce(recs)
        wait_done(lambda: [env.cluster_conn(env.redis_port)], len(recs), [run])
        store = read_store([env.rb])
        dumps = {k: env.rb.dump(k) for k in env.rb.scan_iter(match="lf:*", count=1000)}
        trans = read_transitions(env, max(1, progress_totals(store)["transitions"]))
        check_eq(run.stop(), 0, "reference run exit status")
        check(store["aliases"] and any(h["stage"] != "visitor" for h in store["leads"].values()),
              "the reference has aliases and known leads")
        check(trans, "the reference published transitions")
        check_eq(progress_totals(store)["consumed"], len(recs), "the reference's consumed")
        check_eq(len(set(trans)), len(trans), "transitions the reference published twice")
        check_eq(compare_stores(store, store), [], "the reference compared with itself")
        _REF.update(records=recs, store=store, transitions=trans, dumps=dumps)
    return _REF


def cluster_env(name):
    """A 3-master, 3-replica cluster, a 4-partition broker and three instances in one group,
    every one of them assigned partitions."""
    env = H.new_env(name)
    env.start_cluster(masters=3, replicas=1)
    env.wait_cluster_synced()
    env.start_broker(PARTITIONS)
    path = rules(env, cluster=True)
    runs = [env.start_run(instance=i, rules=path) for i in INSTANCES]
    wait_assigned(runs)
    return env, runs


def check_equal_to_reference(env, runs, ref, what, diagnose=None):
    """The cluster's end state against the reference's; diagnose(): more lines for a
    failure."""
    conns = [env.cluster_conn(p) for p in env.cluster_masters()]
    store = read_store(conns)
    for c in conns:
        c.close()
    diffs = compare_stores(ref["store"], store)
    trans = read_transitions(env, len(ref["transitions"]))
    diffs += compare_transitions(ref["transitions"], trans)
    if diffs and diagnose:
        diffs += diagnose()
    check(not diffs, "%s: the cluster's end state differs from the single node's:\n%s"
          % (what, "\n".join(diffs)))
    for r in runs:
        check(r.alive(), "%s still running" % r.name)
    for r in runs:
        check_eq(r.stop(), 0, "%s exit status" % r.name)
    return store


def felt(runs):
    """What the instances logged of a fault: their warnings, errors and back-to-normal lines,
    with the time (against the "# ... at" line the test printed)."""
    for r in runs:
        for line in r.log_text().splitlines():
            if re.search(r"leadflow (warn|error)|back to normal|Redis refused|outbox", line) \
                    and "no persistence" not in line:
                t, _, rest = line.partition(" leadflow ")
                print("# %s %s: %s" % (t[11:23], r.name, rest[:240]), flush=True)


def now_iso():
    return H.iso(int(time.time() * 1000))[11:23]


def leads_per_master(env):
    """{port: lead records (lf:lead:*) it holds} over the live masters."""
    out = {}
    for p in env.cluster_masters():
        c = env.cluster_conn(p)
        out[p] = sum(1 for _ in c.scan_iter(match="lf:lead:*", count=1000))
        c.close()
    return out


def produce_until_some_progress(env, recs, cut, at_least):
    """Produce recs[:cut]; wait until at_least records were consumed. Returns the count."""
    env.produce(recs[:cut])
    return H.wait_until(lambda: (lambda n: n if n >= at_least else None)(
        consumed([env.cluster_conn(p) for p in env.cluster_masters()])), 90,
        "%d records consumed" % at_least, interval=0.2)


#---- Tests --------------------------------------------------------------------------------------

def test_three_instances_on_a_cluster_equal_one_instance_on_one_node():
    ref = reference()
    env, runs = cluster_env("ceq")
    env.produce(ref["records"])
    wait_done(masters_of(env), len(ref["records"]), runs)
    store = check_equal_to_reference(env, runs, ref, "equivalence")
    per = leads_per_master(env)
    check(len(per) == 3 and all(per.values()), "leads on each of the three masters: %s" % per)
    if store["unknown"]:
        print("# keys of no kind compared: %s" % store["unknown"][:10], flush=True)


def test_a_master_killed_mid_run_and_its_replica_promoted():
    ref = reference()
    recs = ref["records"]
    env, runs = cluster_env("cfail")
    cut = len(recs) * 6 // 10
    at = produce_until_some_progress(env, recs, cut, len(recs) // 4)
    per = leads_per_master(env)
    victim = max(per, key=per.get)
    replicas = env.cluster_replicas_of(victim)
    check(replicas, "the master on %d has a replica" % victim)
    env.cluster_kill(victim)
    print("# %s: %d of %d records consumed; killed master %d (%d leads), replicas %s"
          % (now_iso(), at, len(recs), victim, per[victim], replicas), flush=True)
    env.produce(recs[cut:])
    promoted = env.wait_failover(victim, replicas)
    print("# %s: %d promoted" % (now_iso(), promoted), flush=True)
    check(promoted in env.cluster_masters(), "the promoted replica serves slots")
    wait_done(masters_of(env), len(recs), runs)
    felt(runs)
    check_equal_to_reference(env, runs, ref, "failover")


def asking_calls(env, port):
    """ASKING commands the node on port took (INFO commandstats): a client following an ASK
    sends one. (Redis 7.0 counts no ASK or MOVED replies in errorstats.)"""
    m = re.search(r"(?m)^cmdstat_asking:calls=(\d+)", env.info_text(port, "commandstats"))
    return int(m.group(1)) if m else 0


def test_slots_migrated_mid_run_ask_and_moved():
    ref = reference()
    recs = ref["records"]
    env, runs = cluster_env("cmig")
    cut1, cut2 = len(recs) * 5 // 10, len(recs) * 8 // 10
    at = produce_until_some_progress(env, recs, cut1, len(recs) // 5)
    per = leads_per_master(env)
    src = max(per, key=per.get)
    dst = [p for p in per if p != src][0]
    # The slots of src holding records that the input still to come writes, most first.
    later = collections.Counter(H.key_slot(k) for k, _, _ in recs[cut1:])
    owned = [s for s, _ in later.most_common() if env.cluster_slot_owner(s) == src]
    slots = [s for s in owned if env.cluster_keys_in_slot(src, s, 1)][:12]
    check(len(slots) >= 4, "slots of %d with leads and later events: %s" % (src, slots))
    asking0 = asking_calls(env, dst)
    env.migrate_begin(slots, src, dst)
    moved = env.migrate_keys(slots, src, dst, share=0.5)
    print("# %s: %d of %d records consumed; migrating %d slots %d -> %d, %d keys moved first"
          % (now_iso(), at, len(recs), len(slots), src, dst, moved), flush=True)
    env.produce(recs[cut1:cut2])
    # Stay half-migrated while the instances write there: 3 s at least, and until one ASK
    # was followed (an ASKING reached dst), 20 s at most.
    began = time.monotonic()
    try:
        H.wait_until(lambda: asking_calls(env, dst) > asking0, 20,
                     "an ASKING on the importing node", interval=0.2)
    except H.TestFailure:
        pass
    time.sleep(max(0.0, 3.0 - (time.monotonic() - began)))
    asking = asking_calls(env, dst) - asking0
    # The slots are dst's; the instances' slot maps still say src: MOVED.
    env.migrate_end(slots, src, dst)
    print("# %s: migration ended (SETSLOT NODE)" % now_iso(), flush=True)
    env.produce(recs[cut2:])
    wait_done(masters_of(env), len(recs), runs)
    print("# ASKING commands on %d during the migration: %d" % (dst, asking), flush=True)
    felt(runs)
    check(asking > 0, "leadflow followed an ASK during the migration (ASKING on the importing "
          "node: %d)" % asking)
    for s in slots:
        check_eq(env.cluster_slot_owner(s), dst, "owner of migrated slot %d" % s)

    def diagnose():
        return ["the progress shards of the migrated slots %s:" % slots,
                describe_progress([env.cluster_conn(p) for p in env.cluster_masters()],
                                  set(slots))]
    check_equal_to_reference(env, runs, ref, "slot migration", diagnose)


def test_a_cluster_node_without_cluster_nodes_is_refused_with_the_reason():
    env = H.new_env("cluster")
    ports = env.start_cluster(masters=3)
    env.start_broker(1)
    env.redis_port = ports[0]
    path = env.deploy_rules()
    with open(path) as f:
        text = f.read()
    check(re.search(r"(?m)^  port: %d$" % ports[0], text), "the rules point at a cluster node")
    check(not re.search(r"(?m)^\s*cluster:", text), "the rules have no redis.cluster section")
    r = subprocess.run([H.LF_BIN, "run", "-c", path, "--instance", "c1"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    err = r.stderr.decode()
    check_eq(r.returncode, 2, "run against a cluster node: exit status\n" + err[-1500:])
    check("redis.cluster.nodes" in err, "it says what to set:\n" + err[-800:])
    for p in ports:  # nothing was written anywhere in the cluster
        c = env.cluster_conn(p)
        check_eq(c.dbsize(), 0, "keys on node %d" % p)
        c.close()


def copy_sharded(ref_env_store, env):
    """The reference's store written into the cluster in the sharded layout (keys.h), shards
    by lead id instead of by slot tag, counters split over the progress hash and two shards:
    what read_store must merge back."""
    from redis.cluster import ClusterNode, RedisCluster
    src = ref_env_store
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", env.cluster_ports[0])])
    try:
        for k in src.scan_iter(match="lf:*", count=1000):
            key = k.decode()
            if ID_KEY.match(key):
                rc.restore(key, 0, src.dump(k), replace=True)
        for member, score in src.zrange("lf:top", 0, -1, withscores=True):
            m = member.decode()
            rc.zadd("lf:top:{%s}" % m, {m: score})
        for st in H.ACTIVE_STAGES:
            for member, score in src.zrange("lf:stage:" + st, 0, -1, withscores=True):
                m = member.decode()
                rc.zadd("lf:stage:%s:{%s}" % (st, m), {m: score})
        for f, n in src.hgetall("lf:funnel").items():
            f, n = f.decode(), int(n)
            if f.startswith("visitor:"):
                rc.hset("lf:funnel", f, n)
            else:
                rc.hincrby("lf:funnel:{a}", f, n // 2)
                rc.hincrby("lf:funnel:{b}", f, n - n // 2)
        for k in src.scan_iter(match="lf:wm:*", count=100):
            key = k.decode()
            for f, n in src.hgetall(k).items():
                f = f.decode()
                if f.partition(".")[2] in ("applied", "transitions"):
                    n = int(n)
                    rc.hincrby(key + ":{x}", f, n // 3)
                    rc.hincrby(key + ":{y}", f, n // 3)
                    rc.hincrby(key, f, n - 2 * (n // 3))
                else:
                    rc.hset(key, f, n)
    finally:
        rc.close()


def test_the_comparison_itself():
    """Without the cluster back end: the reference copied into a cluster in the sharded
    layout compares equal; one altered field, shard count or transition does not."""
    ref = reference()
    env = H.new_env("ccmp")
    env.start_cluster(masters=3, replicas=0)
    env.start_redis()  # the reference's keys again, to copy from
    for k, dump in ref["dumps"].items():
        env.rb.restore(k, 0, dump, replace=True)
    copy_sharded(env.rb, env)
    conns = lambda: [env.cluster_conn(p) for p in env.cluster_masters()]  # noqa: E731
    copy = read_store(conns())
    check_eq(compare_stores(ref["store"], copy), [], "the copy compares equal")
    check(len(leads_per_master(env)) == 3 and all(leads_per_master(env).values()),
          "the copy is spread over the masters")
    # One field of one lead.
    lid = sorted(k for k, h in ref["store"]["leads"].items() if h["stage"] != "visitor")[0]
    rc = env.cluster_conn(env.cluster_slot_owner(H.key_slot("lf:lead:{%s}" % lid)))
    rc.hset("lf:lead:{%s}" % lid, "zz", "1")
    d = compare_stores(ref["store"], read_store(conns()))
    check(len(d) == 2 and lid in d[1] and "zz" in d[1], "one lead field differs: %s" % d)
    rc.hdel("lf:lead:{%s}" % lid, "zz")
    rc.close()
    # One funnel shard.
    rc = env.cluster_conn(env.cluster_slot_owner(H.key_slot("lf:funnel:{a}")))
    rc.hincrby("lf:funnel:{a}", "lead", 1)
    d = compare_stores(ref["store"], read_store(conns()))
    check(d and "funnel" in d[0] and "lead" in "".join(d), "the funnel differs: %s" % d)
    rc.hincrby("lf:funnel:{a}", "lead", -1)
    rc.close()
    check_eq(compare_stores(ref["store"], read_store(conns())), [], "equal again")
    # Transitions: one missing, one twice, one with another content.
    t = ref["transitions"]
    check_eq(compare_transitions(t, list(reversed(t))), [], "order does not matter")
    d = compare_transitions(t, t[1:])
    check(d and "only in single" in d[0] and t[0][0] in d[0], "one missing: %s" % d)
    d = compare_transitions(t, t + t[:1])
    check(d and "more than once by cluster" in d[0], "one twice: %s" % d)
    other = (t[0][0], t[0][1].replace('"seq": ', '"seq": 1'))
    d = compare_transitions(t, [other] + t[1:])
    check(d and "differ" in "".join(d), "one altered: %s" % d)


if __name__ == "__main__":
    H.main([test_the_comparison_itself,
            test_three_instances_on_a_cluster_equal_one_instance_on_one_node,
            test_a_master_killed_mid_run_and_its_replica_promoted,
            test_slots_migrated_mid_run_ask_and_moved,
            test_a_cluster_node_without_cluster_nodes_is_refused_with_the_reason])
