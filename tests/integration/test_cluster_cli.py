"""`leadflow top`, `stats`, `inspect` and `reload` on a Redis Cluster: same data, same answer.
A real run on one redis-server (a generated input), then every key copied into a local
3-master cluster under the cluster layout of include/leadflow/keys.h (lead, visitor and alias
keys as they are, with their TTLs; each member of lf:top and lf:stage:* into the shard of its
lead's slot, <key>:{t_k}; lf:funnel and the progress counters split over shards, which the
commands must sum). The commands must print the same on the cluster as on the single node.
Also: the commands that cannot run on a cluster yet refuse at once (exit 2, the reason), and
a cluster no node of which answers is an error a user can act on.
Until the cluster back end writes a cluster itself, this copy is how its data is made; it
stays the "same data, same answer" check after.
Run: LF_BIN=build/leadflow python3 tests/integration/test_cluster_cli.py"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402

SLOTS = 16384
COUNTERS = ("consumed", "applied", "duplicates", "dead", "filtered", "transitions")


#---- The cluster layout, computed as src/core/cluster_slot.c does ----------------------------

crc16 = H.crc16
key_slot = H.key_slot


TAGS = H.slot_tags()


def shard(key, slot):
    return "%s:{%s}" % (key, TAGS[slot])


def lead_slot(member, prefix="lf:"):
    return key_slot("%slead:{%s}" % (prefix, member.decode() if isinstance(member, bytes)
                                     else member))


#---- Making the data ---------------------------------------------------------------------------

def cluster_rules(env, ports):
    """The single node's rules with redis.cluster.nodes naming two of the masters."""
    with open(env.rules_path) as f:
        text = f.read()
    nodes = ",".join("127.0.0.1:%d" % p for p in ports[:2])
    text = text.replace("\nredis:\n", "\nredis:\n  cluster:\n    nodes: \"%s\"\n" % nodes, 1)
    path = env.path("cluster.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def standalone_run(env, leads=300, events=3000, seed=41):
    """A real run on one redis-server, stopped once settled (nothing changes after)."""
    env.start_redis()
    env.start_broker(2)
    env.deploy_rules()
    n = env.generate(leads, events, seed)
    run = env.start_run("cl-cli")
    env.wait_consumed(n, timeout=120, proc=run)
    env.settle(run)
    run.stop()
    return n


def copy_to_cluster(src, rc):
    """Every key of src into the cluster rc under the cluster layout. Returns what was made:
    {"shards": {key: set of slots}, "split": fields summed from several shards}."""
    made = {"shards": {}, "split": 0}

    def note(key, slot):
        made["shards"].setdefault(key, set()).add(slot)

    wm_counter = re.compile(rb"^\d+\.(%s)$" % b"|".join(c.encode() for c in COUNTERS))
    for key in src.scan_iter(count=1000):
        k = key.decode()
        t = src.type(key).decode()
        if k == "lf:top" or k.startswith("lf:stage:"):
            for m, s in src.zrange(key, 0, -1, withscores=True):
                slot = lead_slot(m)
                rc.zadd(shard(k, slot), {m: s})
                note(k, slot)
        elif k == "lf:funnel":
            # Counts, not per lead: each split over three shards (sum kept).
            for f, v in src.hgetall(key).items():
                v, base = int(v), crc16(f)
                parts = [v // 3, v // 3, v - 2 * (v // 3)]
                for i, part in enumerate(parts):
                    slot = (base + i * 5461) % SLOTS
                    rc.hincrby(shard(k, slot), f, part)
                    note(k, slot)
                made["split"] += 1
        elif k.startswith("lf:wm:"):
            # Next offsets, event times, epoch: unsharded. Counters: a third unsharded, the
            # rest over two shards.
            for f, v in src.hgetall(key).items():
                if not wm_counter.match(f):
                    rc.hset(k, f, v)
                    continue
                v, base = int(v), crc16(f)
                rc.hincrby(k, f, v // 3)
                for i, part in enumerate((v // 3, v - 2 * (v // 3))):
                    slot = (base + 1000 + i * 7000) % SLOTS
                    rc.hincrby(shard(k, slot), f, part)
                    note(k, slot)
                made["split"] += 1
        elif k.startswith("lf:outbox:") and t == "hash":
            # The cluster layout: one shard per slot, fields "<partition>:<transition_id>".
            topic, part = k[len("lf:outbox:"):].rsplit(":", 1)
            for f, v in src.hgetall(key).items():
                fs = f if isinstance(f, str) else f.decode()
                rc.hset(shard("lf:outbox:" + topic, crc16(f) % SLOTS), part + ":" + fs, v)
        elif k == "lf:epoch":
            rc.set(shard(k, 0), src.get(key))
        else:
            # Per-lead keys (lead, v, alias, absorbed) and the unsharded ones (ops, ctl,
            # active): as they are, with their TTLs.
            at = src.execute_command("PEXPIRETIME", key)
            rc.restore(key, at if at > 0 else 0, src.dump(key), replace=True, absttl=at > 0)
    return made


def cluster_client(ports):
    return RedisCluster(host="127.0.0.1", port=ports[0], socket_timeout=10)


#---- Comparing ---------------------------------------------------------------------------------

def normalize(text):
    """What legitimately differs between two invocations a moment apart: ages and TTLs."""
    text = re.sub(r"\b\d+(?:ms|d\d*h?|h\d*m?|m\d*s?|s)\b", "<dur>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z \(wall clock\)", "<now> (wall clock)", text)
    # now + PTTL: the same expiry time, give or take the milliseconds between the two reads.
    text = re.sub(r"expires in <dur> \([^)]*\)", "expires in <dur> (<time>)", text)
    return text


def json_norm(o):
    """--json: drop the values that depend on the wall clock of the invocation."""
    volatile = {"now_ms", "now", "hb_age_ms", "heartbeat_age_ms", "age_ms", "pttl_ms", "ttl_ms",
                "expires_in_ms", "uptime_s"}
    if isinstance(o, dict):
        return {k: json_norm(v) for k, v in o.items() if k not in volatile}
    if isinstance(o, list):
        return [json_norm(v) for v in o]
    return o


def same(env, args, single, cluster, what, as_json=False):
    """Run args against both rules files; the outputs and exit statuses must agree."""
    a = env.run_cli(args + ["-c", single], timeout=60)
    b = env.run_cli(args + ["-c", cluster], timeout=60)
    check_eq(b[0], a[0], "%s: exit status on the cluster (stderr %s)" % (what, b[2].strip()))
    check(a[1].strip() or a[2].strip(), "%s printed something on the single node" % what)
    check_eq(b[2], a[2], "%s: the messages on stderr" % what)
    if as_json:
        ja, jb = json_norm(json.loads(a[1])), json_norm(json.loads(b[1]))
        if ja != jb:
            diff = [k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)]
            raise H.TestFailure("%s: --json differs in %s:\nsingle  %s\ncluster %s" % (
                what, diff, {k: ja.get(k) for k in diff}, {k: jb.get(k) for k in diff}))
    else:
        na, nb = normalize(a[1]), normalize(b[1])
        if na != nb:
            la, lb = na.splitlines(), nb.splitlines()
            bad = [(x, y) for x, y in zip(la, lb) if x != y][:5]
            raise H.TestFailure("%s: the output differs (%d vs %d lines), first lines apart:\n%s"
                                % (what, len(la), len(lb),
                                   "\n".join("single  %r\ncluster %r" % p for p in bad)))
    return a


#---- Tests -------------------------------------------------------------------------------------

def test_same_data_same_answer():
    env = H.new_env("clcli")
    standalone_run(env)
    single = env.rules_path
    ports = env.start_cluster(masters=3)
    rc = cluster_client(ports)
    # The tags: the slot each names, as the cluster computes it.
    for k in (0, 1, 2, 100, 5460, 5461, 10922, 16383, 12345):
        check_eq(rc.cluster_keyslot("lf:top:{%s}" % TAGS[k]), k, "the slot of tag %r" % TAGS[k])
    made = copy_to_cluster(env.rb, rc)
    check(len(made["shards"].get("lf:top", ())) > 50,
          "lf:top is spread over many shards: %d" % len(made["shards"].get("lf:top", ())))
    check(made["split"] > 10, "fields split over shards: %d" % made["split"])
    cluster = cluster_rules(env, ports)
    check_eq(rc.exists("lf:top"), 0, "no unsharded lf:top on the cluster")

    at = str(int(time.time() * 1000))
    same(env, ["top", "--at", at], single, cluster, "top")
    same(env, ["top", "-n", "40", "--at", at], single, cluster, "top -n 40")
    same(env, ["top", "25", "--at", at, "--json"], single, cluster, "top --json", as_json=True)
    stages = {s.split(":")[-1] for s in made["shards"] if s.startswith("lf:stage:")}
    for st in sorted(stages) + ["customer"]:
        same(env, ["top", "--stage", st, "--at", at], single, cluster, "top --stage " + st)
    same(env, ["stats"], single, cluster, "stats")
    j = same(env, ["stats", "--json"], single, cluster, "stats --json", as_json=True)
    check("consumed" in j[1] and "funnel" in j[1], "stats --json has progress and funnel")

    # inspect: a lead, a visitor, an anonymousId linked to a lead.
    src = env.r
    lead = next(m for m in src.zrevrange("lf:top", 0, 0))
    visitor = next((k[len("lf:v:{"):-1] for k in src.scan_iter("lf:v:{*", count=1000)), None)
    alias = next((k[len("lf:alias:{"):-1] for k in src.scan_iter("lf:alias:{*", count=1000)
                  if src.get(k) != k[len("lf:alias:{"):-1]), None)
    check(visitor and alias, "the run left a visitor (%r) and an alias (%r)" % (visitor, alias))
    for who in (lead, visitor, alias):
        same(env, ["inspect", who], single, cluster, "inspect " + who)
        same(env, ["inspect", who, "--json"], single, cluster, "inspect --json " + who,
             as_json=True)
    same(env, ["inspect", "no-such-lead"], single, cluster, "inspect of an unknown lead")

    # reload: INCR of lf:ctl:reload, routed; no instance runs, so exit 4 on both.
    before = int(rc.get("lf:ctl:reload") or 0)
    r = env.run_cli(["reload", "-c", cluster, "--wait", "0"])
    check_eq(r[0], 4, "reload on the cluster with no instance: exit 4\n" + r[1] + r[2])
    check_eq(int(rc.get("lf:ctl:reload")), before + 1, "lf:ctl:reload incremented")

    # --redis on a cluster: the seed node to ask (any node: the map says the rest).
    r = env.run_cli(["top", "--at", at, "-c", cluster, "--redis", "127.0.0.1:%d" % ports[2]])
    check_eq(r[0], 0, "top with --redis naming the third master: " + r[2])
    check_eq(normalize(r[1]), normalize(env.run_cli(["top", "--at", at, "-c", single])[1]),
             "top via --redis")
    rc.close()


def test_top_merges_the_best_of_every_shard():
    """With redis.top_leads smaller than what the shards hold together (each shard keeps its
    own best), top ranks the best top_leads of all shards: the candidates a single lf:top
    trimmed to top_leads would hold."""
    env = H.new_env("cltop")
    standalone_run(env, leads=400, events=3000, seed=43)
    src = env.r
    # Leads with few slots between them rarely share one: clones of the best five leads, each
    # under an id of its original's slot, make shards of two members near the top.
    for lid, score in src.zrevrange("lf:top", 0, 4, withscores=True):
        slot, i = lead_slot(lid), 0
        while lead_slot("c%d-%s" % (i, lid)) != slot:
            i += 1
        clone = "c%d-%s" % (i, lid)
        src.copy("lf:lead:{%s}" % lid, "lf:lead:{%s}" % clone)
        src.zadd("lf:top", {clone: score})
    ports = env.start_cluster(masters=3)
    rc = cluster_client(ports)
    copy_to_cluster(env.rb, rc)
    total = src.zcard("lf:top")
    keep = 60
    check(total > 2 * keep, "lf:top holds enough leads: %d" % total)
    # Some shards hold several members: the second round trip is needed.
    per = {}
    for m in src.zrange("lf:top", 0, -1):
        per[lead_slot(m)] = per.get(lead_slot(m), 0) + 1
    cluster = cluster_rules(env, ports)
    with open(cluster) as f:
        text = re.sub(r"(?m)^  top_leads:.*$", "  top_leads: %d" % keep, f.read(), count=1)
    with open(cluster, "w") as f:
        f.write(text)
    # The single node, trimmed as the store trims it at top_leads.
    src.zremrangebyrank("lf:top", 0, -(keep + 1))
    check_eq(src.zcard("lf:top"), keep, "lf:top trimmed")
    at = str(int(time.time() * 1000))
    a = json.loads(env.run_cli(["top", "30", "--at", at, "--json", "-c", env.rules_path])[1])
    r = env.run_cli(["top", "30", "--at", at, "--json", "-c", cluster])
    check_eq(r[0], 0, "top on the cluster: " + r[2])
    b = json.loads(r[1])
    check_eq(b["total"], total, "total: every shard's members")
    check_eq((b["scanned"], b["candidates"], b["bounded"]), (a["scanned"], a["candidates"], True),
             "candidates: the best %d" % keep)
    check_eq([x["id"] for x in b["leads"]], [x["id"] for x in a["leads"]], "the ranking")
    check_eq(b["leads"], a["leads"], "the rows")
    check(max(per.values()) > 1, "a shard holds several members: %r" % max(per.values()))
    rc.close()


def test_refusals_and_an_unreachable_cluster():
    env = H.new_env("clref")
    env.start_redis()
    env.start_broker(1)
    env.deploy_rules()
    ports = env.start_cluster(masters=3)
    cluster = cluster_rules(env, ports)
    for args in (["replay", "--rules", cluster], ["replay", "--rules", cluster, "--switch"],
                 ["compare", "--after-prefix", "x:"]):
        t0 = time.monotonic()
        rc, out, err = env.run_cli(args + ["-c", cluster])
        what = "leadflow " + " ".join(args)
        check_eq(rc, 2, "%s on a cluster: exit status\n%s%s" % (what, out, err))
        check("not supported on a Redis Cluster yet (redis.cluster.nodes is set)" in err,
              "%s says why: %s" % (what, err.strip()))
        check("CROSSSLOT" not in err + out, "%s: no CROSSSLOT" % what)
        check(time.monotonic() - t0 < 5, "%s refuses at once" % what)
    c = cluster_client(ports)
    check_eq(c.dbsize(), 0, "nothing written on the cluster")
    c.close()

    # A cluster no node of which answers: every command says so, exit 2.
    dead = [H.free_port(), H.free_port()]
    with open(env.rules_path) as f:
        text = f.read()
    text = text.replace("\nredis:\n", "\nredis:\n  cluster:\n    nodes: \"127.0.0.1:%d,"
                        "127.0.0.1:%d\"\n" % tuple(dead), 1)
    path = env.path("dead.yaml")
    with open(path, "w") as f:
        f.write(text)
    for args in (["top"], ["stats"], ["inspect", "u-1"], ["reload", "--wait", "0"]):
        t0 = time.monotonic()
        rc, out, err = env.run_cli(args + ["-c", path])
        what = "leadflow " + args[0]
        check_eq(rc, 2, "%s with no reachable node: exit status\n%s%s" % (what, out, err))
        check("no Redis Cluster node answered" in err and "127.0.0.1:%d" % dead[0] in err,
              "%s names the nodes it tried: %s" % (what, err.strip()))
        check("redis.cluster.nodes" in err, "%s says what to check: %s" % (what, err.strip()))
        check(time.monotonic() - t0 < 10, "%s gives up in time" % what)


if __name__ == "__main__":
    H.main([test_same_data_same_answer, test_top_merges_the_best_of_every_shard,
            test_refusals_and_an_unreachable_cluster])
