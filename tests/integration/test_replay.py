"""`leadflow replay` on redis-server and the embedded broker: the state it rebuilds under
changed rules equals, field for field, a fresh run under those rules; it publishes nothing
and dead-letters nothing again; the live state is not touched; a topic whose oldest events
retention deleted is refused with a clear message (or taken with --from-retained).
Run: LF_BIN=build/leadflow python3 tests/integration/test_replay.py"""
import json
import os
import re
import socket
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq  # noqa: E402


def rules_b(env, path_a):
    """The live rules with another version, a heavier hand raise and a lower MQL threshold."""
    with open(path_a) as f:
        text = f.read()
    text = re.sub(r'(?m)^version: .*$', 'version: "replay-b"', text, count=1)
    text, n1 = re.subn(r"(?m)^(\s+points: )40\b", r"\g<1>60", text, count=1)
    text, n2 = re.subn(r"(?m)^(\s+enter: )60\b", r"\g<1>50", text, count=1)
    check(n1 == 1 and n2 == 1, "rules B: both edits made")
    return env.write_rules(text, name="rules-b.yaml")


def with_prefix_group(env, path, prefix, group, name):
    with open(path) as f:
        text = f.read()
    text = re.sub(r"(?m)^(  group_id:).*$", r"\1 %s" % group, text, count=1)
    text, n = re.subn(r"(?m)^  prefix:.*$", '  prefix: "%s"' % prefix, text, count=1)
    if not n:
        text = text.replace("\nredis:\n", "\nredis:\n  prefix: \"%s\"\n" % prefix, 1)
    return env.write_rules(text, name=name)


def generate(env, leads=300, events=4000, seed=11):
    return env.generate(leads, events, seed)


def scrub(leads):
    """Records without the store's bookkeeping (write counts, offsets, TTLs)."""
    return {k: {f: v for f, v in h.items() if f not in lfrecord.BOOKKEEPING}
            for k, h in leads.items()}


def keys_under(env, prefix):
    return sorted(k for k in env.r.scan_iter(match=prefix + "*", count=1000))


def test_replay_equals_a_fresh_run_under_the_new_rules():
    # One partition: docs/contract.md "Semantics" promises the same state whatever the timing for leads whose
    # events share a partition (a visitor's events and its lead's may not, with more).
    env = H.started_env("replay", partitions=1)
    live = H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW)
    n = generate(env)
    run = env.start_run(rules=live)
    env.wait_consumed(n, timeout=120, proc=run)
    env.settle(run)
    check_eq(run.stop(), 0, "live run exit status")
    live_before = env.all_leads()
    live_keys = {k: env.r.dump(k) for k in keys_under(env, "lf:lead:")}
    dead_before = env.high_watermarks(H.DEAD_TOPIC)
    trans_before = env.high_watermarks(H.TRANSITIONS_TOPIC)
    check(dead_before > 0, "the generated stream has bad events (dead-lettered once)")
    b = rules_b(env, live)
    at = "2026-02-01T00:00:00Z"
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b, "--json", "--at", at],
                               timeout=300)
    check_eq(rc, 0, "replay exit status\n" + out + err[-3000:])
    report = json.loads(out)
    check(re.search(r"replay \[#+\] 100\.0%", err), "a progress line at 100 %:\n" + err[-2000:])
    check("ETA" in err and "/s" in err, "the progress line has a rate and an ETA")
    check_eq(env.high_watermarks(H.TRANSITIONS_TOPIC), trans_before, "no transition published")
    check_eq(env.high_watermarks(H.DEAD_TOPIC), dead_before, "no dead letter sent again")
    # The reference: a fresh run under B, into its own prefix, with its own group.
    fresh = with_prefix_group(env, b, "lf:fresh:", env.group + "-fresh", "fresh.yaml")
    ref = env.start_run(instance="fresh", rules=fresh, extra=["--exit-idle-ms", "4000"])
    check_eq(ref.p.wait(180), 0, "reference run exit status")
    got, want = scrub(env.all_leads("lf:replay:")), scrub(env.all_leads("lf:fresh:"))
    check_eq(len(got), len(want), "records in the replay vs the fresh run")
    diff = [k for k in want if got.get(k) != want[k]]
    check(not diff, "%d record(s) differ, e.g. %s:\nreplay %s\nfresh  %s" % (
        len(diff), diff[:1], got.get(diff[0]) if diff else "", want[diff[0]] if diff else ""))
    check(any(h.get("rules_version") == "replay-b" for h in got.values()),
          "records carry the new rules version")
    check(scrub(live_before) != got, "the changed rules changed something")
    # The report: the leads whose stage differs, counted here from the records themselves,
    # and the same report as `leadflow compare` of the two prefixes gives.
    known = {k: h for k, h in live_before.items() if h["stage"] != "visitor"}
    rebuilt = env.all_leads("lf:replay:")
    differ = sorted(k for k, h in known.items() if rebuilt[k]["stage"] != h["stage"])
    check(differ, "some stage differs under B")
    check_eq(report["changed"]["stage_changed"], len(differ), "report: leads whose stage differs")
    check_eq(report["before"]["leads"], len(known), "report: known leads before")
    check_eq(report["after"]["rules_version"], "replay-b", "report: after's rules version")
    rc, cout, err = env.run_cli(["compare", "-c", live, "--after-prefix", "lf:replay:",
                                 "--after-rules", b, "--json", "--at", at])
    check_eq(rc, 0, "compare exit status\n" + err)
    cmp = json.loads(cout)
    for k in ("changed", "scores", "mqls", "transitions", "both"):
        check_eq(report[k], cmp[k], "replay's report vs compare's: " + k)
    # The live state, the transitions topic and the dead letters are as they were.
    check_eq({k: env.r.dump(k) for k in keys_under(env, "lf:lead:")}, live_keys, "live leads")
    check_eq(env.r.hget("lf:replay:ctl:replay", "rules_version"), "replay-b", "replay marker")
    # A second replay under other rules into the same prefix is refused without --fresh.
    other = env.write_rules(open(b).read().replace('"replay-b"', '"replay-c"'), name="c.yaml")
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", other], timeout=60)
    check_eq(rc, 1, "replay into a prefix holding another replay\n" + err)
    check("--fresh" in err and "replay-b" in err, "it says what is there and what to do:\n" + err)
    # The live prefix itself is refused as a target.
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b, "--prefix", "lf:"])
    check_eq(rc, 1, "replay into the live prefix")


