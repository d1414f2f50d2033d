"""`leadflow run` end to end against redis-server and the embedded broker: scoring by hand,
identity, duplicates, a generated stream, clean shutdown and restart, Redis down at start.
Run: LF_BIN=build/leadflow python3 tests/integration/test_pipeline.py"""
import calendar
import json
import math
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq, check_close, DAY_MS, HOUR_MS  # noqa: E402

# A model small enough to compute every number by hand.
SMALL_MODEL = """
processing:
  batch_max_ms: 20
limits:
  max_event_bytes: 2048
  min_timestamp: "2015-01-01T00:00:00Z"
  max_timestamp: "2100-01-01T00:00:00Z"
model:
  decay:
    half_life: 1d
  grades:
    L1: 80
    L2: 40
  stages:
    mql:
      enter: 60
      exit: 45
  engagement:
    - name: page_views
      kind: page_view
      points: 5
      cap: {points: 10, per: 1d}
    - name: forms
      kind: form_submit
      points: 30
  fit:
    - name: enterprise
      traits: {company_tier: enterprise}
      points: 20
"""
VERSION = "test-e2e-1"
H_MS = DAY_MS  # the half-life
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000  # a UTC day boundary: cap windows align


def small_rules(env):
    return env.write_rules('version: "%s"\n' % VERSION + env.connections() + SMALL_MODEL)


def decay(dt_ms):
    return 2.0 ** (-dt_ms / H_MS)


def start_small(name, partitions=2):
    env = H.new_env(name)
    env.start_redis()
    env.start_broker(partitions)
    small_rules(env)
    return env


def transitions_of(env, want, timeout=30):
    """Read the transitions topic until `want` distinct transition ids are there; return the
    decoded messages (with their key)."""
    seen = set()
    done = [0]

    def enough(msgs):  # incremental: called after every poll
        for m in msgs[done[0]:]:
            seen.add(H.decode_transition(m.value())["transition_id"])
        done[0] = len(msgs)
        return len(seen) >= want
    msgs = env.consume(H.TRANSITIONS_TOPIC, enough, timeout=timeout, idle_after=1.0)
    out = []
    for m in msgs:
        t = H.decode_transition(m.value())
        t["_key"] = m.key().decode() if m.key() is not None else None
        hdrs = dict(m.headers() or [])
        t["_hdr_id"] = hdrs.get("lf.transition_id", b"").decode()
        out.append(t)
    return out


def check_conservation(p):
    check(p["consumed"] == p["applied"] + p["duplicates"] + p["dead"],
          "conservation: consumed %(consumed)d != applied %(applied)d + duplicates "
          "%(duplicates)d + dead %(dead)d" % p)


#---- 1. End to end, by hand --------------------------------------------------------------------

