"""`leadflow compare`: the back-test report between two lead states of one Redis (issue 17).

One hand-made event stream is scored by `leadflow run` three times over the same topic, each
run with its own consumer group and key prefix: the rules in force ("before", lf:), rules
whose form submits weigh more ("after", lf:b:), and the before rules again (lf:c:). The
report of lf: against lf:b: is checked number by number against an oracle computed here from
the events (docs/contract.md "Semantics": score = fit + sum of points decayed to --at); lf: against lf:c: must
show no difference. Then text output, a lead only one side has, a lead whose history was cut,
and the usage errors.
Run: LF_BIN=build/leadflow python3 tests/integration/test_compare.py"""
import json
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq, check_close, DAY_MS, HOUR_MS  # noqa: E402

MODEL = """
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
      points: %(forms)d
  fit:
    - name: enterprise
      traits: {company_tier: enterprise}
      points: 20
"""
FORMS = {"before": 30, "after": 40}
MIN = 60000
# Events some hours back from now: a run that has caught up follows the wall clock, and no
# MQL of this stream decays below the exit threshold within a day.
T = (int(time.time() * 1000) - 3 * HOUR_MS) // MIN * MIN
AT = T + 2 * HOUR_MS  # the report's --at: after every event
GOOGLE = "https://ex.com/?utm_source=google&utm_medium=cpc&utm_campaign=spring"
LINKEDIN = "https://ex.com/?utm_source=linkedin&utm_medium=social&utm_campaign=abm"
NEWS = "https://ex.com/?utm_source=newsletter&utm_medium=email"


def leads():
    """The stream, lead by lead: id -> (events as (type, kind, offset ms, url, traits), fit,
    first touch, stage before, stage after). Offsets from T."""
    out = {}
    # Cross mql only under the after rules: two forms a minute apart score 59.99 before
    # (< 60), 79.98 after.
    for i in range(1, 6):
        url = GOOGLE if i <= 3 else None
        tt = ("google", "cpc", "spring") if i <= 3 else ("", "", "")
        out["cross-%d" % i] = ([("track", "form_submit", i * 2 * MIN, url, None),
                               ("track", "form_submit", i * 2 * MIN + MIN, None, None)],
                              0, tt, "lead", "lead_mql")
    # The grade only: a form and a page view: 35 (L3) before, 45 (L2) after; no MQL.
    for i in range(1, 4):
        out["grade-%d" % i] = ([("track", "form_submit", 20 * MIN + i * MIN, None, None),
                               ("page", "page_view", 20 * MIN + i * MIN, NEWS, None)],
                              0, ("newsletter", "email", ""), "lead", "lead")
    # Identical: two page views (their rule is the same on both sides).
    for i in range(1, 5):
        out["same-%d" % i] = ([("page", "page_view", 30 * MIN + i * MIN,
                                "https://ex.com/pricing", None),
                               ("page", "page_view", 30 * MIN + i * MIN + 1000, None, None)],
                              0, ("", "", ""), "lead", "lead")
    # MQL on both sides (fit 20 + forms), a different score, the same grade L1.
    for i in range(1, 3):
        evs = [("identify", None, 40 * MIN + i * 5 * MIN, LINKEDIN,
                {"company_tier": "enterprise"})]
        evs += [("track", "form_submit", 40 * MIN + i * 5 * MIN + k * MIN, None, None)
                for k in (1, 2, 3)]
        out["fit-%d" % i] = (evs, 20, ("linkedin", "social", "abm"), "mql", "mql")
    return out


def stage_of(spec, side):
    return {"lead": "lead", "mql": "mql", "lead_mql": "mql" if side == "after" else "lead"}[spec]


def points(kind, side):
    return {"page_view": 5, "form_submit": FORMS[side]}.get(kind, 0)


def score_at(lid, spec, side, at):
    evs, fit = spec[0], spec[1]
    return fit + sum(points(kind, side) * 2.0 ** (-(at - (T + off)) / DAY_MS)
                     for _, kind, off, _, _ in evs)


def grade(s):
    return "L1" if s >= 80 else "L2" if s >= 40 else "L3"


