"""The operator commands against the state of a real run: `leadflow inspect`, `top`, `stats`
(--json, values agree with Redis; its exit status is the health verdict); against Redis state
written by hand (both record layouts, a visitor's lf:v:{} record, lf:top with members that are
not known leads, lf:funnel with live and expired visitor buckets); `check-config` (errors
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
from lfharness import check, check_eq, check_close, DAY_MS, HOUR_MS  # noqa: E402
from test_pipeline import T0, small_rules, decay, VERSION, SMALL_MODEL  # noqa: E402


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


def top_order(env, at_ms, n):
    """lf:top's known leads ranked by fit + engagement decayed to at_ms, as `leadflow top`
    must rank them (ties: the higher lf:top score, then the id)."""
    rows = []
    for lid, ix in env.r.zrevrange("lf:top", 0, -1, withscores=True):
        h = env.lead(lid)
        if not h or h.get("anon") == "1" or h.get("stage") in (None, "visitor"):
            continue
        t = int(h["t"])
        eng = float(h["eng"]) * (decay(at_ms - t) if at_ms > t else 1.0)
        rows.append((-(float(h["fit"]) + eng), -ix, lid))
    return [r[2] for r in sorted(rows)[:n]]


def live_visitors(env, now_ms):
    return sum(int(v) for k, v in env.r.hgetall("lf:funnel").items()
               if k.startswith("visitor:") and int(k[8:]) * 1000 > now_ms)


def test_inspect_top_stats():
    """After a run (the new layout written by the store): inspect shows every part of a lead
    from its decoded record, a visitor's lf:v:{} record with its TTL, a linked visitor's lead;
    top ranks lf:top's known leads by current score; stats' funnel is lf:funnel's."""
    env = H.new_env("cli")
    env.start_redis()
    env.start_broker(2)
    # The sweep on event time: with the wall clock (the default) the instance demotes the
    # March MQLs once caught up, and those transitions raced the stats check below (17
    # against the 12 of the snapshot, seen under ASan). test_clock.py tests the wall clock.
    H.set_processing(small_rules(env), idle_clock="event")
    run, p = populate(env)

    # inspect: a lead. The readable fields from the hash, the packed rest by hand.
    raw = {k.decode(): v for k, v in env.rb.hgetall("lf:lead:{u-3}").items()}
    check("p" in raw and "events" not in raw, "u-3 is in the packed layout: %s" % sorted(raw))
    h = env.lead("u-3")  # decoded by tests/integration/lfrecord.py
    check_eq(h.get("events"), "3", "events (packed)")
    j = cli_json(env, ["inspect", "u-3"])
    check_eq(j.get("id"), "u-3", "inspect id")
    check_eq(j.get("stage"), h["stage"], "inspect stage")
    check_eq(j.get("seq"), int(h["seq"]), "inspect seq")
    check_eq(j.get("events"), 3, "inspect events")
    check_close(j.get("fit"), float(h["fit"]), "inspect fit")
    check_close(j["stored"]["eng"], float(h["eng"]), "inspect stored.eng")
    check_eq(j["stored"]["t_ms"], int(h["t"]), "inspect stored.t")
    check_close(j["stored"]["score"], float(h["score"]), "inspect stored.score")
    check_eq(j["stored"]["grade"], h["grade"], "inspect stored.grade")
    # Default time: the last event (last_seen); eng decayed from t to it.
    at = T0 + 2 * HOUR_MS
    check_eq(j.get("last_seen_ms"), at, "inspect last_seen")
    check_eq(j.get("first_seen_ms"), T0, "inspect first_seen")
    eng_at = float(h["eng"]) * decay(at - int(h["t"]))
    check_close(j.get("engagement"), eng_at, "inspect engagement at last_seen")
    check_close(j.get("score"), float(h["fit"]) + eng_at, "inspect score")
    want_eng = 30 * decay(2 * HOUR_MS) + 30 * decay(HOUR_MS) + 30
    check_close(j.get("score"), want_eng, "inspect score by hand")
    # Counters are keyed by kind (cli_inspect_json.c).
    check_eq(j["counters"], {"form_submit": 3}, "inspect counters")
    check_eq(j.get("rules_version"), VERSION, "inspect rules_version")
    hist = j.get("history") or []
    check(len(hist) > 0, "u-3 has a stage history")
    check_eq([x["seq"] for x in hist], list(range(int(h["seq"]) - len(hist) + 1,
                                                    int(h["seq"]) + 1)), "history seqs")
    check_eq(hist[-1]["to"], h["stage"], "the last transition ends in the stage")
    check_eq((hist[0]["from"], hist[0]["to"], hist[0]["reason"]),
             ("visitor", "lead", "first_seen"), "the first transition")
    check_eq(j["record"], {"key": "lf:lead:{u-3}", "kind": "lead", "layout": "packed",
                           "version": j["record"]["version"]}, "inspect record")
    check(j["record"]["version"] >= 1, "a write version")
    check_eq(len(j["offsets"]), 1, "one source partition: %s" % j["offsets"])
    check_eq(j["dedup_remembered"], 3, "three messageIds remembered")
    rc, out, err = env.run_cli(["inspect", "u-3", "-c", env.rules_path])
    check_eq(rc, 0, "inspect u-3 (text): %s" % err)
    check(re.search(r"(?m)^  record\s+lf:lead:\{u-3\}, packed", out), "record line: %r" % out)
    check(re.search(r"(?m)^\s+\d+ .*visitor\s+lead\s+first_seen", out), "history: %r" % out)
    # inspect: an anonymousId linked to its lead.
    j = cli_json(env, ["inspect", "a-7"])
    check_eq((j.get("id"), j.get("linked_from")), ("u-7", "a-7"), "inspect a linked visitor")
    check_eq((j.get("first_touch") or {}).get("source"), "fair", "first touch of u-7")
    check_close(j.get("fit"), 20, "fit of u-7")
    check_eq(j.get("traits"), {"company_tier": "enterprise"}, "traits of u-7")
    check_eq(j.get("visitor_record_left"), False, "a-7's visitor record went with the merge")
    # inspect: a visitor, its record in lf:v:{} with a TTL.
    j = cli_json(env, ["inspect", "a-lonely"])
    pttl = env.r.pttl("lf:v:{a-lonely}")
    check(pttl > 0, "lf:v:{a-lonely} has a TTL (%s)" % pttl)
    check_eq((j["id"], j["anonymous"], j["stage"], j["events"]), ("a-lonely", True, "visitor", 1),
             "inspect a visitor")
    check_eq((j["record"]["key"], j["record"]["kind"], j["record"]["layout"]),
             ("lf:v:{a-lonely}", "visitor", "packed"), "a visitor's record")
    check(0 < pttl - j["record"]["ttl_ms"] < 60000 or 0 <= j["record"]["ttl_ms"] - pttl < 60000,
          "ttl_ms %s vs PTTL %s" % (j["record"]["ttl_ms"], pttl))
    check(j["record"].get("expires_ms", 0) > time.time() * 1000, "the record's expiry ahead")
    check_eq(j["counters"], {"page_view": 1}, "a visitor's counters")
    check_close(j["engagement"], 5, "a visitor's engagement")
    # inspect: an unknown lead.
    rc, out, err = env.run_cli(["inspect", "nobody", "-c", env.rules_path, "--json"])
    check_eq(rc, 1, "inspect of an unknown lead: exit status")

    # top 5 at a time after every event: by current score among lf:top's known leads.
    at = T0 + 30 * HOUR_MS
    j = cli_json(env, ["top", "5", "--at", str(at)])
    check_eq([x["id"] for x in j.get("leads", [])], top_order(env, at, 5),
             "top 5 vs lf:top ranked by score at --at")
    check_eq(j.get("total"), env.r.zcard("lf:top"), "top total vs ZCARD lf:top")
    check_eq((j.get("scanned"), j.get("source"), j.get("at_ms"), j.get("at_source")),
             (env.r.zcard("lf:top"), "lf:top", at, "option"), "what top looked at")
    check_eq([x["rank"] for x in j["leads"]], [1, 2, 3, 4, 5], "ranks")
    for x in j["leads"]:
        hh = env.lead(x["id"])
        check_eq(x.get("stage"), hh.get("stage"), "top stage of %s" % x["id"])
        check_close(x.get("fit"), float(hh["fit"]), "top fit of %s" % x["id"])
        check_close(x.get("engagement"), float(hh["eng"]) * decay(at - int(hh["t"])),
                    "top engagement of %s" % x["id"])
    check_eq(j["leads"][0]["id"], "u-7", "the hottest lead")
    check_eq(j["leads"][0]["last_seen_ms"], T0 + 20 * HOUR_MS, "u-7's last seen, decoded")
    check_eq(j["leads"][0]["last_touch_source"], "fair", "u-7's last touch, decoded")
    check("a-lonely" not in [x["id"] for x in j["leads"]], "a visitor is not ranked")
    rc, out, err = env.run_cli(["top", "-n", "3", "-c", env.rules_path])
    check_eq(rc, 0, "top -n 3 (text): %s" % err)
    check(re.search(r"^top 3 by score at \S+ \(now\), among the \d+ most engaged known leads "
                    r"in lf:top$", out, re.M), "top's header: %r" % out[:300])

    # stats: the funnel is lf:funnel's.
    j = cli_json(env, ["stats"])
    tot = j["progress"]["totals"]
    for k in ("consumed", "applied", "duplicates", "dead", "transitions"):
        check_eq(tot.get(k), p[k], "stats progress totals %s" % k)
    check_eq(j["progress"]["conservation"]["ok"], True, "stats conservation ok")
    check_eq(j["progress"]["group"], env.group, "stats group")
    funnel = env.r.hgetall("lf:funnel")
    for s in H.STAGES[1:]:
        check_eq(j["funnel"]["stages"].get(s), int(funnel.get(s, 0)),
                 "stats funnel %s vs HGET lf:funnel" % s)
    check_eq(j["funnel"]["stages"]["visitor"], live_visitors(env, time.time() * 1000),
             "stats visitors vs the live buckets")
    check_eq(j["funnel"]["stages"]["visitor"], 1, "one visitor left (a-lonely)")
    check_eq(sum(j["funnel"]["stages"].values()), 8, "7 leads and a visitor")
    insts = [x.get("id") for x in j.get("instances", [])]
    check("cli-inst" in insts, "stats instances %s lack cli-inst" % insts)
    check_eq(j["health"]["ok"], True, "stats health of a live run (%s)" % j["health"])
    check_eq(j["health"]["exit_status"], 0, "stats health exit_status")
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path])
    check_eq(rc, 0, "stats exit status with a live, healthy run (%s)" % out[-400:])
    check(out.rstrip().endswith("health: ok (exit 0)"), "stats' last line: %r" % out[-200:])
    check_eq(run.stop(), 0, "exit status")