def test_end_to_end_by_hand():
    env = start_small("e2e")
    L = "u-alice"
    T = [T0 + k * HOUR_MS for k in range(7)]
    T7 = T0 + 3 * DAY_MS
    seq = [
        (H.event("page", "a1", T[1], user=L,
                 url="https://ex.com/pricing?utm_source=linkedin&utm_medium=cpc&utm_campaign=spring"),
         "json"),
        (H.event("page", "a2", T[2], user=L, url="https://ex.com/blog", ts_format="ms"),
         "msgpack"),
        (H.event("page", "a3", T[3], user=L, url="https://ex.com/docs"), "json"),  # capped
        (H.event("identify", "a4", T[4], user=L,
                 traits={"company_tier": "enterprise", "company": "Acme"}), "msgpack"),
        (H.event("track", "a5", T[5], user=L, event="form_submit",
                 campaign={"source": "google", "medium": "email", "name": "webinar"}), "json"),
        (H.event("track", "a6", T[6], user=L, event="Form Submitted", ts_format="ms"),
         "msgpack"),
        (H.event("page", "a7", T7, user=L, url="https://ex.com/home"), "json"),
    ]
    env.produce_events(seq)
    run = env.start_run()
    p = env.wait_consumed(len(seq), proc=run)
    check_eq((p["applied"], p["duplicates"], p["dead"]), (7, 0, 0), "applied/dup/dead")
    check_eq(p["transitions"], 3, "progress transitions")
    # The partition's event-time clock is recorded with its progress: a new owner that gets
    # no new event there still knows how far the stream went (and sweeps decayed MQLs).
    clocks = {k: int(v) for k, v in env.r.hgetall(env.wm_key()).items() if k.endswith(".ts")}
    check_eq(list(clocks.values()), [T0 + 3 * DAY_MS], "the partition clock <p>.ts in lf:wm")

    # By hand (docs/contract.md "Semantics"): half-life 1 d, page views 5 points capped at 10 a day.
    E2 = 5 * decay(T[2] - T[1]) + 5  # a3 is capped: no points (t moves to T3, e decays alike)
    E5 = E2 * decay(T[5] - T[2]) + 30
    check(20 + E5 < 60, "test arithmetic: a5 must stay below the MQL threshold")
    E6 = E5 * decay(T[6] - T[5]) + 30
    check(20 + E6 >= 60, "test arithmetic: a6 must cross the MQL threshold")
    exit_at = T[6] + math.floor(H_MS * math.log2(E6 / (45 - 20))) + 1
    check(exit_at < T7, "test arithmetic: the decay exit comes before a7")
    E7 = E6 * decay(T7 - T[6]) + 5
    score7 = 20 + E7

    h = env.lead(L)
    check(h, "no hash lf:lead:{%s}" % L)
    check_eq(h.get("stage"), "nurture", "stage")
    check_eq(h.get("seq"), "3", "seq")
    check_close(h["fit"], 20, "fit")
    check_close(h["eng"], E7, "eng")
    check_eq(int(h["t"]), T7, "t")
    check_close(h["score"], score7, "score")
    check_eq(h.get("grade"), "L3", "grade")
    check_eq(int(h["first_seen"]), T[1], "first_seen")
    check_eq(int(h["last_seen"]), T7, "last_seen")
    check_eq(int(h["stage_at"]), exit_at, "stage_at")
    check_eq(h.get("events"), "7", "events")
    check_eq((h.get("n.page_view"), h.get("n.form_submit"), h.get("n.identify")),
             ("4", "2", "1"), "counters n.page_view, n.form_submit, n.identify")
    check_eq((h.get("ft.source"), h.get("ft.medium"), h.get("ft.campaign"), h.get("ft.at")),
             ("linkedin", "cpc", "spring", str(T[1])), "first touch")
    check_eq((h.get("lt.source"), h.get("lt.medium"), h.get("lt.campaign"), h.get("lt.at")),
             ("google", "email", "webinar", str(T[5])), "last touch")
    check_eq(h.get("rules_version"), VERSION, "rules_version")
    check_eq(h.get("tr.company_tier"), "enterprise", "tr.company_tier")
    check("anon" not in h, "a known lead has no anon field")

    # Indexes.
    # lf:top: the forward-decay key of the engagement (README, Redis keys).
    check_close(env.r.zscore("lf:top", L), 1100 + math.log2(E7) + T7 / H_MS, "lf:top key")
    # Stage sets only for the sales-active stages: a lead in nurture is in none.
    for s in H.STAGES:
        check(env.r.zscore("lf:stage:" + s, L) is None, "in lf:stage:%s" % s)
    check_eq(H.funnel_of(env.r), {"nurture": 1}, "lf:funnel")
    check_eq(int(h["stage_at"]), exit_at, "stage_at (the crossing time)")

    # Transitions: each once, seq 1, 2, 3.
    ts = transitions_of(env, 3)
    ids = [t["transition_id"] for t in ts]
    check_eq(sorted(ids), ["%s:1" % L, "%s:2" % L, "%s:3" % L], "transition ids (each once)")
    by = {t["seq"]: t for t in ts}
    want = {
        1: ("visitor", "lead", "first_seen", T[1], "a1", 0.0, 5.0),
        2: ("lead", "mql", "score_threshold", T[6], "a6", 20.0, E6),
        3: ("mql", "nurture", "score_decay", exit_at, None, 20.0, E6 * decay(exit_at - T[6])),
    }
    for n, (frm, to, reason, at, trig, fit, eng) in want.items():
        t = by[n]
        what = "transition %d" % n
        check_eq(t["transition_id"], "%s:%d" % (L, n), what + " transition_id")
        check_eq(t["_hdr_id"], t["transition_id"], what + " header lf.transition_id")
        check_eq(t["_key"], L, what + " key")
        check_eq(t["lead_id"], L, what + " lead_id")
        check_eq((t["from"], t["to"], t["reason"]), (frm, to, reason), what + " from/to/reason")
        check_eq(t["at"], at, what + " at")
        check_eq(t["trigger"], trig, what + " trigger")
        check_close(t["fit"], fit, what + " fit")
        check_close(t["engagement"], eng, what + " engagement")
        check_close(t["score"], fit + eng, what + " score")
        check_eq(t["rules_version"], VERSION, what + " rules_version")
        sc = fit + eng
        check_eq(t["grade"], "L1" if sc >= 80 else "L2" if sc >= 40 else "L3", what + " grade")
    check(by[3]["score"] < 45 and by[3]["score"] > 44.99, "decay exit score just below 45")
    # The stage history in the hash agrees.
    hist = H.history(env.lead(L))
    check_eq([x.split("|")[:4] for x in hist],
             [["1", "visitor", "lead", "first_seen"], ["2", "lead", "mql", "score_threshold"],
              ["3", "mql", "nurture", "score_decay"]], "history fields h1..h3")
    check(all(len(x) <= 64 for x in hist), "history entries fit Redis's compact hash encoding")
    check_eq(env.r.object("encoding", "lf:lead:{%s}" % L), "listpack", "lead hash encoding")
    check_eq(run.stop(), 0, "exit status after SIGTERM")


