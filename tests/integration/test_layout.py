"""Redis layout v2 (docs/contract.md "Redis keys") end to end on redis-server and the embedded broker:
visitors expire by themselves and leave the funnel; a visitor linked after its record expired
is as if never seen; lf:top holds the top N known leads in the order of their current
engagement; a Redis written by the layout before is read and rewritten.
Run: LF_BIN=build/leadflow python3 tests/integration/test_layout.py"""
import calendar
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq, check_close, HOUR_MS  # noqa: E402

MODEL = """
processing:
  batch_max_ms: 20
limits:
  min_timestamp: "2015-01-01T00:00:00Z"
  max_timestamp: "2100-01-01T00:00:00Z"
model:
  decay:
    half_life: 1d
  engagement:
    - name: page_views
      kind: page_view
      points: 5
    - name: forms
      kind: form_submit
      points: 30
  stages:
    mql: {enter: 1000, exit: 500}
"""
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000
H_MS = 86400 * 1000


def start(name, redis_extra=""):
    env = H.started_env(name)
    env.write_rules(env.connections(redis_extra=redis_extra) + MODEL)
    return env


def page(mid, ts, user=None, anon=None):
    return (H.event("page", mid, ts, user=user, anon=anon, url="https://ex.com/%s" % mid),
            "msgpack")


def stats_visitors(env):
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path, "--json"])
    check(rc in (0, 1, 2), "leadflow stats: %s" % err)
    return json.loads(out)["funnel"]["visitors"]["live"]


def test_visitors_expire_and_leave_the_funnel():
    env = start("vexpire", "  visitor_ttl: 3s\n")
    run = env.start_run()
    env.produce_events([page("a%d-%d" % (i, k), T0 + k * 1000, anon="anon-%d" % i)
                        for i in range(5) for k in range(3)])
    env.wait_consumed(15, proc=run)
    keys = sorted(env.r.scan_iter(match="lf:v:*"))
    check_eq(len(keys), 5, "five visitor records: %s" % keys)
    for k in keys:
        ttl = env.r.pttl(k)
        check(0 < ttl <= 4000, "%s: TTL %d ms (visitor_ttl 3 s, buckets of 1 s)" % (k, ttl))
    check(not list(env.r.scan_iter(match="lf:lead:*")), "a visitor stored as a lead hash")
    check_eq(H.funnel_of(env.r), {"visitor": 5}, "lf:funnel with five visitors")
    check_eq(stats_visitors(env), 5, "leadflow stats: live visitors")
    check_eq(env.r.zcard("lf:top"), 0, "visitors in lf:top")
    check_eq(env.r.get("lf:layout"), "2", "an empty Redis is marked as of this layout")
    # Nobody writes them again: Redis drops them, the funnel's buckets pass.
    H.wait_until(lambda: not list(env.r.scan_iter(match="lf:v:*")), 10, "visitors expired")
    check_eq(H.funnel_of(env.r), {}, "lf:funnel once they expired")
    check_eq(stats_visitors(env), 0, "leadflow stats once they expired")
    # The heartbeat deletes the passed buckets.
    H.wait_until(lambda: not any(f.startswith("visitor:") for f in env.r.hkeys("lf:funnel")),
                 30, "passed funnel buckets deleted")
    check_eq(run.stop(), 0, "exit status")


def test_a_visitor_refreshed_by_each_event():
    env = start("vrefresh", "  visitor_ttl: 4s\n")
    run = env.start_run()
    for k in range(4):
        env.produce_events([page("r%d" % k, T0 + k * 1000, anon="anon-r")])
        env.wait_consumed(k + 1, proc=run)
        time.sleep(1.5)
    # 6 s after the first event, 1.5 s after the last: alive, counted once.
    check(env.r.exists("lf:v:{anon-r}"), "the visitor expired although it kept coming")
    check_eq(env.lead("anon-r").get("n.page_view"), "4", "its events")
    check_eq(H.funnel_of(env.r), {"visitor": 1}, "counted once, in its latest bucket")
    check_eq(run.stop(), 0, "exit status")


def test_a_visitor_linked_after_it_expired():
    env = start("vlate", "  visitor_ttl: 2s\n")
    run = env.start_run()
    env.produce_events([page("e%d" % k, T0 + k * 1000, anon="anon-x") for k in range(3)])
    env.wait_consumed(3, proc=run)
    check(env.r.exists("lf:v:{anon-x}"), "the visitor record")
    H.wait_until(lambda: not env.r.exists("lf:v:{anon-x}"), 10, "the visitor expired")
    ident = H.event("identify", "id1", T0 + 10_000, user="u-x", anon="anon-x")
    env.produce_events([(ident, "json"), page("e9", T0 + 11_000, anon="anon-x")])
    env.wait_consumed(5, proc=run)
    h = env.lead("u-x")
    # As if never seen: only the identify and the page view after it.
    check_eq((h.get("n.page_view"), h.get("n.identify"), h.get("events")), ("1", "1", "2"),
             "counters of the lead (the expired visitor's events are gone)")
    check_eq(int(h["first_seen"]), T0 + 10_000, "first_seen: the identify")
    check_close(float(h["eng"]), 5, "eng: the page view after the link only")
    check_eq(env.r.get("lf:alias:{anon-x}"), "u-x", "the alias")
    check(400 * 86400 - 60 < env.r.ttl("lf:alias:{anon-x}") <= 400 * 86400, "alias TTL")
    check_eq(H.funnel_of(env.r), {"lead": 1}, "lf:funnel")
    check_eq(run.stop(), 0, "exit status")


