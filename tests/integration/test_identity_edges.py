"""Identity edge cases (docs/contract.md "Semantics", Identity) end to end on redis-server and the
embedded broker: an `alias` whose previousId, or an `identify` whose anonymousId, is the userId
of a known lead (Segment documents alias as joining two identities; previousId may be an old
userId). Two known leads are never merged: the known lead keeps its record and its events, the
identify/alias counts as an event of its userId's lead, no alias key is set and nothing is
deleted, whether the two sides share a batch or not, whether the lead was cached or read from
Redis, and for a lead still stored in the layout before packed records (a legacy hash).
Every scenario checks both leads' counters and engagement (the sum of their own events'
points, decayed), the progress counters (consumed = applied + duplicates + dead), lf:funnel,
lf:top, and each transition published once.
Run: LF_BIN=build/leadflow python3 tests/integration/test_identity_edges.py"""
import calendar
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq, check_close, DAY_MS, HOUR_MS  # noqa: E402

# batch_max_ms: events produced while no processor runs are read as one batch.
MODEL = """
processing:
  batch_max_ms: 300
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
    - name: forms
      kind: form_submit
      points: 30
    - name: identifies
      kind: identify
      points: 2
    - name: aliases
      kind: alias
      points: 3
"""
POINTS = {"page": 5, "form": 30, "identify": 2, "alias": 3}
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000
T1 = T0 + HOUR_MS


def start(name):
    env = H.started_env(name)
    env.write_rules(env.connections() + MODEL)
    return env


def run_traced(env, name):
    """`leadflow run` with LF_TRACE_BATCH: its log has one "batch N events" line per batch."""
    return env._proc("run-" + name, [H.LF_BIN, "run", "-c", env.rules_path, "--instance", name],
                     env=dict(os.environ, LF_TRACE_BATCH="1"))


def batch_sizes(run):
    return [int(n) for n in re.findall(r"batch (\d+) events", run.log_text())]


def page(mid, ts, user):
    return (H.event("page", mid, ts, user=user, url="https://ex.com/%s" % mid), "msgpack")


def form(mid, ts, user):
    return (H.event("track", mid, ts, user=user, event="form_submit"), "json")


def alias(mid, ts, previous, user):
    return (H.event("alias", mid, ts, user=user, previousId=previous), "json")


def identify(mid, ts, anon, user):
    return (H.event("identify", mid, ts, user=user, anon=anon), "msgpack")


def link(kind, mid, ts, known, user):
    """The event naming lead `known`'s userId as its anonymous side: alias or identify."""
    return (alias if kind == "alias" else identify)(mid, ts, known, user)


def eng_of(evs):
    """A lead's engagement from its own events [(ts, points)], at its latest event time."""
    t = max(ts for ts, _ in evs)
    return sum(p * 2.0 ** (-(t - ts) / DAY_MS) for ts, p in evs)


def check_lead(env, lid, counters, evs, what):
    """counters: {field: value} of the decoded record; evs: its events [(ts, points)]."""
    h = env.lead(lid)
    check(h, "%s: lead %s is gone (no lf:lead:{%s})" % (what, lid, lid))
    check_eq(h.get("stage"), "lead", "%s: stage of %s" % (what, lid))
    check("anon" not in h, "%s: %s is a known lead, not a visitor" % (what, lid))
    got = {k: h.get(k) for k in counters}
    check_eq(got, {k: str(v) for k, v in counters.items()}, "%s: counters of %s" % (what, lid))
    check_close(h["eng"], eng_of(evs), "%s: eng of %s (its own events' points)" % (what, lid))
    check_eq(int(h["t"]), max(ts for ts, _ in evs), "%s: t of %s" % (what, lid))
    return h


def check_no_link(env, ids, what):
    aliases = sorted(env.r.scan_iter(match="lf:alias:*"))
    check_eq(aliases, [], "%s: alias keys (a known lead's userId is no visitor)" % what)
    for lid in ids:
        check(env.r.exists("lf:lead:{%s}" % lid), "%s: lf:lead:{%s} deleted" % (what, lid))
        check(not env.r.exists("lf:v:{%s}" % lid), "%s: a visitor record %s" % (what, lid))
        check(env.r.zscore("lf:top", lid) is not None, "%s: %s left lf:top" % (what, lid))


def check_progress(env, n, transitions, what):
    p = env.progress()
    check_eq((p["consumed"], p["applied"], p["duplicates"], p["dead"]), (n, n, 0, 0),
             "%s: consumed/applied/duplicates/dead" % what)
    check_eq(p["consumed"], p["applied"] + p["duplicates"] + p["dead"],
             "%s: conservation" % what)
    check_eq(p["transitions"], transitions, "%s: transitions counted" % what)