#---- 2. Identity ------------------------------------------------------------------------------

def test_identity_merge():
    env = start_small("ident")
    L, A = "u-bob", "a-bob"
    T = [T0 + k * HOUR_MS for k in range(6)]
    run = env.start_run()
    env.produce_events([
        (H.event("page", "b1", T[1], anon=A,
                 url="https://ex.com/?utm_source=newsletter&utm_medium=email&utm_campaign=march"),
         "json"),
        (H.event("page", "b2", T[2], anon=A, url="https://ex.com/pricing"), "msgpack"),
    ])
    env.wait_consumed(2, proc=run)
    v = env.lead(A)
    check_eq((v.get("stage"), v.get("anon")), ("visitor", "1"), "the visitor before identify")
    # A visitor: a string record with a TTL, in no index, counted in lf:funnel.
    check(env.r.exists("lf:v:{%s}" % A) and not env.r.exists("lf:lead:{%s}" % A),
          "the visitor is a record lf:v:{%s}, not a lead hash" % A)
    ttl = env.r.ttl("lf:v:{%s}" % A)
    check(29 * 86400 < ttl <= 30 * 86400 + 30 * 86400 // 64 + 1, "visitor TTL %r" % ttl)
    check(env.r.zscore("lf:stage:visitor", A) is None and env.r.zscore("lf:top", A) is None,
          "a visitor in an index")
    check_eq(H.funnel_of(env.r), {"visitor": 1}, "lf:funnel with one visitor")
    identify = H.event("identify", "b3", T[3], user=L, anon=A,
                       traits={"company_tier": "enterprise"})
    identify_bytes = H.encode(identify, "json")
    env.produce([(L.encode(), identify_bytes)])
    env.wait_consumed(3, proc=run)
    check_eq(env.r.get("lf:alias:{%s}" % A), L, "lf:alias:{%s}" % A)
    check(not env.r.exists("lf:lead:{%s}" % A) and not env.r.exists("lf:v:{%s}" % A),
          "the visitor record is gone")
    atl = env.r.ttl("lf:alias:{%s}" % A)
    check(399 * 86400 < atl <= 400 * 86400, "alias TTL %r" % atl)
    check_eq(H.funnel_of(env.r), {"lead": 1}, "lf:funnel after the link")
    check(env.r.zscore("lf:top", A) is None, "the visitor left lf:top")
    for s in H.STAGES:
        check(env.r.zscore("lf:stage:" + s, A) is None, "the visitor left lf:stage:%s" % s)
    # Anonymous-only events after the link count for the lead.
    env.produce_events([
        (H.event("track", "b4", T[4], anon=A, event="form_submit"), "msgpack"),
        (H.event("page", "b5", T[5], anon=A, url="https://ex.com/blog"), "json"),  # capped
    ])
    p = env.wait_consumed(5, proc=run)
    check_eq((p["applied"], p["duplicates"], p["dead"]), (5, 0, 0), "applied/dup/dead")
    check(not env.r.exists("lf:lead:{%s}" % A), "no visitor hash after anonymous events")
    h = env.lead(L)
    # t is the latest event time, also of b5, whose points the cap refused (docs/contract.md "Semantics").
    eng = (5 * decay(T[4] - T[1]) + 5 * decay(T[4] - T[2]) + 30) * decay(T[5] - T[4])
    check(20 + eng < 60, "test arithmetic: stays below the MQL threshold")
    check_close(h["eng"], eng, "eng (visitor's points decay-aligned + the lead's)")
    check_eq(int(h["t"]), T[5], "t")
    check_close(h["fit"], 20, "fit")
    check_eq((h.get("n.page_view"), h.get("n.identify"), h.get("n.form_submit"), h.get("events")),
             ("3", "1", "1", "5"), "counters")
    check_eq((int(h["first_seen"]), int(h["last_seen"])), (T[1], T[5]), "first/last seen")
    check_eq((h.get("ft.source"), h.get("ft.medium"), h.get("ft.campaign"), h.get("ft.at")),
             ("newsletter", "email", "march", str(T[1])), "first touch from the visitor")
    check_eq((h.get("stage"), h.get("seq")), ("lead", "1"), "stage, seq")
    check("anon" not in h, "the lead is not anonymous")
    check(env.r.zscore("lf:stage:lead", L) is None, "lead in lf:stage:lead (no such set)")
    check(env.r.zscore("lf:top", L) is not None, "the lead is in lf:top")
    ts = transitions_of(env, 1)
    check_eq([(t["transition_id"], t["from"], t["to"], t["reason"], t["trigger"], t["at"])
              for t in ts], [("%s:1" % L, "visitor", "lead", "identify", "b3", T[3])],
             "transitions")
    check_close(ts[0]["score"], 20 + 5 * decay(T[3] - T[1]) + 5 * decay(T[3] - T[2]),
                "identify transition score")
    # Replaying the identify (same message, a later offset) changes nothing.
    before = env.lead(L)
    env.produce([(L.encode(), identify_bytes)])
    p = env.wait_consumed(6, proc=run)
    check_eq((p["applied"], p["duplicates"]), (5, 1), "the replayed identify is a duplicate")
    after = env.lead(L)
    strip = lambda d: {k: v for k, v in d.items() if k not in lfrecord.BOOKKEEPING}  # noqa: E731
    check_eq(strip(after), strip(before), "lead hash after replaying the identify")
    check_eq(env.r.get("lf:alias:{%s}" % A), L, "alias after replay")
    check(not env.r.exists("lf:lead:{%s}" % A), "no visitor hash after replay")
    check_eq(run.stop(), 0, "exit status")


#---- 3. Duplicates ------------------------------------------------------------------------------

def test_duplicates():
    env = start_small("dup", partitions=1)
    L = "u-carol"
    T1, T2 = T0 + HOUR_MS, T0 + 2 * HOUR_MS
    e = H.event("track", "c-dup", T1, user=L, event="form_submit")
    where = env.produce_events([
        (e, "json"),
        (e, "json"),      # the same bytes again, at a later offset
        (e, "msgpack"),   # the same messageId in the other format
        (H.event("page", "c2", T2, user=L, url="https://ex.com/x"), "msgpack"),
        (e, "json"),      # after another event of the lead
    ])
    check_eq(len({w for w in where}), 5, "five distinct offsets")
    run = env.start_run()
    p = env.wait_consumed(5, proc=run)
    check_eq((p["applied"], p["duplicates"], p["dead"]), (2, 3, 0), "applied/duplicates/dead")
    check_conservation(p)
    h = env.lead(L)
    check_eq((h.get("n.form_submit"), h.get("n.page_view"), h.get("events")), ("1", "1", "2"),
             "counters")
    check_close(h["eng"], 30 * decay(T2 - T1) + 5, "eng (the form counted once)")
    check_eq(run.stop(), 0, "exit status")


#---- 5. Generated stream ----------------------------------------------------------------------

def read_stats(path):
    with open(path) as f:
        return json.load(f)


def check_final_state(env, label=""):
    """Invariants of a finished run over the whole Redis state."""
    leads = env.all_leads()
    check(leads, label + "no lead hashes")
    # Every lead in the lf:stage:* set of its stage if that stage has one, else in none.
    member = {}
    for s in H.STAGES:
        for lid in env.r.zrange("lf:stage:" + s, 0, -1):
            member.setdefault(lid, []).append(s)
    for lid, h in leads.items():
        check_eq(member.get(lid), H.stage_sets_of(h.get("stage")),
                 label + "stage sets of lead %s" % lid)
    extra = set(member) - set(leads)
    check(not extra, label + "stage set members without a hash: %s" % sorted(extra)[:5])
    known = [lid for lid, h in leads.items() if h.get("stage") != "visitor"]
    check_eq(env.r.zcard("lf:top"), min(len(known), 10000), label + "ZCARD lf:top vs known leads")
    check_eq(H.funnel_of(env.r), H.funnel_from_records(leads), label + "lf:funnel vs records")
    return leads


def test_generated_stream():
    env = H.new_env("gen")
    env.start_redis()
    env.start_broker(8)
    H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW)
    run = env.start_run()
    stats_path = env.path("gen-stats.json")
    gen = env._proc("gen", [H.LF_BIN, "gen", "--leads", "2000", "--events", "30000", "--seed",
                            "7", "--brokers", env.brokers, "--topic", H.EVENTS_TOPIC, "--stats",
                            stats_path, "--quiet"])
    rc = gen.p.wait(120)
    check_eq(rc, 0, "leadflow gen exit status")
    st = read_stats(stats_path)
    check_eq(st["events"], 30000, "gen stats events")
    check_eq(st["valid"] + st["duplicates"] + st["bad"], st["events"], "gen stats sum")
    on_topic = env.high_watermarks(H.EVENTS_TOPIC)
    check_eq(on_topic, st["events"], "messages on the events topic (mock duplicated a batch?)")
    p = env.wait_consumed(st["events"], timeout=120, proc=run)
    env.settle(run)
    check_eq(run.stop(), 0, "exit status")  # a frozen state to check
    p = env.progress()
    check_conservation(p)
    check_eq(p["dead"], st["bad"], "dead-lettered vs gen's bad count")
    check_eq(p["duplicates"], st["duplicates"], "duplicates vs gen's duplicates")
    check_eq(p["applied"], st["valid"], "applied vs gen's valid")
    leads = check_final_state(env)
    total_seq = sum(int(h.get("seq", 0)) for h in leads.values())
    check_eq(p["transitions"], total_seq, "progress transitions vs sum of lead seq")
    # Transitions: unique ids, per lead contiguous from 1 up to the hash's seq.
    ts = transitions_of(env, total_seq, timeout=60)
    ids = [t["transition_id"] for t in ts]
    dups = len(ids) - len(set(ids))
    check_eq(dups, 0, "transition messages published more than once")
    per = {}
    for t in ts:
        check_eq(t["transition_id"], "%s:%d" % (t["lead_id"], t["seq"]), "transition_id form")
        check_eq(t["_key"], t["lead_id"], "transition key")
        per.setdefault(t["lead_id"], []).append(t["seq"])
    for lid, h in leads.items():
        n = int(h.get("seq", 0))
        got = sorted(per.get(lid, []))
        check_eq(got, list(range(1, n + 1)), "transition seqs of lead %s" % lid)
    check(set(per) <= set(leads), "transitions for leads without a hash")
    # The dead letters match gen's reasons.
    dl = env.consume(H.DEAD_TOPIC, lambda m: len(m) >= st["bad"], timeout=30)
    reasons = {}
    for m in dl:
        r = dict(m.headers() or []).get("lf.reason", b"").decode()
        reasons[r] = reasons.get(r, 0) + 1
    want = {k: v for k, v in st["bad_by_reason"].items() if v}
    check_eq(reasons, want, "dead letters by lf.reason vs gen's bad_by_reason")