def events():
    out = []
    for lid, spec in leads().items():
        for n, (typ, kind, off, url, traits) in enumerate(spec[0]):
            out.append((H.event(typ, "%s-%d" % (lid, n), T + off, user=lid, url=url,
                                traits=traits, event=kind if typ == "track" else None),
                        "json"))
    # A visitor: counted, never compared.
    out.append((H.event("page", "anon-1-0", T + 50 * MIN, anon="anon-1", url=None), "json"))
    return out


def nearest_rank(sorted_v, pct):
    if not sorted_v:
        return 0
    rank = max(1, min(len(sorted_v), -(-pct * len(sorted_v) // 100)))
    return sorted_v[rank - 1]


def rules(env, side, prefix, group, version):
    return env.write_rules('version: "%s"\n' % version + H.kafka_block(env.brokers, group) +
                           "redis:\n  host: 127.0.0.1\n  port: %d\n  prefix: \"%s\"\n"
                           % (env.redis_port, prefix) + MODEL % {"forms": FORMS[side]},
                           name="%s.yaml" % prefix.strip(":").replace(":", "-"))


def build(name):
    """The three states: lf: (before rules), lf:b: (after rules), lf:c: (before rules)."""
    env = H.started_env(name)
    evs = events()
    env.produce_events(evs)
    runs = []
    paths = {}
    for prefix, side, version in (("lf:", "before", "cmp-before"), ("lf:b:", "after",
                                                                    "cmp-after"),
                                  ("lf:c:", "before", "cmp-before")):
        group = "cmp-%s-%d" % (prefix.strip(":").replace(":", "-"), os.getpid())
        paths[prefix] = rules(env, side, prefix, group, version)
        runs.append((prefix, group, env.start_run("cmp-" + prefix.strip(":").replace(":", "-"),
                                                  rules=paths[prefix],
                                                  extra=["--exit-idle-ms", "3000"])))
    for prefix, group, proc in runs:
        try:
            rc = proc.p.wait(90)
        except Exception:
            raise H.TestFailure("leadflow run for %s did not exit when idle" % prefix)
        check_eq(rc, 0, "leadflow run for %s: exit status" % prefix)
        wm = env.r.hgetall("%swm:%s:%s" % (prefix, group, H.EVENTS_TOPIC))
        check_eq(int(wm.get("0.consumed", 0)), len(evs), "events consumed into %s" % prefix)
    return env, paths, len(evs), {p: g for p, g, _ in runs}


def compare(env, paths, after_prefix, after_rules, *extra, want_rc=0, json_out=True):
    args = ["compare", "-c", paths["lf:"], "--after-prefix", after_prefix, "--after-rules",
            after_rules, "--at", str(AT)] + list(extra) + (["--json"] if json_out else [])
    rc, out, err = env.run_cli(args)
    check_eq(rc, want_rc, "leadflow %s: exit status (stderr %s)" % (" ".join(args), err.strip()))
    if not json_out:
        return out
    try:
        return json.loads(out)
    except ValueError:
        raise H.TestFailure("compare --json printed no JSON: %r" % out[:500])


def expected(spec_of):
    """The oracle: what the report must say of lf: (before) against lf:b: (after)."""
    ex = {"before": {}, "after": {}}
    for lid, spec in spec_of.items():
        for side in ("before", "after"):
            s = score_at(lid, spec, side, AT)
            st = stage_of(spec[3] if side == "before" else spec[4], side)
            ex[side][lid] = {"stage": st, "grade": grade(s), "score": s, "touch": spec[2]}
    return ex


def check_dist(got, views, what):
    scores = sorted(v["score"] for v in views.values())
    check_eq(got["count"], len(scores), what + " count")
    check_close(got["mean"], sum(scores) / len(scores), what + " mean")
    for p in (10, 25, 50, 75, 90, 99):
        check_close(got["p%d" % p], nearest_rank(scores, p), "%s p%d" % (what, p))
    check_close(got["max"], scores[-1], what + " max")
    check_eq(got["grades"], {g: sum(1 for v in views.values() if v["grade"] == g)
                             for g in ("L1", "L2", "L3")}, what + " grades")


def test_report_exact():
    """The report of lf: against lf:b:, every number, from the oracle; the same rules on
    both sides (lf: against lf:c:) give no difference."""
    env, paths, nev, groups = build("cmp")
    spec_of = leads()
    ex = expected(spec_of)
    n = len(spec_of)
    j = compare(env, paths, "lf:b:", paths["lf:b:"])

    # 1. The header.
    check_eq((j["at_ms"], j["limit"], j["both"]), (AT, 20, n), "at, limit, both")
    for side, prefix, version in (("before", "lf:", "cmp-before"), ("after", "lf:b:",
                                                                    "cmp-after")):
        s = j[side]
        check_eq((s["label"], s["prefix"], s["rules_version"], s["leads"], s["only_here"],
                  s["unreadable"], s["visitors"]),
                 (side, prefix, version, n, 0, 0, 1), side + " header")
        check_eq((s["rules_versions"], s["rules_versions_other"]),
                 ([{"version": version, "leads": n}], 0), side + " rules versions")
        check_eq(s["positions"], [{"key": "%swm:%s:%s" % (prefix, groups[prefix],
                                                          H.EVENTS_TOPIC),
                                   "group": groups[prefix], "topic": H.EVENTS_TOPIC,
                                   "consumed": nev, "applied": nev,
                                   "partitions": [{"partition": 0, "next_offset": nev}]}],
                 side + " stream position")

    # 2. Stage or grade differences.
    b, a = ex["before"], ex["after"]
    diff = sorted((lid for lid in spec_of if (b[lid]["stage"], b[lid]["grade"]) !=
                   (a[lid]["stage"], a[lid]["grade"])),
                  key=lambda lid: (-abs(a[lid]["score"] - b[lid]["score"]), lid))
    check_eq(sorted(diff), ["cross-%d" % i for i in range(1, 6)] +
             ["grade-%d" % i for i in range(1, 4)], "the oracle's differing leads")
    c = j["changed"]
    check_eq((c["leads"], c["stage_changed"], c["grade_changed"]), (8, 5, 3), "changed counts")
    check_eq(c["stages"], [{"from": "lead", "to": "mql", "leads": 5}], "stage pairs")
    check_eq(c["grades"], [{"from": "L3", "to": "L2", "leads": 3}], "grade pairs")
    check_eq([x["id"] for x in c["examples"]], diff, "examples, largest score change first")
    for x in c["examples"]:
        for side, views in (("before", b), ("after", a)):
            v = views[x["id"]]
            check_eq((x[side]["stage"], x[side]["grade"]), (v["stage"], v["grade"]),
                     "example %s %s" % (x["id"], side))
            check_close(x[side]["score"], v["score"], "example %s %s score" % (x["id"], side))

    # 3. Score distributions.
    check_dist(j["scores"]["before"], b, "before scores")
    check_dist(j["scores"]["after"], a, "after scores")

    # 4. MQLs per channel.
    m = j["mqls"]
    check_eq((m["before"], m["after"], m["delta"], m["channels_total"], m["channels_bounded"]),
             (2, 7, 5, 3, False), "MQL totals")
    check_eq(m["channels"],
             [{"source": "google", "medium": "cpc", "campaign": "spring", "before": 0,
               "after": 3, "delta": 3},
              {"source": "(none)", "medium": "(none)", "campaign": "(none)", "before": 0,
               "after": 2, "delta": 2},
              {"source": "linkedin", "medium": "social", "campaign": "abm", "before": 2,
               "after": 2, "delta": 0}], "MQLs per channel")
    j2 = compare(env, paths, "lf:b:", paths["lf:b:"], "--limit", "2")
    check_eq([x["source"] for x in j2["mqls"]["channels"]], ["google", "(none)"],
             "--limit 2: the two largest changes")
    check_eq(len(j2["changed"]["examples"]), 2, "--limit 2 examples")

    # 5. Transitions.
    t = j["transitions"]
    check_eq((t["leads"], t["history_truncated"], t["history_kept"]), (5, 0, 8),
             "transitions: leads")
    check_eq(t["would_emit"], {"count": 5, "by": [{"from": "lead", "to": "mql",
                                                   "reason": "score_threshold", "count": 5}]},
             "would emit")
    check_eq(t["would_not_emit"], {"count": 0, "by": []}, "would not emit")
    check_eq(t["examples"], [{"id": "cross-%d" % i,
                              "would_emit": [{"from": "lead", "to": "mql",
                                              "reason": "score_threshold"}],
                              "would_not_emit": []} for i in range(1, 6)],
             "transition examples")

    # The same rules on both sides: nothing differs.
    js = compare(env, paths, "lf:c:", paths["lf:c:"])
    check_eq((js["both"], js["before"]["only_here"], js["after"]["only_here"]), (n, 0, 0),
             "same rules: leads")
    check_eq((js["changed"]["leads"], js["changed"]["stages"], js["changed"]["grades"],
              js["changed"]["examples"]), (0, [], [], []), "same rules: no stage or grade change")
    check_eq((js["transitions"]["leads"], js["transitions"]["would_emit"]["count"],
              js["transitions"]["would_not_emit"]["count"]), (0, 0, 0),
             "same rules: no transition differs")
    check_eq((js["mqls"]["before"], js["mqls"]["after"], js["mqls"]["delta"]), (2, 2, 0),
             "same rules: MQLs")
    check(all(r["delta"] == 0 for r in js["mqls"]["channels"]), "same rules: channel deltas")
    check_eq(js["scores"]["before"], js["scores"]["after"], "same rules: distributions")

    # Text: the headings and a few lines.
    out = compare(env, paths, "lf:b:", paths["lf:b:"], json_out=False)
    for pat in (r"(?m)^back-test report: scores and grades at ",
                r"(?m)^  prefix\s+lf:\s+lf:b:$",
                r"(?m)^  rules\s+cmp-before\s+cmp-after$",
                r"(?m)^  leads\s+%d\s+%d$" % (n, n),
                r"(?m)^  before stream position: group %s, topic %s, consumed %d: p0@%d$"
                % (re.escape(groups["lf:"]), re.escape(H.EVENTS_TOPIC), nev, nev),
                r"(?m)^stage or grade differs: 8 of %d leads on both sides \(stage 5, grade 3\)$"
                % n,
                r"(?m)^  lead\s+mql\s+5$",
                r"(?m)^  L3\s+L2\s+3$",
                r"(?m)^  cross-1\s+lead\s+mql\s+L2\s+L2\s+",
                r"(?m)^score distribution$",
                r"(?m)^  before\s+%d\s+" % n,
                r"(?m)^MQLs per channel \(first touch\): before 2, after 7, delta \+5$",
                r"(?m)^  google\s+cpc\s+spring\s+0\s+3\s+\+3$",
                r"(?m)^  \(none\)\s+\(none\)\s+\(none\)\s+0\s+2\s+\+2$",
                r"(?m)^transitions that differ: 5 leads",
                r"(?m)^  would emit, were not emitted: 5$",
                r"(?m)^    lead\s+mql\s+score_threshold\s+5$",
                r"(?m)^  were emitted, would not be: 0$",
                r"(?m)^  cross-3\s+lead->mql \(score_threshold\)\s+-$"):
        check(re.search(pat, out), "text output lacks %r:\n%s" % (pat, out))

    # A lead only the after side has: counted there, its history all "would emit".
    env.r.delete("lf:lead:{same-4}")
    j = compare(env, paths, "lf:b:", paths["lf:b:"])
    check_eq((j["before"]["leads"], j["after"]["leads"], j["before"]["only_here"],
              j["after"]["only_here"], j["both"]), (n - 1, n, 0, 1, n - 1), "only after")
    check_eq(j["transitions"]["would_emit"]["by"],
             [{"from": "visitor", "to": "lead", "reason": "first_seen", "count": 1},
              {"from": "lead", "to": "mql", "reason": "score_threshold", "count": 5}],
             "an after-only lead's transitions")
    check_eq(j["scores"]["before"]["count"], n - 1, "before scores without the lead")
    # And a lead only the before side has (the after side's leads are read after).
    env.r.delete("lf:b:lead:{same-3}")
    j = compare(env, paths, "lf:b:", paths["lf:b:"])
    check_eq((j["before"]["only_here"], j["after"]["only_here"], j["both"]), (1, 1, n - 2),
             "one lead only on each side")
    check_eq(j["transitions"]["would_not_emit"]["by"],
             [{"from": "visitor", "to": "lead", "reason": "first_seen", "count": 1}],
             "a before-only lead's transitions")


def test_history_truncated():
    """A lead whose seq is past its kept history is counted as truncated, not compared; a
    record that does not decode is counted as unreadable."""
    env, paths, nev, groups = build("cmpt")
    import test_cli  # its hand-made packed records
    hist = [(k, "lead" if k % 2 else "mql", "mql" if k % 2 else "lead",
             "score_threshold", T + k * MIN, 61.0) for k in range(3, 11)]
    t = T + 20 * MIN
    rec = test_cli.packed(t, 1, T, t, t, 10, {"form_submit": 10}, history=hist,
                          rules_version="cmp-before")
    for prefix in ("lf:", "lf:b:"):
        env.r.hset(prefix + "lead:{hand}",
                   mapping=test_cli.lead_hash_v2("lead", 10, 0, 50, t, rec))
    env.r.hset("lf:b:lead:{broken}", mapping={"stage": "lead", "seq": 1, "fit": 0, "eng": 1,
                                              "t": t, "p": b"\x92\x09\x01"})
    j = compare(env, paths, "lf:b:", paths["lf:b:"])
    n = len(leads())
    check_eq(j["transitions"]["history_truncated"], 1, "truncated histories")
    check_eq(j["transitions"]["leads"], 5, "the others still compared")
    check_eq((j["after"]["unreadable"], j["before"]["unreadable"]), (1, 0), "unreadable")
    check_eq((j["both"], j["before"]["leads"], j["after"]["leads"]), (n + 1, n + 1, n + 1),
             "the unreadable record left out")
    out = compare(env, paths, "lf:b:", paths["lf:b:"], json_out=False)
    check(re.search(r"(?m)^  history truncated: 1 leads not compared", out),
          "the text says it: %s" % out)


def test_usage():
    """Exit 1 for usage and rules files that do not load, 2 for Redis unreachable."""
    env = H.new_env("cmpu")
    good = env.write_rules('version: "x"\n' + H.kafka_block("127.0.0.1:9", "g") +
                           "redis:\n  host: 127.0.0.1\n  port: %d\n" % H.free_port() +
                           MODEL % {"forms": 30}, name="good.yaml")
    bad = env.write_rules("model: {grades: {L1: nope}}\n", name="bad.yaml")
    cases = [
        (["compare", "-c", good], 1, "what to compare with?"),
        (["compare", "-c", good, "--after-prefix", "lf:b:", "--limit", "0"], 1, "--limit"),
        (["compare", "-c", good, "--after-prefix", "lf:b:", "--at", "soon"], 1, "--at"),
        (["compare", "-c", good, "--after-prefix", "lf:b:", "--after-rules", bad], 1,
         "check-config"),
        (["compare", "-c", good, "--after-rules", good], 1, "what to compare with?"),
        (["compare", "-c", good, "--after-prefix", "lf:b:", "extra"], 1,
         "unexpected argument extra"),
        (["compare", "-c", good, "--after-prefix"], 1, "--after-prefix needs a value"),
        (["compare", "-c", good, "--after-prefix", "lf:b:"], 2, "Redis"),
    ]
    bad_out = []
    for args, want_rc, want in cases:
        rc, out, err = env.run_cli(args, timeout=20)
        if rc != want_rc or want not in err:
            bad_out.append("leadflow %s: exit %s (want %d), stderr %r (want %r)"
                           % (" ".join(args), rc, want_rc, err[-300:], want))
    check(not bad_out, "usage:\n  " + "\n  ".join(bad_out))
    rc, out, err = env.run_cli(["compare", "--help"])
    check_eq((rc, out.startswith("usage: leadflow compare")), (0, True), "compare --help")


if __name__ == "__main__":
    H.main([test_report_exact, test_history_truncated, test_usage])