def check_transitions(env, want, what):
    """want: {transition_id: reason}: each published exactly once, no other."""
    msgs = env.consume(H.TRANSITIONS_TOPIC, lambda m: len(m) >= len(want), timeout=30,
                       idle_after=1.5)
    got = [H.decode_transition(m.value()) for m in msgs]
    ids = sorted(t["transition_id"] for t in got)
    check_eq(ids, sorted(want), "%s: transitions published (each once)" % what)
    check_eq({t["transition_id"]: (t["from"], t["to"], t["reason"]) for t in got},
             {k: ("visitor", "lead", r) for k, r in want.items()}, "%s: transitions" % what)


#---- (a), (b): the link and the known lead's events in one batch ----------------------------

def one_batch(kind):
    env = start("edge1-" + kind)
    what = "%s of a known lead's userId in one batch" % kind
    run = env.start_run()
    env.produce_events([page("a1", T0, "u-a"), page("a2", T0 + 1000, "u-a")])
    env.wait_consumed(2, proc=run, timeout=30)
    check_eq(run.stop(), 0, "exit status of the first run")
    # One batch: A's events before and after the link, and B's.
    env.produce_events([
        page("a3", T1, "u-a"),
        link(kind, "x1", T1 + 1000, "u-a", "u-b"),
        page("a4", T1 + 2000, "u-a"),
        page("b1", T1 + 3000, "u-b"),
        form("a5", T1 + 4000, "u-a"),
    ])
    run = run_traced(env, "edge-" + kind)
    env.wait_consumed(7, proc=run, timeout=30)
    check_eq(batch_sizes(run)[:1], [5], "%s: the second run read its 5 events as one batch" % what)
    check_lead(env, "u-a", {"events": 5, "n.page_view": 4, "n.form_submit": 1, "seq": 1},
               [(T0, 5), (T0 + 1000, 5), (T1, 5), (T1 + 2000, 5), (T1 + 4000, 30)], what)
    check_lead(env, "u-b", {"events": 2, "n." + kind: 1, "n.page_view": 1, "seq": 1},
               [(T1 + 1000, POINTS[kind]), (T1 + 3000, 5)], what)
    check_no_link(env, ["u-a", "u-b"], what)
    check_eq(H.funnel_of(env.r), {"lead": 2}, "%s: lf:funnel" % what)
    check_progress(env, 7, 2, what)
    check_transitions(env, {"u-a:1": "first_seen",
                            "u-b:1": "identify" if kind == "identify" else "first_seen"}, what)
    check_eq(run.stop(), 0, "exit status")


def test_alias_previous_id_is_a_known_lead_same_batch():
    one_batch("alias")


def test_identify_anonymous_id_is_a_known_lead_same_batch():
    one_batch("identify")


#---- (c): across batches, the lead cached (same process) or read from Redis (restart) ---------

def test_link_of_a_known_lead_across_batches():
    env = start("edgex")
    what = "across batches"
    run = run_traced(env, "edgex-1")
    env.produce_events([page("a1", T0, "u-a"), page("c1", T0 + 1000, "u-c")])
    env.wait_consumed(2, proc=run, timeout=30)
    # The same process: A is in its lead cache.
    env.produce_events([alias("x1", T1, "u-a", "u-b"), page("b1", T1 + 1000, "u-b")])
    env.wait_consumed(4, proc=run, timeout=30)
    check_no_link(env, ["u-a", "u-b"], what + " (alias, A cached)")
    check_eq(run.stop(), 0, "exit status of the first run")
    # A new process: C is read from Redis, as no identify/alias batch names it by userId.
    env.produce_events([identify("y1", T1 + 2000, "u-c", "u-d"), page("d1", T1 + 3000, "u-d")])
    run = run_traced(env, "edgex-2")
    env.wait_consumed(6, proc=run, timeout=30)
    check_no_link(env, ["u-a", "u-b", "u-c", "u-d"], what + " (identify, C read from Redis)")
    # Later events of all four: each stays with its own lead.
    env.produce_events([page("a2", T1 + 4000, "u-a"), page("c2", T1 + 5000, "u-c"),
                        page("b2", T1 + 6000, "u-b"), page("d2", T1 + 7000, "u-d")])
    env.wait_consumed(10, proc=run, timeout=30)
    check_lead(env, "u-a", {"events": 2, "n.page_view": 2}, [(T0, 5), (T1 + 4000, 5)], what)
    check_lead(env, "u-c", {"events": 2, "n.page_view": 2}, [(T0 + 1000, 5), (T1 + 5000, 5)],
               what)
    check_lead(env, "u-b", {"events": 3, "n.alias": 1, "n.page_view": 2},
               [(T1, 3), (T1 + 1000, 5), (T1 + 6000, 5)], what)
    check_lead(env, "u-d", {"events": 3, "n.identify": 1, "n.page_view": 2},
               [(T1 + 2000, 2), (T1 + 3000, 5), (T1 + 7000, 5)], what)
    check_no_link(env, ["u-a", "u-b", "u-c", "u-d"], what)
    check_eq(H.funnel_of(env.r), {"lead": 4}, "%s: lf:funnel" % what)
    check_progress(env, 10, 4, what)
    check_transitions(env, {"u-a:1": "first_seen", "u-b:1": "first_seen", "u-c:1": "first_seen",
                            "u-d:1": "identify"}, what)
    check_eq(run.stop(), 0, "exit status")