#---- 6. Clean shutdown and restart -------------------------------------------------------------

GEN_SMALL = ["--leads", "600", "--events", "8000", "--seed", "11"]


def fill_and_run_reference(name="ref", prepare_redis=None):
    """One uninterrupted run over the generated stream (prepare_redis(env) first, if given);
    returns (env, leads, progress, the stopped run)."""
    env = H.new_env(name)
    env.start_redis()
    if prepare_redis:
        prepare_redis(env)
    env.start_broker(1)
    env.deploy_rules(batch_max_events=200)
    gen = env._proc("gen", [H.LF_BIN, "gen"] + GEN_SMALL + ["--brokers", env.brokers,
                                                             "--quiet"])
    check_eq(gen.p.wait(120), 0, "gen exit status")
    run = env.start_run(name)
    env.wait_consumed(8000, timeout=120, proc=run)
    env.settle(run)
    check_eq(run.stop(), 0, "%s run exit status" % name)
    return env, env.all_leads(), env.progress(), run


def compare_states(got, want, label):
    check_eq(sorted(got), sorted(want), label + "lead ids")
    for lid in want:
        a, b = got[lid], want[lid]
        fa = set(a) - set(lfrecord.BOOKKEEPING)
        fb = set(b) - set(lfrecord.BOOKKEEPING)
        check_eq(sorted(fa), sorted(fb), label + "fields of lead %s" % lid)
        for f in fa:
            if a[f] == b[f]:
                continue
            try:
                x, y = float(a[f]), float(b[f])
            except ValueError:
                raise H.TestFailure("%slead %s field %s: %r vs %r" % (label, lid, f, a[f], b[f]))
            check(H.close_rel(x, y), "%slead %s field %s: %r vs %r" % (label, lid, f, a[f], b[f]))