#---- Redis state written by hand (no run): both layouts, lf:top, lf:funnel ------------------

KIND = {"page_view": 1, "form_submit": 4}
STAGE = {s: i for i, s in enumerate(H.STAGES)}
REASON = {"identify": 0, "first_seen": 1, "score_threshold": 2}


def _hand_env(name):
    env = H.new_env(name)
    env.start_redis()
    env.write_rules('version: "%s"\n' % VERSION + H.kafka_block("127.0.0.1:9", "g1") +
                    "redis:\n  host: 127.0.0.1\n  port: %d\n" % env.redis_port + SMALL_MODEL)
    return env


def packed(t, version, first_seen, last_seen, stage_at, events, counters, first_touch=None,
           traits=(), offsets=(), history=(), rules_version=VERSION, visitor=None, expires_s=0):
    """A packed record (lead_pack.c's element list). visitor: (stage, seq, fit, eng) for a
    self-contained visitor record."""
    rec = [2, version, 1 if visitor else 0, "" if visitor else rules_version, t - first_seen,
           t - last_seen, t - stage_at, events,
           [x for k, n in counters.items() for x in (KIND[k], n)],
           None if first_touch is None else list(first_touch[:3]) + [t - first_touch[3]],
           None, [x for kv in traits for x in kv], [], b"",
           [x for po in offsets for x in po],
           [x for (seq, fr, to, why, at, sc) in history
            for x in (seq, STAGE[fr], STAGE[to], REASON[why], t - at, int(round(sc * 100)))],
           expires_s]
    if visitor:
        st, seq, fit, eng = visitor
        rec += [STAGE[st], seq, fit, eng, t]
    return H.mp_pack(rec)