def watermarks(env):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": env.brokers, "group.id": "lf-wm-replay"})
    try:
        return c.get_watermark_offsets(TopicPartition(H.EVENTS_TOPIC, 0), timeout=10)
    finally:
        c.close()


def test_a_topic_cut_by_retention_is_refused():
    env = H.started_env("replay-cut", partitions=1)
    live = env.deploy_rules()
    env.produce_events([(H.event("track", "e-%d" % i, 1772409600000 + i * 60000,
                                 user="u-%d" % (i % 5), event="form_submit"), "json")
                        for i in range(20)])
    filler = b"{" + b"x" * 100000
    n = 0
    while watermarks(env)[0] == 0:
        check(n < 150, "the low watermark did not move after %d filler messages" % n)
        env.produce([(b"filler", filler)] * 10)
        n += 10
    lo, hi = watermarks(env)
    b = rules_b(env, live)
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b], timeout=120)
    check_eq(rc, 3, "replay of a cut topic: exit status\n" + err[-2000:])
    want = "starts at offset %d: retention deleted the %d oldest events" % (lo, lo)
    check(want in err and "--from-retained" in err, "the message names the cut:\n" + err[-2000:])
    check(not env.r.exists("lf:replay:lead:{u-0}"), "nothing rebuilt")
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b, "--from-retained"],
                               timeout=180)
    check_eq(rc, 0, "with --from-retained\n" + err[-2000:])
    check("--from-retained" in err or "deleted by retention" in err,
          "it says the rebuilt state lacks the deleted events:\n" + err[-2000:])
    h = env.r.hgetall("lf:replay:wm:%s.replay:%s" % (env.group, H.EVENTS_TOPIC))
    check_eq(int(h["0"]), hi, "the replay consumed up to the end")
    check_eq(int(h["0.consumed"]), hi - lo, "from the log start on")




def _transitions(env, want=0):
    msgs = env.consume(H.TRANSITIONS_TOPIC, lambda m: len(m) >= want, timeout=60, idle_after=2.0)
    return [H.decode_transition(m.value()) for m in msgs]