def test_sigterm_restart_equals_one_run():
    ref_env, ref, ref_p, _ = fill_and_run_reference()
    env = H.new_env("restart")
    env.start_redis()
    env.start_broker(1)
    env.deploy_rules(batch_max_events=200)
    # Produced at a rate while the processor consumes: SIGTERM lands mid-stream. 1000/s: the
    # stream lasts 8 s, longer than the first group join (~3 s, more on a loaded machine),
    # which at 3000/s could outlast it (the whole stream consumed before the signal).
    gen = env._proc("gen", [H.LF_BIN, "gen"] + GEN_SMALL + ["--brokers", env.brokers,
                                                             "--rate", "1000", "--quiet"])
    run = env.start_run("first")
    H.wait_until(lambda: env.progress()["consumed"] >= 1500, 60, "1500 events consumed")
    t0 = time.monotonic()
    run.signal(signal.SIGTERM)
    try:
        rc = run.p.wait(10)
    except Exception:
        raise H.TestFailure("leadflow run did not exit within 10 s of SIGTERM")
    took = time.monotonic() - t0
    check_eq(rc, 0, "exit status after SIGTERM")
    check(took < 8, "shutdown took %.1f s" % took)
    mid = env.progress()["consumed"]
    check_eq(gen.p.wait(120), 0, "gen exit status")
    check(mid < 8000, "SIGTERM landed after the stream ended (consumed %d)" % mid)
    run2 = env.start_run("second")
    env.wait_consumed(8000, timeout=120, proc=run2)
    env.settle(run2)
    check_eq(run2.stop(), 0, "second run exit status")
    p = env.progress()
    check_conservation(p)
    for k in ("applied", "duplicates", "dead", "transitions"):
        check_eq(p[k], ref_p[k], "progress %s vs the uninterrupted run" % k)
    compare_states(env.all_leads(), ref, "restarted vs uninterrupted: ")
    check_final_state(env)
    # Other keys too: aliases and the indexes.
    ref_alias = {k: ref_env.r.get(k) for k in ref_env.r.scan_iter(match="lf:alias:*")}
    alias = {k: env.r.get(k) for k in env.r.scan_iter(match="lf:alias:*")}
    check_eq(alias, ref_alias, "alias keys")
    for s in H.STAGES:
        check_eq(sorted(env.r.zrange("lf:stage:" + s, 0, -1)),
                 sorted(ref_env.r.zrange("lf:stage:" + s, 0, -1)), "lf:stage:%s members" % s)