def test_top_holds_the_most_engaged_known_leads_in_order():
    env = start("top", "  top_leads: 40\n")
    run = env.start_run()
    evs, n = [], 0
    # 120 leads with events spread over ~3 years of event time (half-life 1 d): the live order
    # differs from the order of the stored eng.
    for i in range(120):
        base = T0 - (i * 7919 % 1000) * H_MS
        for k in range(1 + i % 5):
            evs.append(page("t%d-%d" % (i, k), base + k * HOUR_MS, user="u%03d" % i))
            n += 1
        evs.append(page("v%d" % i, base, anon="anon-t%d" % i))  # visitors: never ranked
        n += 1
    env.produce_events(evs)
    env.wait_consumed(n, proc=run, timeout=90)
    leads = env.all_leads()
    known = {lid: h for lid, h in leads.items() if h["stage"] != "visitor"}
    check_eq(len(known), 120, "known leads")
    now = max(int(h["t"]) for h in known.values())
    live = {lid: float(h["eng"]) * 2 ** (-(now - int(h["t"])) / H_MS) for lid, h in known.items()}
    want = sorted(live, key=lambda x: -live[x])[:40]
    got = env.r.zrevrange("lf:top", 0, -1)
    check_eq(len(got), 40, "lf:top trimmed to top_leads")
    check_eq(got, want, "lf:top order vs the order by recomputed current engagement")
    for lid in got[:5]:
        h = known[lid]
        check_close(env.r.zscore("lf:top", lid),
                    1100 + math.log2(float(h["eng"])) + int(h["t"]) / H_MS, "key of " + lid)
    rc, out, err = env.run_cli(["top", "-n", "5", "-c", env.rules_path, "--json",
                                "--at", H.iso(now)])
    check_eq(rc, 0, "leadflow top: %s" % err)
    j = json.loads(out)
    check_eq([x["id"] for x in j["leads"]], want[:5], "leadflow top ranks by current score")
    check_eq(run.stop(), 0, "exit status")


def test_a_redis_of_the_layout_before():
    env = start("v1")
    r = env.r
    t = T0
    # What the layout before wrote: a known lead, a visitor (a lead hash with anon=1), their
    # stage-set and lf:top entries, and a store epoch (so Redis is not fresh).
    common = {"grade": "L3", "first_seen": str(t), "last_seen": str(t), "stage_at": str(t),
              "events": "1", "rules_version": "old", "n.page_view": "1", "v": "3",
              "score": "5", "fit": "0", "eng": "5", "t": str(t)}
    r.hset("lf:lead:{u-old}", mapping=dict(common, stage="lead", seq="1",
                                           h1="1|visitor|lead|first_seen|%d|5.00" % t,
                                           o="5:100"))
    r.hset("lf:lead:{anon-old}", mapping=dict(common, stage="visitor", seq="0", anon="1"))
    r.zadd("lf:stage:lead", {"u-old": t})
    r.zadd("lf:stage:visitor", {"anon-old": t})
    r.zadd("lf:top", {"u-old": 1000.0, "anon-old": 999.0})
    r.set("lf:epoch", "0123456789abcdef0123456789abcdef")
    run = env.start_run()
    env.produce_events([page("n1", t + HOUR_MS, user="u-old"),
                        page("n2", t + HOUR_MS, anon="anon-old")])
    env.wait_consumed(2, proc=run)
    # The lead: rewritten packed, its state continued.
    raw = {k.decode(): v for k, v in env.rb.hgetall("lf:lead:{u-old}").items()}
    check("p" in raw and "n.page_view" not in raw and "h1" not in raw,
          "the lead was rewritten in the packed layout: %s" % sorted(raw))
    h = env.lead("u-old")
    check_eq((h.get("n.page_view"), h.get("events"), h.get("stage"), h.get("seq")),
             ("2", "2", "lead", "1"), "the lead's counters and stage continued")
    check_eq(H.history(h), ["1|visitor|lead|first_seen|%d|5.00" % t], "its history kept")
    check_close(float(h["eng"]), 5 * 2 ** (-HOUR_MS / H_MS) + 5, "eng continued")
    check(r.zscore("lf:stage:lead", "u-old") is None, "left the set its stage no longer has")
    # The visitor: moved from the lead hash to its record, with a TTL.
    check(not r.exists("lf:lead:{anon-old}"), "the visitor's old hash is gone")
    check(r.ttl("lf:v:{anon-old}") > 0, "the visitor's record has a TTL")
    check_eq(env.lead("anon-old").get("n.page_view"), "2", "the visitor's counters continued")
    check(r.zscore("lf:stage:visitor", "anon-old") is None, "left lf:stage:visitor")
    check(r.zscore("lf:top", "anon-old") is None, "left lf:top")
    check(not r.exists("lf:layout"), "a Redis of the layout before was marked as of this one")
    # Records of the layout before were not in the funnel: counted from their rewrite.
    check_eq(H.funnel_of(r), {"lead": 1, "visitor": 1}, "lf:funnel")
    check_eq(run.stop(), 0, "exit status")


if __name__ == "__main__":
    H.main([test_visitors_expire_and_leave_the_funnel, test_a_visitor_refreshed_by_each_event,
            test_a_visitor_linked_after_it_expired,
            test_top_holds_the_most_engaged_known_leads_in_order, test_a_redis_of_the_layout_before])