def test_switch_makes_the_replay_live_with_only_its_own_transitions():
    env = H.started_env("switch", partitions=1)
    live = H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW)
    rules_a = open(live).read()
    b = rules_b(env, live)
    generate(env, leads=300, events=3000, seed=21)
    run = env.start_run(rules=live)
    env.wait_consumed(env.high_watermarks(H.EVENTS_TOPIC), timeout=120, proc=run)
    env.settle(run)
    # 1. The back-test, while the live instance runs.
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b], timeout=300)
    check_eq(rc, 0, "replay\n" + err[-2000:])
    # 2. The new rules where the instance reads them (no reload), and more input meanwhile,
    # which the instance scores under the old rules.
    with open(live, "w") as f:
        f.write(open(b).read())
    more = [(H.event("track", "late-%d" % i, 1769860000000 + i * 1000, user="u%06d" % (i * 7),
                     event="form_submit"), "json") for i in range(40)]
    env.produce_events(more)
    total = env.high_watermarks(H.EVENTS_TOPIC)
    env.wait_consumed(total, timeout=60, proc=run)
    env.settle(run)
    before = {k: h for k, h in env.all_leads().items() if h["stage"] != "visitor"}
    published = {t["transition_id"]: t for t in _transitions(env)}
    # 3. The switch.
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b, "--switch"], timeout=300)
    check_eq(rc, 0, "replay --switch\n" + err[-3000:])
    check("live instance(s) paused" in err, "it paused the instance:\n" + err[-2000:])
    check_eq(env.r.get("lf:active"), "lf:replay:", "lf:active")
    H.wait_until(lambda: "switched to lf:replay:" in run.log_text(), 30, "instance restarted")
    hb = H.wait_until(lambda: (lambda h: h if h.get("state") == "ok" else None)(
        env.r.hgetall("lf:replay:ops:instance:lf-test")), 30, "instance on the new prefix")
    check_eq(hb["rules_version"], "replay-b", "the instance runs the new rules (its file)")
    # 4. What it published: one rules_switch transition per lead whose stage the new rules
    # change, continuing the live numbering; nothing of the replay's own history.
    rebuilt = env.all_leads("lf:replay:")
    moved = sorted(k for k, h in before.items() if rebuilt[k]["stage"] != h["stage"])
    check(moved, "the new rules move some lead")
    after = _transitions(env, len(published) + len(moved))
    new = [t for t in after if t["transition_id"] not in published]
    for t in after:
        if t["transition_id"] in published:
            check_eq(t, published[t["transition_id"]], "one id, one content: " + t["transition_id"])
    check_eq(sorted(t["lead_id"] for t in new), moved, "leads given a switch transition")
    for t in new:
        o = before[t["lead_id"]]
        check_eq((t["reason"], t["seq"], t["from"], t["to"], t["rules_version"]),
                 ("rules_switch", int(o["seq"]) + 1, o["stage"],
                  rebuilt[t["lead_id"]]["stage"], "replay-b"), "switch transition " +
                 t["transition_id"])
    for k, h in before.items():
        r = rebuilt[k]
        check_eq(int(r["seq"]), int(h["seq"]) + (1 if k in moved else 0), "seq of " + k)
    # 5. The instance carries on under the new rules: more input, and the state equals a
    # fresh run under them over everything (but the numbering, which continues the live one).
    later = [(H.event("track", "after-%d" % i, 1769900000000 + i * 1000,
                      user="u%06d" % (i * 11), event="form_submit"), "json") for i in range(30)]
    env.produce_events(later)
    total = env.high_watermarks(H.EVENTS_TOPIC)
    H.wait_until(lambda: env.progress("lf:replay:")["consumed"] >= 0 and int(
        env.r.hget("lf:replay:wm:%s:%s" % (env.group, H.EVENTS_TOPIC), "0") or 0) == total,
        60, "the instance consumed the input after the switch")
    time.sleep(3)
    check_eq(run.stop(), 0, "instance exit status")
    fresh = with_prefix_group(env, b, "lf:fresh:", env.group + "-fresh", "fresh.yaml")
    with open(fresh) as f:
        text = f.read()
    text = re.sub(r"(?m)^(    transitions:).*$", r"\1 fresh.transitions", text, count=1)
    text = re.sub(r"(?m)^(    dead_letter:).*$", r"\1 fresh.dead", text, count=1)
    with open(fresh, "w") as f:
        f.write(text)
    ref = env.start_run(instance="fresh", rules=fresh, extra=["--exit-idle-ms", "4000"])
    check_eq(ref.p.wait(180), 0, "reference run")

    def numbered(k):
        return k == "seq" or re.fullmatch(r"h[0-7]", k)
    got = {k: {f: v for f, v in h.items() if not numbered(f)}
           for k, h in scrub(env.all_leads("lf:replay:")).items()}
    want = {k: {f: v for f, v in h.items() if not numbered(f)}
            for k, h in scrub(env.all_leads("lf:fresh:")).items()}
    diff = [k for k in want if got.get(k) != want[k]]
    check(not diff and len(got) == len(want), "%d record(s) differ from a fresh run, e.g. %s" % (
        len(diff), [(k, got.get(k), want[k]) for k in diff[:1]]))
    # The commands read the live state where it now is.
    rc, out, err = env.run_cli(["inspect", moved[0], "-c", live, "--json"])
    check_eq(rc, 0, "inspect after the switch\n" + err)
    check_eq(json.loads(out)["stage"], rebuilt[moved[0]]["stage"], "inspect reads lf:replay:")
    del rules_a


if __name__ == "__main__":
    H.main([
        test_replay_equals_a_fresh_run_under_the_new_rules,
        test_a_topic_cut_by_retention_is_refused,
        test_switch_makes_the_replay_live_with_only_its_own_transitions,
    ])