#---- 7a. Batches close when nothing more is waiting ------------------------------------------

def test_a_lone_event_is_not_held_for_company():
    """processing.batch_max_ms is only an upper bound: with batch_linger_ms 0 (the default) a
    batch closes as soon as no more events are waiting, so a lone event is applied at once
    even with batch_max_ms at a minute."""
    env = H.new_env("lone")
    env.start_redis()
    env.start_broker(1)
    env.deploy_rules(batch_max_ms=60000)
    run = env.start_run()
    H.wait_until(lambda: "assigned" in run.log_text(), 30, "partitions assigned")
    for i in range(1, 3):
        env.produce_events([(H.event("track", "lone-%d" % i, T0 + i * 60000, user="u-lone",
                                     event="form_submit"), "msgpack")])
        # 20 s < the 60 s a batch could stay open: only a batch closed early passes
        env.wait_consumed(i, timeout=20, proc=run)
    check_eq(env.lead("u-lone").get("n.form_submit"), "2", "form submits applied")
    check_eq(run.stop(), 0, "exit status")


#---- 7b. New leads by RESTORE or by HSET -------------------------------------------------------

def test_restore_and_hset_write_the_same_leads():
    """Lead hashes go to Redis as one RESTORE REPLACE of a ready-made listpack, new and
    updated ones alike; a server that refuses RESTORE (here an ACL) gets HSET of the changed
    fields and HDEL of dropped ones. Both give the same hashes (stage history included), of
    the same size in memory."""
    ref_env, ref, ref_p, _ = fill_and_run_reference()
    stats = ref_env.r.info("commandstats")
    restores = stats.get("cmdstat_restore", {}).get("calls", 0)
    # More RESTOREs than leads: updates of stored leads, read from Redis or from the cache,
    # went that way too.
    check(restores >= len(ref) + 1000, "leads written with RESTORE: %d RESTORE calls for %d "
          "leads" % (restores, len(ref)))
    check(sum(1 for h in ref.values() if any(f in h for f in ("h2", "h3"))) >= 20,
          "leads with a stage history of several transitions")
    env, got, p, run = fill_and_run_reference(
        "hsetonly", lambda e: e.r.execute_command("ACL", "SETUSER", "default", "-restore"))
    check("refused RESTORE" in run.log_text() and "written with HSET" in run.log_text(),
          "the fallback to HSET is logged")
    check_eq(env.r.info("commandstats").get("cmdstat_restore", {}).get("calls", 0), 0,
             "RESTORE calls that ran on the server that refuses them")
    for k in ("applied", "duplicates", "dead", "transitions"):
        check_eq(p[k], ref_p[k], "progress %s, HSET vs RESTORE" % k)
    compare_states(got, ref, "HSET vs RESTORE: ")
    # Same encodings, same sizes (the field order differs: HSET appends a new field where
    # RESTORE puts it in the encoder's order).
    for lid in sorted(ref)[:200]:
        k = "lf:lead:{%s}" % lid
        check_eq(env.r.object("encoding", k), ref_env.r.object("encoding", k),
                 "encoding of %s" % k)
        check_eq(env.r.memory_usage(k, samples=0), ref_env.r.memory_usage(k, samples=0),
                 "MEMORY USAGE of %s" % k)
    check_final_state(env)
    check_final_state(ref_env)


