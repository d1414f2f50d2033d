#!/usr/bin/python3
"""Scale-out on a Redis Cluster (issue 19): `leadflow run` throughput with 1, 2 and 4 instances
against one redis-server and against a local 3-master Redis Cluster (no replicas: nothing to
WAIT for; optionally 3 masters + 3 replicas with WAIT), and Redis bytes per lead at 1 M and
10 M leads on both. bench/run.sh runs it after the main bench (LF_BENCH_CLUSTER=0 skips it);
bench/README.md, "Scale-out on a Redis Cluster", explains the method and quotes a run.

Run alone:  /usr/bin/python3 bench/cluster_scale.py build/bench/leadflow [OUTDIR [WORKDIR]]
Output: one JSON line per measurement on stdout, then the tables; OUTDIR (default
bench/results/<UTC time>-cluster) gets cluster_scale.jsonl, cluster_scale.json and
cluster_scale.md. Settings (environment):
  BENCH_CS_EVENTS      records of the throughput input (600000: ~15 s on one node at one
                       instance, ~40 s on the cluster)
  BENCH_CS_LEADS       lead population of that input (1000000; Zipf 0.9 as the main bench)
  BENCH_CS_PARTITIONS  partitions of both inputs (64: 4 instances get 16 each)
  BENCH_CS_INSTANCES   instance counts (1,2,4)
  BENCH_CS_REPS        repetitions of every (store, instances) pair (2), in alternating order
  BENCH_CS_STORES      node,cluster (add cluster-r1 for 3 masters + 3 replicas, WAIT 1)
  BENCH_CS_MEM_LEADS   distinct leads of the memory input (1000000; 0 skips the memory phase)
  BENCH_CS_MEM_TARGETS lead counts to extrapolate the memory to (1000000,10000000)
  BENCH_CS_TIMEOUT_S   give up on one run after this long (600)

How it measures (the main bench's way, bench/driver.py run_leadflow): the same preloaded topic
for every run, each run with its own consumer group on an emptied store (FLUSHALL on every
primary); N `leadflow run` processes (deploy/leadflow.yaml as is, one consumer group, one
--instance each) started together; done when the progress hash's next offsets reach the
topic's high watermarks (polled every 20 ms); rate = events after the first progress write /
time from it to the last. CPU per event: utime+stime from /proc/<pid>/stat of every leadflow
(start to end), of every redis-server of the store and of the broker (over the run), / events.
Everything it starts is stopped at the end (by pid), also on failure or Ctrl-C.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import driver as D  # noqa: E402  (spawn/stop by pid, the CPU meters, the progress reader)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import lfharness as H  # noqa: E402  (free ports for cluster nodes)

SLOTS = 16384
TOP_LEADS = 10000  # redis.top_leads of deploy/leadflow.yaml (the rules every run uses)
MEM_TOPIC = "cs.mem"
# the keys a lead owns (its record, its visitors' aliases, its merge record); every other key
# is shared: a global key on one node, one shard per hash slot on a cluster (keys.h)
OWNED = ("lead:", "v:", "alias:", "absorbed:")
# shared hashes and counters whose size does not grow with the leads
FIXED_KINDS = ("funnel", "wm", "wmc", "epoch", "outbox", "ops", "ctl", "outboxes")


def env_list(name, default):
    v = os.environ.get(name, "")
    return [x.strip() for x in (v if v.strip() else default).split(",") if x.strip()]


CFG = {
    "events": D.env_int("BENCH_CS_EVENTS", 600_000),
    "leads": D.env_int("BENCH_CS_LEADS", 1_000_000),
    "partitions": D.env_int("BENCH_CS_PARTITIONS", 64),
    "instances": [int(x) for x in env_list("BENCH_CS_INSTANCES", "1,2,4")],
    "reps": D.env_int("BENCH_CS_REPS", 2),
    "stores": env_list("BENCH_CS_STORES", "node,cluster"),
    "mem_leads": D.env_int("BENCH_CS_MEM_LEADS", 1_000_000),
    "mem_targets": [int(float(x)) for x in env_list("BENCH_CS_MEM_TARGETS", "1000000,10000000")],
    "timeout_s": D.env_float("BENCH_CS_TIMEOUT_S", 600),
    "seed": D.env_int("BENCH_SEED", 1),
}
STORE_DESC = {
    "node": "one redis-server",
    "cluster": "3-master Redis Cluster, no replicas (wait_replicas 0: no WAIT)",
    "cluster-r1": "3 masters + 3 replicas, wait_replicas 1 (WAIT per batch)",
}

OUT = []  # every JSON line printed


def emit(obj, fh):
    line = json.dumps(obj, sort_keys=True)
    print(line, flush=True)
    fh.write(line + "\n")
    fh.flush()
    OUT.append(obj)


# ---- stores ----------------------------------------------------------------------------------

def wait_ping(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return True
        except redis.exceptions.RedisError:
            time.sleep(0.1)
    D.fail("redis-server on :%d did not answer" % port)


free_port_pair_bus = H.free_port_pair_bus  # a port whose cluster bus port is free too


def redis_server(work, name, port, cluster):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", d]
    if cluster:
        argv += ["--cluster-enabled", "yes", "--cluster-config-file",
                 os.path.join(d, "nodes.conf"), "--cluster-node-timeout", "5000"]
    log = open(os.path.join(work, name + ".log"), "w")
    return D.spawn(name, argv, stdout=log, stderr=subprocess.STDOUT)


class Store:
    """One redis-server, or a local cluster of masters (+ replicas)."""

    def __init__(self, work, kind):
        self.kind = kind
        self.procs = {}  # port -> Popen
        if kind == "node":
            p = D.free_port()
            self.procs[p] = redis_server(work, "redis-%d" % p, p, False)
            wait_ping(p)
            self.masters = [p]
            self.client = redis.Redis(port=p)
            return
        replicas = 1 if kind == "cluster-r1" else 0
        ports = []
        while len(ports) < 3 * (1 + replicas):
            p = free_port_pair_bus()
            if p in ports:
                continue
            self.procs[p] = redis_server(work, "redis-cluster-%d" % p, p, True)
            ports.append(p)
        for p in ports:
            wait_ping(p)
        r = subprocess.run(["redis-cli", "--cluster", "create"] +
                           ["127.0.0.1:%d" % p for p in ports] +
                           ["--cluster-replicas", str(replicas), "--cluster-yes"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            D.fail("redis-cli --cluster create: " + (r.stdout + r.stderr)[-1500:])
        deadline = time.monotonic() + 60
        while True:
            ok = all(b"cluster_state:ok" in redis.Redis(port=p).execute_command("CLUSTER", "INFO")
                     for p in ports)
            if ok:
                break
            if time.monotonic() > deadline:
                D.fail("the cluster did not reach cluster_state:ok")
            time.sleep(0.2)
        self.masters = [p for p in ports
                        if redis.Redis(port=p).info("replication")["role"] == "master"]
        self.ports = ports
        self.client = redis.cluster.RedisCluster(host="127.0.0.1", port=ports[0])
        if replicas:  # every primary's replica is attached before anything is measured
            deadline = time.monotonic() + 60
            while any(redis.Redis(port=p).info("replication")["connected_slaves"] < 1
                      for p in self.masters):
                if time.monotonic() > deadline:
                    D.fail("the replicas did not attach")
                time.sleep(0.2)

    def nodes(self):
        return ",".join("127.0.0.1:%d" % p for p in self.masters)

    def pids(self):
        return {"redis-%d" % p: pr.pid for p, pr in self.procs.items()}

    def flush(self):
        for p in self.masters:
            redis.Redis(port=p).flushall()
        if self.kind == "cluster-r1":  # the replicas follow before the next run starts
            time.sleep(1.0)

    def used_memory(self):
        return sum(int(redis.Redis(port=p).info("memory")["used_memory"]) for p in self.masters)

    def rules(self, path, events_topic):
        """deploy/leadflow.yaml with the events topic, and for a cluster redis.cluster."""
        D.write_config(path, events_topic, "leadflow.stage-transitions")
        if self.kind == "node":
            return path
        with open(path) as fh:
            text = fh.read()
        block = ("redis:\n  cluster:\n    nodes: \"%s\"\n    wait_replicas: %d\n"
                 % (self.nodes(), 1 if self.kind == "cluster-r1" else 0))
        text, n = re.subn(r"(?m)^redis:\s*(#.*)?\n", lambda m: block, text, 1)
        if n != 1:
            D.fail("no redis: section in deploy/leadflow.yaml")
        with open(path, "w") as fh:
            fh.write(text)
        return path


# ---- one throughput run ------------------------------------------------------------------------

INIT_TOPIC = "cs.init"


def init_store(lf, work, store, brokers, tag):
    """One `leadflow run` on an empty topic until the store epoch is in place, then stopped.
    On a cluster, instances that start together on an empty store race: the first sets the
    epoch of its progress hash's slot, then of the 16383 others one by one; a second that
    reads the slots in between finds the anchor set and the rest missing, declares "Redis lost
    data", sets a new epoch everywhere and replays from the start (seen with 2 instances). A
    store whose epoch exists is what instances of a running deployment start against."""
    conf = store.rules(os.path.join(work, tag + ".init.yaml"), INIT_TOPIC)
    err = os.path.join(work, tag + ".init.err")
    extra = [] if store.kind != "node" else ["--redis", "127.0.0.1:%d" % store.masters[0]]
    with open(err, "w") as e:
        p = D.spawn("leadflow", [lf, "run", "-c", conf, "--brokers", brokers, "--group",
                                 "cs-init-" + tag, "--instance", "cs-init-" + tag,
                                 "--exit-idle-ms", "3600000"] + extra,
                    stdout=subprocess.DEVNULL, stderr=e)
    ok = D.wait_for_line(err, "assigned", 60, p)
    deadline = time.monotonic() + 60
    while ok:
        if store.kind == "node":
            done = store.client.exists("lf:epoch")
        else:
            done = sum(redis.Redis(port=q).dbsize() for q in store.masters) >= SLOTS
        if done:
            break
        if time.monotonic() > deadline or p.poll() is not None:
            ok = False
        time.sleep(0.1)
    D.stop(p, 30)
    if not ok:
        with open(err, errors="replace") as fh:
            D.fail("%s: the store epoch was not set:\n%s" % (tag, fh.read()[-1500:]))


def run_instances(lf, work, store, brokers, broker_pid, topic, total, n, tag):
    """n `leadflow run` processes over the preloaded topic on the emptied store."""
    store.flush()
    time.sleep(0.3)
    init_store(lf, work, store, brokers, tag)
    group = "cs-" + tag
    conf = store.rules(os.path.join(work, tag + ".yaml"), topic)
    extra = [] if store.kind != "node" else ["--redis", "127.0.0.1:%d" % store.masters[0]]
    procs = dict(store.pids(), devbroker=broker_pid)
    for q in store.masters:
        redis.Redis(port=q).config_resetstat()
    m = D.Meter(procs).start()
    lps, errs = [], []
    for i in range(n):
        err = os.path.join(work, "%s.i%d.err" % (tag, i))
        errs.append(err)
        with open(os.path.join(work, "%s.i%d.out" % (tag, i)), "w") as o, open(err, "w") as e:
            lps.append(D.spawn("leadflow", [lf, "run", "-c", conf, "--brokers", brokers,
                                            "--group", group, "--instance", "%s-i%d" % (tag, i),
                                            "--exit-idle-ms", "3600000"] + extra,
                               stdout=o, stderr=e))
    t_spawn = time.monotonic()
    t_first = t_last = None
    n_first = nxt = 0
    deadline = time.monotonic() + CFG["timeout_s"]
    died = None
    while time.monotonic() < deadline:
        died = next((p for p in lps if p.poll() is not None), None)
        if died is not None:
            break
        try:
            nxt, _ = D.lf_progress(store.client, group, topic)
        except redis.exceptions.RedisError:
            pass  # a poll that failed: the next one counts
        now = time.monotonic()
        if nxt and t_first is None:
            t_first, n_first = now, nxt
        if nxt >= total:
            t_last = now
            break
        time.sleep(0.02)
    m.stop()
    lf_cpu = [D.proc_cpu(p.pid) for p in lps]
    cmds = {}
    for q in store.masters:
        for k, v in redis.Redis(port=q).info("commandstats").items():
            c = cmds.setdefault(k[len("cmdstat_"):], [0, 0])
            c[0] += v["calls"]
            c[1] += v["usec"]
    for p in lps:
        D.stop(p, 60)
    if died is not None:
        with open(errs[lps.index(died)], errors="replace") as fh:
            D.fail("%s: an instance exited (code %s) after %d of %d events:\n%s"
                   % (tag, died.returncode, nxt, total, fh.read()[-1500:]))
    complete = t_last is not None
    if not complete:
        t_last = time.monotonic()
    span = (t_last - t_first) if t_first else 0.0
    res = m.result(nxt)
    redis_cpu = sum(v for k, v in res["cpu_s"].items() if k.startswith("redis-") and v)
    lf_sum = sum(c for c in lf_cpu if c)
    out = {
        "kind": "throughput", "store": store.kind, "instances": n, "tag": tag,
        "events": nxt, "complete": complete, "seconds": round(span, 3),
        "eps": round((nxt - n_first) / span, 1) if span > 0 else 0.0,
        # from the start of the processes to the first progress write: connecting, the group
        # join, and per assigned partition its pending transitions (on a cluster: one HGETALL
        # per hash slot, 16384 per partition)
        "startup_s": round(t_first - t_spawn, 3) if t_first else None,
        "cpu_us_per_event": {
            "leadflow": round(lf_sum * 1e6 / nxt, 2) if nxt else None,
            "redis": round(redis_cpu * 1e6 / nxt, 2) if nxt else None,
            "devbroker": res["cpu_us_per_event"].get("devbroker"),
        },
        # what the primaries spent their command time on, per event (EXEC's time includes
        # the commands queued in it), the 8 biggest; calls per event next to it
        "redis_commands": {k: {"us_per_event": round(v[1] / nxt, 2) if nxt else None,
                               "calls_per_event": round(v[0] / nxt, 3) if nxt else None}
                           for k, v in sorted(cmds.items(), key=lambda kv: -kv[1][1])[:8]},
        "leadflow_cpu_s": [round(c, 3) if c is not None else None for c in lf_cpu],
        "redis_cpu_s": {k: v for k, v in res["cpu_s"].items() if k.startswith("redis-")},
        "wall_s": res["wall_s"], "machine_busy_cores": res["machine_busy_cores"],
        "other_processes_cores": round(max(0.0, res["other_processes_cores"] - lf_sum
                                           / res["wall_s"]), 2) if res["wall_s"] else None,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }
    warn = []
    for e in errs:
        with open(e, errors="replace") as fh:
            warn += [ln.strip() for ln in fh if " error: " in ln]
    if warn:
        out["errors"] = warn[:5]
    return out


# ---- memory ----------------------------------------------------------------------------------

def key_kind(k, prefix=b"lf:"):
    """The class of a key: an owned one (lead, v, alias, absorbed) or a shared one's name
    (top, stage:mql, funnel, wm, wmc, outbox, epoch, ops, ...), shard tag dropped."""
    if not k.startswith(prefix):
        return "other"
    rest = k[len(prefix):]
    for o in OWNED:
        if rest.startswith(o.encode()):
            return o[:-1]
    rest = re.sub(rb":\{[0-9a-z]{1,4}\}$", b"", rest)
    parts = rest.decode(errors="replace").split(":")
    if parts[0] == "stage" and len(parts) > 1:
        return "stage:" + parts[1]
    return parts[0]


def scan_keys(store):
    """{kind: [(node port, key)]} over every primary."""
    out = {}
    for p in store.masters:
        c = redis.Redis(port=p)
        for k in c.scan_iter(count=5000):
            out.setdefault(key_kind(k), []).append((p, k))
    return out


def usage(store, items):
    """MEMORY USAGE ... SAMPLES 0 of (port, key) pairs, pipelined per node: [bytes]."""
    by = {}
    for i, (p, k) in enumerate(items):
        by.setdefault(p, []).append((i, k))
    res = [0] * len(items)
    for p, lst in by.items():
        c = redis.Redis(port=p)
        for j in range(0, len(lst), 2000):
            pipe = c.pipeline(transaction=False)
            for _, k in lst[j:j + 2000]:
                pipe.memory_usage(k, samples=0)
            for (i, _), v in zip(lst[j:j + 2000], pipe.execute()):
                res[i] = int(v or 0)
    return res


def zinfo(store, items):
    """ZCARD and encoding of (port, key) pairs."""
    by = {}
    for i, (p, k) in enumerate(items):
        by.setdefault(p, []).append((i, k))
    card, enc = [0] * len(items), [""] * len(items)
    for p, lst in by.items():
        c = redis.Redis(port=p)
        pipe = c.pipeline(transaction=False)
        for _, k in lst:
            pipe.zcard(k)
            pipe.object("encoding", k)
        out = pipe.execute()
        for n, (i, _) in enumerate(lst):
            card[i], enc[i] = int(out[2 * n]), (out[2 * n + 1] or b"").decode()
    return card, enc


SUBST = "abcdefghijklmnopqrstvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def scaled_zset_bytes(store, port, key, factor, cap=None):
    """MEMORY USAGE of a scratch sorted set, in the key's own slot, holding round(members x
    factor) members: the key's members, and copies of them with the first byte replaced (same
    length, same scores): what the set would take at factor times the leads."""
    c = redis.Redis(port=port)
    members = c.zrange(key, 0, -1, withscores=True)
    want = int(round(len(members) * factor))
    if cap:
        want = min(want, max(cap, len(members)))
    if not members or want <= 0:
        return 0
    tag = re.search(rb"(\{[0-9a-z]{1,4}\})$", key)
    scratch = b"bench:cs-scratch" + (tag.group(1) if tag else b"")
    c.delete(scratch)
    pipe = c.pipeline(transaction=False)
    n, j = 0, 0
    while n < want:
        chunk = {}
        for m, s in members:
            if n >= want:
                break
            chunk[m if j == 0 else SUBST[j % len(SUBST)].encode() + m[1:]
                  + (b"" if j < len(SUBST) else str(j // len(SUBST)).encode())] = s
            n += 1
        pipe.zadd(scratch, chunk)
        j += 1
        if len(pipe) > 50:
            pipe.execute()
    pipe.execute()
    b = int(c.memory_usage(scratch, samples=0) or 0)
    c.delete(scratch)
    return b


def scaled_hash_bytes(store, port, key, union, want):
    """MEMORY USAGE of a scratch hash in the key's slot with the key's fields plus others of
    `union` up to `want` fields (values as seen)."""
    c = redis.Redis(port=port)
    h = c.hgetall(key)
    for f, v in union.items():
        if len(h) >= want:
            break
        h.setdefault(f, v)
    tag = re.search(rb"(\{[0-9a-z]{1,4}\})$", key)
    scratch = b"bench:cs-scratch" + (tag.group(1) if tag else b"")
    c.delete(scratch)
    if h:
        c.hset(scratch, mapping=h)
    b = int(c.memory_usage(scratch, samples=0) or 0)
    c.delete(scratch)
    return b


def measure_memory(lf, work, store, brokers, broker_pid, total, gen):
    """Process the memory input on the emptied store, then split used_memory (sum over the
    primaries) into the keys leads own and the shared keys, and extrapolate (see README)."""
    store.flush()
    time.sleep(0.5)
    empty = store.used_memory()  # run_instances flushes again: the same empty store
    run = run_instances(lf, work, store, brokers, broker_pid, MEM_TOPIC, total, 1,
                        "mem-" + store.kind)
    time.sleep(1.0)  # the last writes' WAIT and the heartbeat settle
    after = store.used_memory()
    delta = after - empty
    keys = scan_keys(store)
    counts = {k: len(v) for k, v in keys.items()}
    leads = counts.get("lead", 0)
    shared = {k: v for k, v in keys.items() if k not in [o[:-1] for o in OWNED]}
    kinds = {}
    shared_bytes = 0
    for kind, items in sorted(shared.items()):
        u = usage(store, items)
        entry = {"keys": len(items), "bytes": sum(u)}
        shared_bytes += entry["bytes"]
        if kind == "top" or kind.startswith("stage:"):
            card, enc = zinfo(store, items)
            entry["members"] = sum(card)
            # capped: 90 % or more of the non-empty sets hold the largest count
            full = [c for c in card if c]
            entry["cap"] = max(full) if full else 0
            entry["capped"] = bool(full) and sum(c == entry["cap"] for c in full) >= 0.9 * len(full)
            entry["encodings"] = {e: enc.count(e) for e in set(enc)}
            entry["_items"], entry["_usage"], entry["_card"] = items, u, card
        else:  # hashes (funnel, progress counters): fields and encoding of a sample
            pick = random.Random(7).sample(items, min(64, len(items)))
            lens, encs, union, hk = [], [], {}, []
            for p, k in pick:
                c = redis.Redis(port=p)
                if c.type(k) == b"hash":
                    h = c.hgetall(k)
                    lens.append(len(h))
                    encs.append((c.object("encoding", k) or b"").decode())
                    union.update(h)
                    hk.append((p, k))
            if lens:
                entry["sample_fields_avg"] = round(sum(lens) / len(lens), 1)
                entry["sample_encodings"] = {x: encs.count(x) for x in set(encs)}
                entry["fields_seen"] = len(union)
                entry["_union"], entry["_hk"] = union, hk
        kinds[kind] = entry
    owned_bytes = delta - shared_bytes
    zmax = int(redis.Redis(port=store.masters[0]).config_get("zset-max-listpack-entries")
               .get("zset-max-listpack-entries", 128))
    ests = []
    for target in CFG["mem_targets"]:
        f = target / leads if leads else 0
        est_shared = 0
        per_kind = {}
        for kind, e in kinds.items():
            if "_union" in e and store.kind != "node" and e["keys"] > 100:
                # per-slot progress counters and funnel: a field per (partition, counter) or
                # stage that some lead of the slot wrote. Of the U fields seen over the sample,
                # a shard holds a share s now; at f times the leads a field is missing with
                # probability (1 - s)^f: sampled shards rebuilt with U (1 - (1 - s)^f) fields
                # (in a scratch key of their slot) give the bytes per shard at the target
                nkeys = max(e["keys"], min(SLOTS, int(round(e["keys"] * f))))
                U = len(e["_union"])
                fill = e["sample_fields_avg"] / U if U else 1.0
                want = min(U, int(round(U * (1 - (1 - fill) ** f)))) if U else 0
                per = [scaled_hash_bytes(store, p, k, e["_union"], want) for p, k in e["_hk"]]
                b = int(sum(per) / len(per) * nkeys)
                how = ("%d of %d fields seen per shard now, %d at the target: %d shards of "
                       "%.0f bytes" % (round(e["sample_fields_avg"]), U, want, nkeys,
                                       sum(per) / len(per)))
            elif "_items" not in e and store.kind != "node" and e["keys"] > 100:
                # the per-slot epochs: one small string per slot
                nkeys = min(SLOTS, int(round(e["keys"] * f)))
                b = int(e["bytes"] / e["keys"] * max(nkeys, e["keys"]))
                how = "does not grow with leads; %d shards" % max(nkeys, e["keys"])
            elif "_items" not in e:  # counters, progress, outboxes, heartbeat: not per lead
                b = e["bytes"]
                how = "as measured (does not grow with leads)"
            elif kind == "top" and e["members"] < 0.9 * leads and e["capped"]:
                # redis.top_leads on one node; on a cluster top_leads / 16384 + 16 per shard
                # (store_redis_int.h lf_sr_top_cap): full shards, the same at more leads
                b = int(e["bytes"] / e["keys"] * (SLOTS if store.kind != "node" else 1)) \
                    if store.kind != "node" else e["bytes"]
                how = "capped (%d members per set): as measured" % e["cap"]
            else:
                # more slots get a shard (a cluster has at most 16384 of a kind); each of them
                # then holds fk times the members a shard holds now (f x the leads over
                # nkeys / keys shards). A sample of the sets (all of them on one node), each
                # rebuilt at fk times its members in a scratch key of its own slot, gives the
                # growth of the bytes per set
                nkeys = e["keys"]
                if store.kind != "node" and nkeys < SLOTS:
                    nkeys = min(SLOTS, int(round(nkeys * f)))
                fk = f * e["keys"] / nkeys if nkeys else f
                idx = [i for i in range(len(e["_items"])) if e["_card"][i] > 0]
                pick = random.Random(7).sample(idx, min(24, len(idx)))
                if sum(e["_card"][i] for i in pick) * fk > 3_000_000:
                    ratio = fk  # big sets are skiplists already: bytes grow with the members
                    how = "skiplist: x%.2f" % fk
                else:
                    s0 = sum(e["_usage"][i] for i in pick)
                    # lf:top holds at most its cap per set (store_redis_int.h lf_sr_top_cap)
                    cap = None
                    if kind == "top":
                        cap = TOP_LEADS if store.kind == "node" else min(
                            TOP_LEADS, TOP_LEADS // SLOTS + 16)
                    s1 = sum(scaled_zset_bytes(store, *e["_items"][i], fk, cap) for i in pick)
                    ratio = s1 / s0 if s0 else fk
                    how = ("%d of %d sets rebuilt at x%.2f members: x%.2f bytes; %d sets"
                           % (len(pick), len(idx), fk, ratio, nkeys))
                b = int(e["bytes"] / e["keys"] * nkeys * ratio) if e["keys"] else 0
            per_kind[kind] = {"bytes": b, "how": how}
            est_shared += b
        owned = int(owned_bytes * f)
        ests.append({"leads": target, "factor": round(f, 4), "bytes": owned + est_shared,
                     "gib": round((owned + est_shared) / 2 ** 30, 3),
                     "owned_bytes": owned, "shared_bytes": est_shared,
                     "bytes_per_lead": round((owned + est_shared) / target, 1),
                     "shared": per_kind})
    for e in kinds.values():
        for k in ("_items", "_usage", "_card", "_union", "_hk"):
            e.pop(k, None)
    return {
        "kind": "memory", "store": store.kind, "leads": leads, "key_counts": counts,
        "events": total, "gen": gen, "run": {k: run[k] for k in ("eps", "seconds", "complete",
                                                                 "cpu_us_per_event")},
        "used_memory_empty": empty, "used_memory_after": after, "delta": delta,
        "shared_bytes": shared_bytes, "owned_bytes": owned_bytes,
        "bytes_per_lead_measured": round(delta / leads, 1) if leads else None,
        "owned_bytes_per_lead": round(owned_bytes / leads, 1) if leads else None,
        "shared": kinds, "zset_max_listpack_entries": zmax, "extrapolated": ests,
    }


# ---- report ----------------------------------------------------------------------------------

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def table(results, mems, meta):
    L = []
    L.append("### Throughput: %d events (%d leads, Zipf 0.9), %d partitions, %d run(s) each"
             % (meta.get("events", CFG["events"]), CFG["leads"], CFG["partitions"], CFG["reps"]))
    L.append("")
    L.append("| store | instances | events/s (median) | runs | leadflow µs/ev | Redis µs/ev "
             "| broker µs/ev | other procs (cores) | start-up s |")
    L.append("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for st in CFG["stores"]:
        for n in CFG["instances"]:
            rs = [r for r in results if r["store"] == st and r["instances"] == n]
            if not rs:
                continue
            cu = lambda k: median([r["cpu_us_per_event"][k] for r in rs])  # noqa: E731
            L.append("| %s | %d | %s | %s | %.1f | %.1f | %.1f | %.2f | %.1f |" % (
                st, n, "{:,.0f}".format(median([r["eps"] for r in rs])),
                " / ".join("{:,.0f}".format(r["eps"]) + ("" if r["complete"] else "*")
                           for r in rs), cu("leadflow"), cu("redis"), cu("devbroker"),
                median([r["other_processes_cores"] for r in rs]),
                median([r["startup_s"] for r in rs]) or 0))
    L.append("")
    L.append("(µs of CPU per event summed over the processes of a kind: every leadflow "
             "instance, every redis-server of the store (replicas too); * = incomplete; "
             "start-up: from the processes' start to the first progress write, not in the rate)")
    L.append("")
    L.append("Redis command time per event (INFO commandstats summed over the primaries, "
             "first run at 1 instance; EXEC includes the commands queued in it):")
    L.append("")
    for st in CFG["stores"]:
        rs = [r for r in results if r["store"] == st and r["instances"] == min(CFG["instances"])]
        if rs:
            L.append("- %s: %s" % (st, ", ".join(
                "%s %.2f µs (%.2f calls)" % (k, v["us_per_event"], v["calls_per_event"])
                for k, v in rs[0]["redis_commands"].items())))
    for m in mems:
        L.append("")
        L.append("### Redis memory, %s: %s leads written by leadflow (%d events)"
                 % (m["store"], "{:,}".format(m["leads"]), m["events"]))
        L.append("")
        L.append("used_memory delta %s bytes = %.1f per lead; keys leads own %.1f per lead; "
                 "shared keys %s bytes (%s)" % (
                     "{:,}".format(m["delta"]), m["bytes_per_lead_measured"] or 0,
                     m["owned_bytes_per_lead"] or 0, "{:,}".format(m["shared_bytes"]),
                     ", ".join("%s: %d keys %s B%s" % (
                         k, v["keys"], "{:,}".format(v["bytes"]),
                         (" %s members" % "{:,}".format(v["members"])) if "members" in v else
                         (" ~%s fields each" % v["sample_fields_avg"]) if "sample_fields_avg" in v
                         else "")
                         for k, v in sorted(m["shared"].items()))))
        L.append("")
        L.append("| leads | Redis memory | bytes per lead | of which shared keys |")
        L.append("| ---: | ---: | ---: | ---: |")
        for e in m["extrapolated"]:
            L.append("| %s | %.2f GiB | %.0f | %.1f MB |" % (
                "{:,}".format(e["leads"]), e["gib"], e["bytes_per_lead"],
                e["shared_bytes"] / 1e6))
    return "\n".join(L)


# ---- main ------------------------------------------------------------------------------------

def main():
    lf = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build",
                                                                             "leadflow")
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        ROOT, "bench", "results", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-cluster")
    own_work = len(sys.argv) <= 3
    work = tempfile.mkdtemp(prefix="leadflow-cs.") if own_work else sys.argv[3]
    os.makedirs(outdir, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    D.PIDS_FILE = os.path.join(work, "pids")

    def handler(sig, frame):
        raise SystemExit(130)
    import signal
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    jl = open(os.path.join(outdir, "cluster_scale.jsonl"), "w")
    meta = {"kind": "config", "config": CFG, "stores": {s: STORE_DESC.get(s, s)
                                                        for s in CFG["stores"]},
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "cores": os.cpu_count(), "redis_server": D.cmd_out(["redis-server", "--version"]),
            "leadflow_git": D.cmd_out(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results, mems = [], []
    try:
        emit(meta, jl)
        kport, cport = D.free_port(), D.free_port()
        dbo = open(os.path.join(work, "cs-devbroker.out"), "w")
        dbe = open(os.path.join(work, "cs-devbroker.err"), "w")
        db = D.spawn("devbroker", [lf, "devbroker", "--port", str(kport), "--partitions",
                                   str(CFG["partitions"]), "--control-port", str(cport),
                                   "--topics", INIT_TOPIC], stdout=dbo, stderr=dbe)
        if not D.wait_for_line(os.path.join(work, "cs-devbroker.out"), "bootstrap.servers=",
                               30, db):
            D.fail("devbroker did not start")
        # the memory input: 2 x 1 M events of distinct leads spread evenly; twice the
        # partitions of the throughput input keep each under the mock's ~5 MiB retention
        rep = D.control(cport, "topic-create %s %d" % (MEM_TOPIC, 2 * CFG["partitions"]))
        if not rep.startswith("ok"):
            D.fail("devbroker topic-create %s: %s" % (MEM_TOPIC, rep))
        brokers = "127.0.0.1:%d" % kport
        stores = {s: Store(work, s) for s in CFG["stores"]}
        D.log("cluster_scale: stores %s" % {s: st.masters for s, st in stores.items()})

        def preload(topic, leads, events, extra):
            t0 = time.monotonic()
            stats = os.path.join(work, "cs-gen-%s.json" % topic)
            g = subprocess.run([lf, "gen", "--leads", str(leads), "--events", str(events),
                                "--seed", str(CFG["seed"]), "--brokers", brokers, "--topic",
                                topic, "--stats", stats, "--quiet", "-X", "linger.ms=100"]
                               + extra, capture_output=True, text=True)
            if g.returncode != 0:
                D.fail("leadflow gen: " + g.stderr[-1000:])
            wm = D.watermarks(cport, topic)
            if any(lo for lo, hi in wm.values()):
                D.fail("the mock broker dropped messages of %s (retention ~5 MiB per "
                       "partition): fewer events or more partitions" % topic)
            total = sum(hi for lo, hi in wm.values())
            if total != events:
                D.fail("%s holds %d messages, %d generated: rerun" % (topic, total, events))
            with open(stats) as fh:
                gs = json.load(fh)
            D.log("cluster_scale: %s preloaded, %d events in %.0f s (largest partition %d)"
                  % (topic, total, time.monotonic() - t0, max(hi for _, hi in wm.values())))
            return total, gs

        total, _ = preload("leadflow.events", CFG["leads"], CFG["events"], [])
        meta["events"] = total
        order = [(s, n) for n in CFG["instances"] for s in CFG["stores"]]
        for rep in range(CFG["reps"]):
            for s, n in (order if rep % 2 == 0 else list(reversed(order))):
                tag = "%s-n%d-r%d" % (s, n, rep)
                D.log("cluster_scale: %s ..." % tag)
                r = run_instances(lf, work, stores[s], brokers, db.pid, "leadflow.events",
                                  total, n, tag)
                r["rep"] = rep
                emit(r, jl)
                results.append(r)
        for s in stores:
            stores[s].flush()
        if CFG["mem_leads"] > 0:
            # uniform activity (Zipf 0), no anonymous phase: known leads only; events = 2 x
            # population touches 1 - e^-2 = 86.5 % of it, so population = leads / 0.865
            pop = int(CFG["mem_leads"] / 0.8647) + 1
            mtotal, gs = preload(MEM_TOPIC, pop, 2 * pop, ["--zipf", "0", "--anon-rate", "0"])
            for s in [x for x in CFG["stores"] if x != "cluster-r1"]:  # replicas: copies
                D.log("cluster_scale: memory on %s ..." % s)
                m = measure_memory(lf, work, stores[s], brokers, db.pid, mtotal,
                                   {k: gs.get(k) for k in ("events", "valid", "leads",
                                                           "duplicates", "bad")})
                emit(m, jl)
                mems.append(m)
                stores[s].flush()
    finally:
        D.stop_all()
        meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        text = table(results, mems, meta) if (results or mems) else "(no results)"
        print(text, flush=True)
        with open(os.path.join(outdir, "cluster_scale.md"), "w") as fh:
            stores_txt = "; ".join("%s = %s" % kv for kv in meta["stores"].items())
            fh.write("# Scale-out on a Redis Cluster\n\nload average at start %s, at end %s; "
                     "stores: %s\n\n%s\n" % (" ".join(meta["loadavg_start"]),
                                             " ".join(meta["loadavg_end"]), stores_txt, text))
        with open(os.path.join(outdir, "cluster_scale.json"), "w") as fh:
            json.dump({"config": meta, "throughput": results, "memory": mems}, fh, indent=2)
        jl.close()
        D.log("cluster_scale: results in " + outdir)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