def lead_hash_v2(stage, seq, fit, eng, t, rec):
    h = {"stage": stage, "seq": seq, "grade": "L2", "score": fit + eng, "fit": fit, "eng": eng,
         "t": t}
    for k in range(0, len(rec), 64):
        h["p" if k == 0 else "p%d" % (k // 64 + 1)] = rec[k:k + 64]
    return h


def test_inspect_layouts():
    """inspect and --json decode a lead of the packed layout, one of the layout before (v1,
    rewritten on its next write), a visitor's lf:v:{} record with its TTL and a visitor of
    the layout before, and show the same parts for each."""
    env = _hand_env("clil")
    hist = [(1, "visitor", "lead", "first_seen", T0, 30.0),
            (2, "lead", "mql", "score_threshold", T0 + HOUR_MS, 61.5)]
    t = T0 + 2 * HOUR_MS
    rec = packed(t, 7, T0, t, T0 + HOUR_MS, 3, {"form_submit": 3},
                 first_touch=("fair", "qr", "expo", T0), traits=[("company_tier", "enterprise")],
                 offsets=[(1, 41)], history=hist)
    env.r.hset("lf:lead:{p-1}", mapping=lead_hash_v2("mql", 2, 20, 75, t, rec))
    v1 = {"stage": "mql", "seq": 2, "grade": "L2", "score": 95, "fit": 20, "eng": 75, "t": t,
          "first_seen": T0, "last_seen": t, "stage_at": T0 + HOUR_MS, "events": 3,
          "rules_version": VERSION, "n.form_submit": 3, "ft.source": "fair", "ft.medium": "qr",
          "ft.campaign": "expo", "ft.at": T0, "lt.source": "fair", "lt.medium": "qr",
          "lt.campaign": "expo", "lt.at": T0, "tr.company_tier": "enterprise", "v": 7,
          "o": "1:41", "h1": "1|visitor|lead|first_seen|%d|30" % T0,
          "h2": "2|lead|mql|score_threshold|%d|61.5" % (T0 + HOUR_MS)}
    env.r.hset("lf:lead:{v1-1}", mapping=v1)
    exp = int(time.time()) + 3600
    env.r.set("lf:v:{anon-1}", packed(T0, 1, T0, T0, T0, 1, {"page_view": 1}, expires_s=exp,
                                      visitor=("visitor", 0, 0, 5)), px=3600 * 1000)
    env.r.hset("lf:lead:{anon-v1}", mapping={"stage": "visitor", "seq": 0, "fit": 0, "eng": 5,
                                             "t": T0, "first_seen": T0, "last_seen": T0,
                                             "events": 1, "n.page_view": 1, "anon": 1, "v": 1})

    same = ("stage", "seq", "events", "fit", "score", "engagement", "first_seen_ms",
            "last_seen_ms", "stage_at_ms", "counters", "traits", "rules_version", "first_touch",
            "history", "offsets")
    jp = cli_json(env, ["inspect", "p-1"])
    j1 = cli_json(env, ["inspect", "v1-1"])
    for k in same:
        check_eq(j1.get(k), jp.get(k), "%s: the layout before vs packed" % k)
    check_eq(jp["history"], [{"seq": 1, "from": "visitor", "to": "lead", "reason": "first_seen",
                              "at_ms": T0, "at": H.iso(T0), "score": 30},
                             {"seq": 2, "from": "lead", "to": "mql", "reason": "score_threshold",
                              "at_ms": T0 + HOUR_MS, "at": H.iso(T0 + HOUR_MS),
                              "score": 61.5}], "the history, decoded")
    check_eq((jp["events"], jp["counters"], jp["traits"], jp["rules_version"]),
             (3, {"form_submit": 3}, {"company_tier": "enterprise"}, VERSION), "packed fields")
    check_eq(jp["offsets"], [{"partition": 1, "offset": 41}], "offsets")
    check_eq((jp["record"]["layout"], jp["record"]["version"]), ("packed", 7), "packed record")
    check_eq((j1["record"]["layout"], j1["record"]["version"], j1["record"]["key"]),
             ("v1", 7, "lf:lead:{v1-1}"), "a v1 record")
    check_eq(jp["first_touch"]["source"], "fair", "first touch")
    rc, out, err = env.run_cli(["inspect", "v1-1", "-c", env.rules_path])
    check_eq(rc, 0, "inspect v1-1: %s" % err)
    check(re.search(r"(?m)^  record\s+lf:lead:\{v1-1\}, v1, rewritten on next write", out),
          "the v1 record line: %r" % out)
    check("company_tier" in out and "form_submit 3" in out, "traits and counters: %r" % out)

    jv = cli_json(env, ["inspect", "anon-1"])
    check_eq((jv["id"], jv["anonymous"], jv["stage"], jv["events"], jv["counters"]),
             ("anon-1", True, "visitor", 1, {"page_view": 1}), "a visitor's record")
    check_eq((jv["record"]["key"], jv["record"]["kind"], jv["record"]["layout"]),
             ("lf:v:{anon-1}", "visitor", "packed"), "where a visitor's record is")
    check(3500 * 1000 < jv["record"]["ttl_ms"] <= 3600 * 1000, "ttl_ms %s" % jv["record"]["ttl_ms"])
    check_eq(jv["record"]["expires_ms"], exp * 1000, "the record's expiry")
    check_close(jv["stored"]["eng"], 5, "a visitor's eng")
    rc, out, err = env.run_cli(["inspect", "anon-1", "-c", env.rules_path])
    check_eq(rc, 0, "inspect anon-1: %s" % err)
    check("(a visitor: anonymousId, not linked yet)" in out and
          re.search(r"(?m)^  record\s+lf:v:\{anon-1\}, packed .*expires in ", out),
          "a visitor's text: %r" % out)
    jo = cli_json(env, ["inspect", "anon-v1"])
    check_eq((jo["anonymous"], jo["record"]["layout"], jo["record"]["kind"], jo["events"]),
             (True, "v1", "visitor", 1), "a visitor of the layout before")
    # Linked: the alias wins; the visitor's record still there is said.
    env.r.set("lf:alias:{anon-1}", "p-1")
    j = cli_json(env, ["inspect", "anon-1"])
    check_eq((j["id"], j["linked_from"], j["visitor_record_left"]), ("p-1", "anon-1", True),
             "a linked visitor whose record is left")
    # Expired: gone.
    env.r.delete("lf:alias:{anon-1}")
    env.r.pexpire("lf:v:{anon-1}", 1)
    time.sleep(0.05)
    rc, out, err = env.run_cli(["inspect", "anon-1", "-c", env.rules_path])
    check_eq(rc, 1, "inspect of an expired visitor: exit status (%s)" % err)
    check("lf:v:{anon-1}" in err, "the message names the visitor key: %r" % err)


def test_top_ranks_by_current_score():
    """top ranks lf:top's known leads by fit + engagement decayed to --at (not by lf:top's
    order), skips members that are not known leads, and says what it looked at."""
    env = _hand_env("clit")
    at = T0 + 10 * DAY_MS
    # hot: most engaged, no fit; fitted: less engaged, fit 20 (ranks first by score).
    env.r.hset("lf:lead:{hot}", mapping={"stage": "mql", "fit": 0, "eng": 100,
                                         "t": at - DAY_MS, "seq": 2})
    env.r.hset("lf:lead:{fitted}", mapping={"stage": "lead", "fit": 20, "eng": 40,
                                            "t": at - DAY_MS, "seq": 1, "lt.source": "ads"})
    env.r.hset("lf:lead:{cold}", mapping={"stage": "nurture", "fit": 0, "eng": 400,
                                          "t": at - 5 * DAY_MS, "seq": 3})
    env.r.hset("lf:lead:{old-visitor}", mapping={"stage": "visitor", "fit": 0, "eng": 900,
                                                 "t": at, "anon": 1})
    env.r.hset("lf:lead:{out-of-top}", mapping={"stage": "mql", "fit": 20, "eng": 200,
                                                "t": at, "seq": 2})
    env.r.zadd("lf:top", {"old-visitor": 50, "gone": 40, "hot": 30, "fitted": 20, "cold": 10})
    env.r.zadd("lf:stage:mql", {"hot": 1, "out-of-top": 2})
    j = cli_json(env, ["top", "--at", str(at)])
    # hot 50, fitted 20 + 20 = 40, cold 400/32 = 12.5
    check_eq([x["id"] for x in j["leads"]], ["hot", "fitted", "cold"], "ranked by score at --at")
    check_close(j["leads"][1]["score"], 40, "fitted's score")
    check_close(j["leads"][0]["engagement"], 50, "hot's engagement decayed a half-life")
    check_eq((j["scanned"], j["candidates"], j["skipped_visitors"], j["skipped_missing"],
              j["total"], j["bounded"], j["source"]), (5, 3, 1, 1, 5, False, "lf:top"),
             "what top looked at")
    check_eq(j["leads"][1]["last_touch_source"], "ads", "last touch, decoded (v1)")
    j = cli_json(env, ["top", "1", "--at", str(at + 2 * DAY_MS)])
    check_eq([x["id"] for x in j["leads"]], ["fitted"], "two days later fit decides")
    rc, out, err = env.run_cli(["top", "--at", str(at), "-c", env.rules_path])
    check_eq(rc, 0, "top (text): %s" % err)
    check(re.search(r"^top 10 by score at %s \(--at\), among the 3 most engaged known leads in "
                    r"lf:top$" % re.escape(H.iso(at)), out, re.M), "header: %r" % out[:400])
    check("skipped 2 members of lf:top that are not known leads: 1 visitor of the layout "
          "before, 1 with no record" in out, "skipped: %r" % out[:600])
    # --stage: a sales-active stage is read whole from its set (also leads not in lf:top).
    j = cli_json(env, ["top", "--stage", "mql", "--at", str(at)])
    check_eq([x["id"] for x in j["leads"]], ["out-of-top", "hot"], "top --stage mql")
    check_eq((j["source"], j["leads"][0]["index_score"]), ("lf:stage:mql", None),
             "read from the stage set")
    j = cli_json(env, ["top", "--stage", "nurture", "--at", str(at)])
    check_eq([x["id"] for x in j["leads"]], ["cold"], "top --stage nurture: filtered lf:top")
    rc, out, err = env.run_cli(["top", "--stage", "visitor", "-c", env.rules_path])
    check_eq(rc, 1, "top --stage visitor: usage")
    rc, out, err = env.run_cli(["top", "3", "-n", "3", "-c", env.rules_path])
    check_eq(rc, 1, "N twice: usage")


def test_stats_funnel():
    """stats' funnel is HGETALL lf:funnel: stages as counted, visitors = the buckets whose
    expiry is still ahead; the expired ones are reported apart."""
    env = _hand_env("clif")
    now = int(time.time())
    env.r.hset("lf:funnel", mapping={
        "lead": 5, "mql": 3, "sal": 1, "customer": 2, "nurture": 4, "disqualified": 1,
        "visitor:%d" % (now - 100): 7, "visitor:%d" % (now - 5000): 2,
        "visitor:%d" % (now + 3600): 11, "visitor:%d" % (now + 86400): 4, "other": 99})
    rc, out, j = _stats(env)
    check_eq(rc, 3, "no instance (the verdict), the funnel still shown")
    check_eq(j["funnel"]["stages"], {"visitor": 15, "lead": 5, "mql": 3, "sal": 1, "sql": 0,
                                     "opportunity": 0, "customer": 2, "nurture": 4,
                                     "disqualified": 1}, "the funnel")
    v = j["funnel"]["visitors"]
    check_eq((v["live"], v["live_buckets"], v["expired"], v["expired_buckets"], v["next_expiry_ms"]),
             (15, 2, 9, 2, (now + 3600) * 1000), "visitor buckets")
    check_eq(j["funnel"]["key"], "lf:funnel", "funnel key")
    conv = {(c["from"], c["to"]): (c["reached_to"], c["reached_from"])
            for c in j["funnel"]["conversion"]}
    check_eq(conv[("lead", "mql")], (6, 11), "lead -> mql reach")
    check(re.search(r"(?m)^funnel \(lf:funnel\)$", out), "funnel header: %r" % out)
    check(re.search(r"(?m)^  visitor\s+15$", out), "visitors row: %r" % out)
    check("9 visitor records expired" in out, "expired: %r" % out)


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
        (["replay", "-c", rules], "--rules FILE is required"),
        (["replay", "-c", rules, "--rules", rules, "--switch", "--from-retained"],
         "--switch with --from-retained"),
        (["reload", "-c", rules, "--wait", "soon"], "--wait takes a duration"),
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
        (["top", "-c", rules, "0"], "-n wants"),
        (["top", "-c", rules, "5", "6"], "unexpected argument 6"),
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
    for cmd in ("run", "devbroker", "gen", "inspect", "top", "stats", "check-config", "reload",
                "replay", "compare"):
        rc, out, err = env.run_cli([cmd, "--help"])
        check_eq((rc, out.startswith("usage: leadflow " + cmd)), (0, True), "%s --help" % cmd)


if __name__ == "__main__":
    H.main([test_inspect_top_stats, test_inspect_layouts, test_top_ranks_by_current_score,
            test_stats_funnel, test_check_config, test_check_config_warnings,
            test_stats_exit_status, test_usage_errors])