def test_restore_refused_after_a_reconnect():
    """The probe is asked again on every new connection: a server that stops taking RESTORE
    (here its ACL changes and the connections drop) gets HSET, and nothing stalls."""
    env = start_small("reprobe", partitions=1)
    run = env.start_run()

    def batch(first, n):
        env.produce_events([(H.event("track", "rp-%d" % i, T0 + i * 60000, user="u-rp-%d" % i,
                                     event="form_submit"), "msgpack")
                            for i in range(first, first + n)])

    batch(0, 20)
    env.wait_consumed(20, timeout=60, proc=run)
    check(env.r.info("commandstats").get("cmdstat_restore", {}).get("calls", 0) >= 20,
          "the first new leads were written with RESTORE")
    env.r.execute_command("ACL", "SETUSER", "default", "-restore")
    env.r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    batch(20, 20)
    p = env.wait_consumed(40, timeout=60, proc=run)
    check_eq((p["applied"], p["duplicates"], p["dead"]), (40, 0, 0), "applied/dup/dead")
    for i in range(40):
        check_eq(env.lead("u-rp-%d" % i).get("n.form_submit"), "1", "lead u-rp-%d" % i)
    check("refused RESTORE" in run.log_text(), "the switch to HSET is logged")
    check_eq(run.stop(), 0, "exit status")


def test_a_stored_lead_is_rewritten_whole():
    """A lead read back from Redis (a fresh run: nothing cached) is written as its whole new
    hash: the stage history it had stays, a field leadflow does not write (an operator's, an
    old layout's) goes, and the new event's fields are there. The same on a server that
    refuses RESTORE (HSET of the changed fields, HDEL of the dropped one)."""
    for name, deny_restore in (("whole", False), ("whole-hset", True)):
        env = start_small(name, partitions=1)
        if deny_restore:
            env.r.execute_command("ACL", "SETUSER", "default", "-restore")
        L = "u-whole"
        run = env.start_run("first")
        env.produce_events([(H.event("identify", "w1", T0, user=L,
                                     traits={"company_tier": "enterprise"}), "msgpack")])
        env.wait_consumed(1, proc=run)
        check_eq(run.stop(), 0, "%s: first run exit status" % name)
        before = env.lead(L)
        hist = {f: v for f, v in before.items() if re.fullmatch(r"h[0-7]", f)}
        check(len(hist) == 1, "%s: one history field after identify: %r" % (name, before))
        env.r.hset("lf:lead:{%s}" % L, "x.note", "called by an operator")
        env.r.config_resetstat()
        run = env.start_run("second")
        env.produce_events([(H.event("track", "w2", T0 + 60000, user=L, event="form_submit"),
                             "msgpack")])
        env.wait_consumed(2, proc=run)
        check_eq(run.stop(), 0, "%s: second run exit status" % name)
        after = env.lead(L)
        check_eq({f: v for f, v in after.items() if f in hist}, hist,
                 "%s: the stored stage history is kept" % name)
        check("x.note" not in after, "%s: a field leadflow does not write is dropped: %r"
              % (name, after))
        check_eq((after.get("n.form_submit"), after.get("events"), after.get("v")),
                 ("1", "2", "2"), "%s: the new event's fields" % name)
        stats = env.r.info("commandstats")
        restores = stats.get("cmdstat_restore", {}).get("calls", 0)
        if deny_restore:
            check_eq(restores, 0, "%s: RESTORE calls on a server that refuses them" % name)
            check(stats.get("cmdstat_hdel", {}).get("calls", 0) >= 1,
                  "%s: the dropped field went by HDEL" % name)
        else:
            # the probe's RESTORE, and the lead's
            check_eq(restores, 2, "%s: RESTORE calls in the second run" % name)


