"""The operator commands against the state of a real run: `leadflow inspect`, `top`, `stats`
(--json, values agree with Redis; its exit status is the health verdict), `check-config` (errors
and warnings with their lines), and one usage-error status for every command.
Run: LF_BIN=build/leadflow python3 tests/integration/test_cli.py"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq, check_close, HOUR_MS  # noqa: E402
from test_pipeline import T0, small_rules, decay, VERSION  # noqa: E402


def populate(env):
    """Leads with 1..7 form submits (distinct scores), one of them linked from a visitor."""
    evs = []
    for n in range(1, 8):
        lid = "u-%d" % n
        for k in range(n):
            evs.append((H.event("track", "%s-f%d" % (lid, k), T0 + k * HOUR_MS, user=lid,
                                event="form_submit"), "json" if k % 2 else "msgpack"))
    evs.append((H.event("page", "v1", T0, anon="a-7",
                        url="https://ex.com/?utm_source=fair&utm_medium=qr&utm_campaign=expo"),
                 "json"))
    evs.append((H.event("page", "v2", T0 + 1000, anon="a-lonely", url="https://ex.com/"),
                "json"))
    env.produce_events(evs[-2:])
    run = env.start_run("cli-inst")
    env.wait_consumed(2, proc=run)
    evs2 = evs[:-2] + [(H.event("identify", "id7", T0 + 20 * HOUR_MS, user="u-7", anon="a-7",
                                traits={"company_tier": "enterprise"}), "msgpack")]
    env.produce_events(evs2)
    p = env.wait_consumed(len(evs) + 1, proc=run)
    return run, p


def cli_json(env, args):
    rc, out, err = env.run_cli(args + ["-c", env.rules_path, "--json"])
    check_eq(rc, 0, "exit status of leadflow %s (stderr: %s)" % (" ".join(args), err.strip()))
    try:
        return json.loads(out)
    except ValueError:
        raise H.TestFailure("leadflow %s --json printed no JSON: %r" % (" ".join(args), out[:500]))


def test_inspect_top_stats():
    env = H.new_env("cli")
    env.start_redis()
    env.start_broker(2)
    # The sweep on event time: with the wall clock (the default) the instance demotes the
    # March MQLs once caught up, and those transitions raced the stats check below (17
    # against the 12 of the snapshot, seen under ASan). test_clock.py tests the wall clock.
    H.set_processing(small_rules(env), idle_clock="event")
    run, p = populate(env)

    # inspect: a lead.
    h = env.lead("u-3")
    j = cli_json(env, ["inspect", "u-3"])
    check_eq(j.get("id"), "u-3", "inspect id")
    check_eq(j.get("stage"), h["stage"], "inspect stage")
    check_eq(j.get("seq"), int(h["seq"]), "inspect seq")
    check_eq(j.get("events"), int(h["events"]), "inspect events")
    check_close(j.get("fit"), float(h["fit"]), "inspect fit")
    check_close(j["stored"]["eng"], float(h["eng"]), "inspect stored.eng")
    # Default time: the last event (last_seen); eng decayed from t to it.
    at = int(h["last_seen"])
    eng_at = float(h["eng"]) * decay(at - int(h["t"]))
    check_close(j.get("engagement"), eng_at, "inspect engagement at last_seen")
    check_close(j.get("score"), float(h["fit"]) + eng_at, "inspect score")
    want_eng = 30 * decay(2 * HOUR_MS) + 30 * decay(HOUR_MS) + 30
    check_close(j.get("score"), want_eng, "inspect score by hand")
    # Counters are keyed by kind, the hash's "n." prefix dropped (cli_inspect_json.c).
    check_eq(j["counters"], {"form_submit": 3}, "inspect counters")
    check_eq(j.get("rules_version"), VERSION, "inspect rules_version")
    hist = j.get("history") or []
    stored = H.history(env.lead("u-3"))
    check(len(stored) > 0, "u-3 has a stage history in its hash")
    check_eq([(x["seq"], x["from"], x["to"], x["reason"]) for x in hist],
             [(int(x.split("|")[0]), *x.split("|")[1:4]) for x in stored],
             "inspect history vs the hash's h* fields")
    # inspect: an anonymousId linked to its lead.
    j = cli_json(env, ["inspect", "a-7"])
    check_eq((j.get("id"), j.get("linked_from")), ("u-7", "a-7"), "inspect a linked visitor")
    check_eq((j.get("first_touch") or {}).get("source"), "fair", "first touch of u-7")
    check_close(j.get("fit"), 20, "fit of u-7")
    # inspect: an unknown lead.
    rc, out, err = env.run_cli(["inspect", "nobody", "-c", env.rules_path, "--json"])
    check_eq(rc, 1, "inspect of an unknown lead: exit status")

    # top -n 5.
    j = cli_json(env, ["top", "-n", "5"])
    want = env.r.zrevrange("lf:top", 0, 4, withscores=True)
    got = [(x["id"], x["index_score"]) for x in j.get("leads", [])]
    check_eq([g[0] for g in got], [w[0] for w in want], "top -n 5 ids vs ZREVRANGE lf:top 0 4")
    for (gid, gs), (wid, ws) in zip(got, want):
        check_close(gs, ws, "top index_score of %s" % gid)
    check_eq(j.get("total"), env.r.zcard("lf:top"), "top total vs ZCARD lf:top")
    check_eq([x["rank"] for x in j["leads"]], [1, 2, 3, 4, 5], "ranks")
    for x in j["leads"]:
        hh = env.lead(x["id"])
        check_eq(x.get("stage"), hh.get("stage"), "top stage of %s" % x["id"])
        check_close(x.get("fit"), float(hh["fit"]), "top fit of %s" % x["id"])
    check_eq(j["leads"][0]["id"], "u-7", "the hottest lead")

    # stats.
    j = cli_json(env, ["stats"])
    tot = j["progress"]["totals"]
    for k in ("consumed", "applied", "duplicates", "dead", "transitions"):
        check_eq(tot.get(k), p[k], "stats progress totals %s" % k)
    check_eq(j["progress"]["conservation"]["ok"], True, "stats conservation ok")
    check_eq(j["progress"]["group"], env.group, "stats group")
    for s in H.STAGES:
        check_eq(j["funnel"]["stages"].get(s), env.r.zcard("lf:stage:" + s),
                 "stats funnel %s vs ZCARD" % s)
    insts = [x.get("id") for x in j.get("instances", [])]
    check("cli-inst" in insts, "stats instances %s lack cli-inst" % insts)
    check_eq(j["health"]["ok"], True, "stats health of a live run (%s)" % j["health"])
    check_eq(j["health"]["exit_status"], 0, "stats health exit_status")
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path])
    check_eq(rc, 0, "stats exit status with a live, healthy run (%s)" % out[-400:])
    check(out.rstrip().endswith("health: ok (exit 0)"), "stats' last line: %r" % out[-200:])
    check_eq(run.stop(), 0, "exit status")


def test_check_config():
    env = H.new_env("cc")
    rc, out, err = env.run_cli(["check-config", H.DEPLOY_RULES])
    check_eq(rc, 0, "check-config deploy/leadflow.yaml exit status (%s)" % err.strip())
    bad = ("model:\n"                       # 1
           "  decay:\n"                     # 2
           "    half_life: soon\n"          # 3  not a duration
           "  engagement:\n"                # 4
           "    - name: pricing\n"          # 5
           "      kind: page_view\n"        # 6
           "      points: lots\n"           # 7  not a number
           "  stages:\n"                    # 8
           "    mql:\n"                     # 9
           "      enter: 50\n"              # 10
           "      exitt: 40\n")             # 11 unknown key
    path = os.path.join(env.tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write(bad)
    rc, out, err = env.run_cli(["check-config", path])
    check_eq(rc, 1, "check-config on three mistakes: exit status")
    text = out + err
    lines = sorted({int(m.group(1)) for m in re.finditer(r"bad\.yaml:(\d+)(?::\d+)?:", text)})
    check_eq(lines, [3, 7, 11], "lines of the reported errors (output: %r)" % text)


def test_check_config_warnings():
    """Valid but probably a mistake: warnings on stderr with their lines, exit 0."""
    env = H.new_env("ccw")
    text = ("model:\n"                                                   # 1
            "  stages:\n"                                                # 2
            "    mql: {enter: 50, exit: 40, require_traits: [compnay]}\n"  # 3 typo
            "  engagement:\n"                                            # 4
            "    - {name: forms, kind: form-submit, points: 10}\n"       # 5 not form_submit
            "    - {name: views, kind: pageview, points: 1}\n"           # 6 not page_view
            "    - {name: accepted, kind: sales_accept, points: 50}\n"   # 7 sales feedback
            "    - {name: custom, kind: trial_started, points: 5}\n"     # 8 fine
            "  fit:\n"                                                   # 9
            "    - {name: big, traits: {company: {present: true}}, points: 5}\n")
    path = os.path.join(env.tmp, "warn.yaml")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = env.run_cli(["check-config", path])
    check_eq(rc, 0, "check-config with warnings only: exit status (%s)" % err)
    lines = sorted(int(m.group(1)) for m in
                   re.finditer(r"warn\.yaml:(\d+):\d+: warning: ", err))
    check_eq(lines, [3, 5, 6, 7], "lines of the warnings (stderr: %r)" % err)
    check('did you mean "company"?' in err, "a suggestion for compnay: %r" % err)
    check("write form_submit" in err and "write page_view" in err, "what to write: %r" % err)
    check("4 warnings" in err, "the count of warnings: %r" % err)
    check("valid with 4 warnings" in out, "the summary says so: %r" % out[:200])
    # An empty model.
    path = os.path.join(env.tmp, "empty.yaml")
    with open(path, "w") as f:
        f.write("redis: {port: 6380}\nmodel:\n  decay: {half_life: 7d}\n")
    rc, out, err = env.run_cli(["check-config", "-q", path])
    check_eq(rc, 0, "check-config on an empty model: exit status")
    check(re.search(r"empty\.yaml:2:1: warning: the model has no engagement and no fit rules",
                    err), "the empty-model warning: %r" % err)
    # The example file has none.
    rc, out, err = env.run_cli(["check-config", "-q", H.DEPLOY_RULES])
    check_eq((rc, err), (0, ""), "check-config -q deploy/leadflow.yaml: status and stderr")


def _stats_env(name):
    env = H.new_env(name)
    env.start_redis()
    env.write_rules("kafka: {group_id: g1}\nredis: {host: 127.0.0.1, port: %d}\n"
                    % env.redis_port)
    return env


def _beat(env, inst, age_ms=0, **fields):
    now = int(time.time() * 1000)
    h = {"instance": inst, "host": "h", "pid": 1, "version": "t", "started_ms": now - 60000,
         "uptime_s": 60, "state": "ok", "reason": "", "partitions": "leadflow.events:0",
         "lag": 0, "events_in": 0, "applied": 0, "duplicates": 0, "dead_lettered": 0,
         "filtered": 0, "transitions_out": 0, "events_per_s": 0, "rules_version": "v",
         "last_commit_ms": now, "heartbeat_ms": now - age_ms}
    h.update(fields)
    env.r.sadd("lf:ops:instances", inst)
    env.r.hset("lf:ops:instance:" + inst, mapping=h)
    env.r.expire("lf:ops:instance:" + inst, 600)


def _stats(env, *extra):
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path] + list(extra))
    rcj, outj, errj = env.run_cli(["stats", "-c", env.rules_path, "--json"] + list(extra))
    check_eq(rcj, rc, "stats --json exits as stats does (%s)" % errj)
    try:
        j = json.loads(outj)
    except ValueError:
        raise H.TestFailure("stats --json printed no JSON: %r %r" % (outj[:300], errj))
    check_eq(j["health"]["exit_status"], rc, "health.exit_status vs the exit status")
    check_eq(j["health"]["ok"], rc == 0, "health.ok")
    return rc, out, j


def test_stats_exit_status():
    """stats' exit status is its verdict: 0 healthy, 3 nobody running, 4 an instance degraded
    or stale, 5 conservation broken; the highest wins. On heartbeats written by hand."""
    env = _stats_env("stx")
    rc, out, j = _stats(env)
    check_eq(rc, 3, "stats with no instance at all")
    check_eq(j["health"]["verdict"], "no_instance", "verdict")
    check("health: FAILING (exit 3)" in out and "no instance running" in out,
          "the human verdict: %r" % out[-400:])

    _beat(env, "a")
    rc, out, j = _stats(env)
    check_eq(rc, 0, "one live, ok instance (%s)" % j["health"]["problems"])
    check_eq([(x["id"], x["live"], x["heartbeat_stale"]) for x in j["instances"]],
             [("a", True, False)], "instances")

    # Degraded: Kafka unreachable, say.
    _beat(env, "b", state="degraded", reason="Kafka: all brokers are down")
    rc, out, j = _stats(env)
    check_eq(rc, 4, "a degraded instance")
    check_eq(j["health"]["verdict"], "unhealthy", "verdict")
    check(any("instance b is degraded: Kafka: all brokers are down" in p
              for p in j["health"]["problems"]), "problems: %s" % j["health"]["problems"])
    check("instance b is degraded" in out, "human output names it: %r" % out[-500:])
    env.r.delete("lf:ops:instance:b")
    check_eq(_stats(env)[0], 0, "b's heartbeat expired: healthy again")

    # Stale: the key is there, the heartbeat is 60 s old (a stuck process).
    _beat(env, "c", age_ms=60000)
    rc, out, j = _stats(env)
    check_eq(rc, 4, "a stale heartbeat")
    c = [x for x in j["instances"] if x["id"] == "c"][0]
    check_eq((c["live"], c["heartbeat_stale"]), (False, True), "c is stale, not live")
    check(re.search(r"(?m)^  c\s+stale\s", out), "STATE column says stale: %r" % out[:600])
    check_eq(_stats(env, "--stale-after", "2m")[0], 0, "stale only after 2m: healthy")
    env.r.delete("lf:ops:instance:a")
    rc, out, j = _stats(env)
    check_eq(rc, 4, "only a stale instance: stale (4) outranks nobody live (3)")
    check_eq(j["health"]["live_instances"], 0, "live_instances")

    # A clean stop is not a problem, but nobody is running.
    env.r.delete("lf:ops:instance:c")
    _beat(env, "d", state="stopped")
    check_eq(_stats(env)[0], 3, "only a stopped instance")

    # Conservation: one event consumed, not accounted for.
    _beat(env, "a")
    wm = "lf:wm:g1:leadflow.events"
    env.r.hset(wm, mapping={"0": 10, "0.consumed": 10, "0.applied": 8, "0.duplicates": 1,
                            "0.dead": 1, "1": 5, "1.consumed": 5, "1.applied": 5})
    check_eq(_stats(env)[0], 0, "conservation holds")
    env.r.hset(wm, "1.consumed", 6)
    rc, out, j = _stats(env)
    check_eq(rc, 5, "conservation broken")
    check_eq(j["health"]["verdict"], "conservation", "verdict")
    check("conservation broken" in out and "partitions 1" in out, "human: %r" % out[-600:])
    _beat(env, "b", state="degraded", reason="x")
    check_eq(_stats(env)[0], 5, "conservation (5) outranks a degraded instance (4)")

    # What Redis lost, shown when the heartbeat says so, not a failure by itself.
    env.r.hset(wm, "1.consumed", 5)
    env.r.delete("lf:ops:instance:b")
    loss_ms = int(time.time() * 1000) - 5000
    _beat(env, "a", store_loss="Redis restarted empty: replayed from offset 0",
          store_loss_ms=loss_ms)
    rc, out, j = _stats(env)
    check_eq(rc, 0, "a store loss alone")
    a = [x for x in j["instances"] if x["id"] == "a"][0]
    check_eq((a["store_loss"], a["store_loss_ms"]),
             ("Redis restarted empty: replayed from offset 0", loss_ms), "store_loss in JSON")
    check("Redis lost data" in out and "replayed from offset 0" in out, "human: %r" % out[:900])

    # Redis unreachable: 2, as documented; a bad --stale-after: 1.
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path, "--redis",
                                "127.0.0.1:%d" % H.free_port()])
    check_eq(rc, 2, "stats with Redis unreachable")
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path, "--stale-after", "soon"])
    check_eq(rc, 1, "stats --stale-after soon")


def test_usage_errors():
    """Every command: a bad flag and a bad value exit 1 (README: 1 usage), with a message."""
    env = H.new_env("usage")
    rules = env.write_rules("redis: {port: 6379}\n")
    cases = [
        ([], "usage: leadflow COMMAND"),
        (["nosuch"], "unknown command"),
        (["run", "--bogus"], "unknown option --bogus"),
        (["run", "--workers", "0"], "--workers"),
        (["run", "--workers", "2x"], "--workers"),
        (["run", "--exit-idle-ms", "soon"], "--exit-idle-ms"),
        (["run", "--redis", "127.0.0.1:99999"], "--redis"),
        (["run", "--redis", "127.0.0.1:"], "--redis"),
        (["run", "--redis", "h:0"], "port from 1 to 65535"),
        (["run", "--redis", "h:99999"], "port from 1 to 65535"),
        (["run", "--redis", "h: 80"], "--redis"),
        (["run", "--instance"], "--instance needs a value"),
        (["run", "--brokers", "lf:pw@k1:9092"], "--brokers takes HOST:PORT"),
        (["run", "-c", rules, "extra.yaml"], "unexpected argument extra.yaml"),
        (["devbroker", "--bogus"], "unknown option --bogus"),
        (["devbroker", "--port", "http"], "bad value"),
        (["gen", "--bogus"], "unknown option --bogus"),
        (["gen", "--leads", "many", "--out", "-"], "bad value"),
        (["inspect", "--bogus", "x"], "unknown option --bogus"),
        (["inspect", "-c", rules, "--at", "yesterday", "x"], "--at"),
        (["inspect", "-c", rules, "--redis", "h:0", "x"], "--redis"),
        (["top", "--bogus"], "unexpected argument --bogus"),
        (["top", "-c", rules, "-n", "0"], "-n wants"),
        (["top", "-c", rules, "--redis", "h:65536"], "--redis"),
        (["stats", "--bogus"], "unexpected argument --bogus"),
        (["stats", "-c", rules, "--stale-after", "0"], "--stale-after"),
        (["stats", "-c", rules, "--redis", "h:x"], "--redis"),
        (["stats", "--group"], "--group needs a value"),
        (["check-config", "--bogus", rules], "unknown option --bogus"),
        (["check-config"], "which file?"),
        (["check-config", rules, rules], "one file at a time"),
    ]
    bad = []
    for args, want in cases:
        try:
            rc, out, err = env.run_cli(args, timeout=10)
        except subprocess.TimeoutExpired:
            rc, err = None, "(still running after 10 s: the argument was ignored)"
        if rc != 1 or want not in err:
            bad.append("leadflow %s: exit %s (want 1), stderr %r (want %r)"
                       % (" ".join(args), rc, err[-300:], want))
    check(not bad, "usage errors:\n  " + "\n  ".join(bad))
    # --help is not an error.
    for cmd in ("run", "devbroker", "gen", "inspect", "top", "stats", "check-config"):
        rc, out, err = env.run_cli([cmd, "--help"])
        check_eq((rc, out.startswith("usage: leadflow " + cmd)), (0, True), "%s --help" % cmd)


if __name__ == "__main__":
    H.main([test_inspect_top_stats, test_check_config, test_check_config_warnings,
            test_stats_exit_status, test_usage_errors])
