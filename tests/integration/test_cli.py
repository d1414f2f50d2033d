"""The operator commands against the state of a real run: `leadflow inspect`, `top`, `stats`
(--json, values agree with Redis) and `check-config`.
Run: LF_BIN=build/leadflow python3 tests/integration/test_cli.py"""
import json
import os
import re
import sys

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
    small_rules(env)
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
    check_eq(j.get("counters", {}).get("form_submit", j.get("counters", {}).get("n.form_submit")),
             3, "inspect counters form_submit")
    check_eq(j.get("rules_version"), VERSION, "inspect rules_version")
    hist = j.get("history") or []
    stored = H.history(env.r.hgetall("lf:lead:{u-3}"))
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


if __name__ == "__main__":
    H.main([test_inspect_top_stats, test_check_config])