def test_consuming_resumes_after_a_failed_outbox_flush():
    """After an assignment the outboxes are read and published before anything else; while
    that fails, the partitions are paused for the backoff. Once it succeeds they must be
    consumed again (they once stayed paused for good: only a batch resumed them, and no
    batch could come). Forced with an ACL: positions (HMGET) are readable, the outbox
    (HGETALL) is not, until the test allows it again."""
    env = start_small("flushfail", partitions=1)
    run = env.start_run()
    H.wait_until(lambda: "consuming" in run.log_text(), 30, "the run connected")
    env.r.execute_command("ACL", "SETUSER", "default", "-hgetall")
    try:
        H.wait_until(lambda: "HGETALL outbox" in run.log_text(), 30,
                     "the outbox flush failing after the assignment")
        # A few backoff rounds, partitions paused: Redis's ACL log counts the refused reads.
        H.wait_until(lambda: sum(int(e.get("count", 0)) for e in env.r.acl_log()
                                 if e.get("object") == "hgetall") >= 3, 30,
                     "three outbox reads refused", interval=0.02)
    finally:
        env.r.execute_command("ACL", "SETUSER", "default", "+hgetall")
    env.produce_events([(H.event("track", "ff-%d" % i, T0 + i * 60000, user="u-ff-%d" % i,
                                 event="form_submit"), "msgpack") for i in range(10)])
    p = env.wait_consumed(10, timeout=30, proc=run)
    check_eq((p["applied"], p["dead"]), (10, 0), "applied/dead")
    check_eq(env.lead("u-ff-9").get("n.form_submit"), "1", "the last lead")
    check_eq(run.stop(), 0, "exit status")


#---- 8. Redis down at start ---------------------------------------------------------------------

def redis_down_scenario(name, outage_after_assign_s):
    env = H.new_env(name)
    env.start_broker(2)
    env.redis_port = H.free_port()
    small_rules(env)
    evs = []
    for i in range(40):
        lid = "u-%02d" % (i % 8)
        evs.append((H.event("track", "rd-%d" % i, T0 + i * 60000, user=lid,
                            event="form_submit"), "json" if i % 2 else "msgpack"))
    env.produce_events(evs)
    run = env.start_run()
    H.wait_until(lambda: "degraded" in run.log_text(), 30, "'degraded' in the run's log")
    if outage_after_assign_s is not None:
        # Keep Redis away past the first partition assignment (the group join takes ~3 s)
        # and then some: an outage at start can last longer than a few retries.
        H.wait_until(lambda: "assigned" in run.log_text() or not run.alive(), 30,
                     "partitions assigned")
        t_end = time.monotonic() + outage_after_assign_s
        while time.monotonic() < t_end:
            check(run.alive(), "leadflow run exited while Redis was down (status %s)"
                  % run.p.returncode)
            time.sleep(0.2)
    env.start_redis(env.redis_port)
    p = env.wait_consumed(40, timeout=45, proc=run)
    check_eq((p["applied"], p["duplicates"], p["dead"]), (40, 0, 0), "applied/dup/dead")
    leads = env.all_leads()
    check_eq(len(leads), 8, "leads")
    for lid, h in leads.items():
        check_eq(h.get("n.form_submit"), "5", "form submits of %s" % lid)
    check_eq(run.stop(), 0, "exit status")


def test_redis_down_at_start_brief():
    """Redis comes up during the first group join."""
    redis_down_scenario("redisbrief", None)


def test_redis_down_at_start_long():
    """Redis comes up 10 s after the partitions were assigned."""
    redis_down_scenario("redislong", 10)



if __name__ == "__main__":
    H.main([
        test_end_to_end_by_hand,
        test_identity_merge,
        test_duplicates,
        test_generated_stream,
        test_sigterm_restart_equals_one_run,
        test_a_lone_event_is_not_held_for_company,
        test_restore_and_hset_write_the_same_leads,
        test_restore_refused_after_a_reconnect,
        test_a_stored_lead_is_rewritten_whole,
        test_consuming_resumes_after_a_failed_outbox_flush,
        test_redis_down_at_start_brief,
        test_redis_down_at_start_long,
    ])