#---- Legacy: the known lead stored in the layout before (test_layout.py) ----------------------

def legacy_lead(r, lid, t):
    """A known lead as the layout before wrote it: one field per value, one page view."""
    r.hset("lf:lead:{%s}" % lid, mapping={
        "stage": "lead", "seq": "1", "grade": "L3", "first_seen": str(t), "last_seen": str(t),
        "stage_at": str(t), "events": "1", "rules_version": "old", "n.page_view": "1", "v": "3",
        "score": "5", "fit": "0", "eng": "5", "t": str(t),
        "h1": "1|visitor|lead|first_seen|%d|5.00" % t})
    r.zadd("lf:stage:lead", {lid: t})
    r.zadd("lf:top", {lid: 1000.0})


def test_link_of_a_known_lead_of_the_layout_before():
    env = start("edgev1")
    what = "legacy"
    r = env.r
    legacy_lead(r, "u-a", T0)
    legacy_lead(r, "u-c", T0)
    r.set("lf:epoch", "0123456789abcdef0123456789abcdef")  # a Redis of the layout before
    # One batch: A (legacy) aliased with its events around the alias; C (legacy) identified
    # by D with no event of C (C is read as the visitor it might be: its legacy hash).
    env.produce_events([
        page("a2", T1, "u-a"),
        alias("x1", T1 + 1000, "u-a", "u-b"),
        page("a3", T1 + 2000, "u-a"),
        page("b1", T1 + 3000, "u-b"),
        identify("y1", T1 + 4000, "u-c", "u-d"),
        page("d1", T1 + 5000, "u-d"),
    ])
    run = run_traced(env, "edgev1")
    env.wait_consumed(6, proc=run, timeout=30)
    check_eq(batch_sizes(run)[:1], [6], "%s: one batch of 6 events" % what)
    h = check_lead(env, "u-a", {"events": 3, "n.page_view": 3, "seq": 1, "layout": 2},
                   [(T0, 5), (T1, 5), (T1 + 2000, 5)], what)
    check_eq(H.history(h), ["1|visitor|lead|first_seen|%d|5.00" % T0], "%s: A's history" % what)
    c = check_lead(env, "u-c", {"events": 1, "n.page_view": 1, "layout": 1}, [(T0, 5)], what)
    check_eq(c.get("v"), "3", "%s: C's legacy hash untouched" % what)
    check(r.zscore("lf:stage:lead", "u-c") is not None, "%s: C's legacy stage entry" % what)
    check_lead(env, "u-b", {"events": 2, "n.alias": 1, "n.page_view": 1},
               [(T1 + 1000, 3), (T1 + 3000, 5)], what)
    check_lead(env, "u-d", {"events": 2, "n.identify": 1, "n.page_view": 1},
               [(T1 + 4000, 2), (T1 + 5000, 5)], what)
    check_no_link(env, ["u-a", "u-b", "u-c", "u-d"], what)
    check_progress(env, 6, 2, what)
    # C's next event continues its legacy record.
    env.produce_events([page("c2", T1 + 6000, "u-c")])
    env.wait_consumed(7, proc=run, timeout=30)
    check_lead(env, "u-c", {"events": 2, "n.page_view": 2, "seq": 1, "layout": 2},
               [(T0, 5), (T1 + 6000, 5)], what)
    check_no_link(env, ["u-a", "u-b", "u-c", "u-d"], what)
    # Legacy records were never counted: each from its first write by this version.
    check_eq(H.funnel_of(r), {"lead": 4}, "%s: lf:funnel" % what)
    check_progress(env, 7, 2, what)
    check_transitions(env, {"u-b:1": "first_seen", "u-d:1": "identify"}, what)
    check_eq(run.stop(), 0, "exit status")


if __name__ == "__main__":
    H.main([
        test_alias_previous_id_is_a_known_lead_same_batch,
        test_identify_anonymous_id_is_a_known_lead_same_batch,
        test_link_of_a_known_lead_across_batches,
        test_link_of_a_known_lead_of_the_layout_before,
    ])
