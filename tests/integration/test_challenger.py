"""The live challenger (challenger.rules / prefix / split, `leadflow run --challenger`) on
redis-server and the embedded broker: the challenger's state equals a separate run under its
rules; with a 10 % split the transitions of the split leads on the live topic are the
challenger run's and the others the champion run's, each saying which model produced it; the
challenger sends no dead letter; `leadflow compare` reports champion against challenger.
Run: LF_BIN=build/leadflow python3 tests/integration/test_challenger.py"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

SPLIT = 10


def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def in_split(lead):
    return fnv1a64(lead) % 100 < SPLIT


def edit(text, version, points=None, enter=None, prefix=None, group=None, topics=None,
         extra=""):
    text = re.sub(r'(?m)^version: .*$', 'version: "%s"' % version, text, count=1)
    if points:
        text, n = re.subn(r"(?m)^(\s+points: )40\b", r"\g<1>%d" % points, text, count=1)
        check(n == 1, "hand raise points edited")
    if enter:
        text, n = re.subn(r"(?m)^(\s+enter: )60\b", r"\g<1>%d" % enter, text, count=1)
        check(n == 1, "mql.enter edited")
    if prefix:
        text = re.sub(r"(?m)^  prefix:.*$", '  prefix: "%s"' % prefix, text, count=1)
    if group:
        text = re.sub(r"(?m)^(  group_id:).*$", r"\1 %s" % group, text, count=1)
    if topics:
        text = re.sub(r"(?m)^(    transitions:).*$", r"\1 %s.transitions" % topics, text, count=1)
        text = re.sub(r"(?m)^(    dead_letter:).*$", r"\1 %s.dead" % topics, text, count=1)
    return text + extra


def scrub(leads):
    return {k: {f: v for f, v in h.items() if f not in lfrecord.BOOKKEEPING}
            for k, h in leads.items()}


def by_lead(env, topic, want):
    msgs = env.consume(topic, lambda m: len(m) >= want, timeout=60, idle_after=2.0)
    out = {}
    for m in msgs:
        t = H.decode_transition(m.value())
        out.setdefault(t["lead_id"], {})[t["transition_id"]] = t
    return out


def strip(ts, model=False):
    keys = ("transition_id", "from", "to", "reason", "at", "rules_version", "score")
    return {i: tuple([t.get(k) for k in keys] + ([t.get("model")] if model else []))
            for i, t in ts.items()}


def test_challenger_with_a_ten_percent_split():
    env = H.started_env("challenger", partitions=1)
    base = open(H.set_processing(env.deploy_rules(),
                                 dedup_window=H.GEN_DEDUP_WINDOW)).read()
    b_path = env.write_rules(edit(base, "chal-b", points=60, enter=50), name="b.yaml")
    live = env.write_rules(edit(base, "champ-a", extra="challenger:\n  rules: b.yaml\n"
                                "  split: %d\n" % SPLIT), name="live.yaml")
    ref_a = env.write_rules(edit(base, "champ-a", prefix="lf:refa:", group="refa",
                                 topics="ref-a"), name="ref-a.yaml")
    ref_b = env.write_rules(edit(open(b_path).read(), "chal-b", prefix="lf:refb:", group="refb",
                                 topics="ref-b"), name="ref-b.yaml")
    check(b_path.endswith("/b.yaml"), "the challenger's file sits beside the live one")
    gen = env._proc("gen", [H.LF_BIN, "gen", "--leads", "400", "--events", "6000", "--seed",
                            "5", "--brokers", env.brokers, "--topic", H.EVENTS_TOPIC, "--quiet",
                            "--stats", env.path("gen.json")])
    check_eq(gen.p.wait(120), 0, "gen exit status")
    bad = json.load(open(env.path("gen.json")))["bad"]
    champion = env.start_run(instance="champion", rules=live)
    challenger = env.start_run(instance="challenger", rules=live, extra=["--challenger"])
    refs = [env.start_run(instance="ref-" + n, rules=p, extra=["--exit-idle-ms", "5000"])
            for n, p in (("a", ref_a), ("b", ref_b))]
    for r in refs:
        check_eq(r.p.wait(240), 0, "reference run exit status")
    time.sleep(3)  # the live pair's decay sweeps (on the wall clock) are done by now too
    check_eq(champion.stop(), 0, "champion exit status")
    check_eq(challenger.stop(), 0, "challenger exit status")
    check("challenger: rules version chal-b" in challenger.log_text(), "challenger's start line")

    # 1. The challenger's state is that of a separate run under its rules.
    got, want = scrub(env.all_leads("lf:challenger:")), scrub(env.all_leads("lf:refb:"))
    check_eq(len(got), len(want), "records")
    diff = [k for k in want if got.get(k) != want[k]]
    check(not diff, "%d challenger record(s) differ from the reference, e.g. %s" % (
        len(diff), diff[:3]))
    champ, ref = scrub(env.all_leads("lf:")), scrub(env.all_leads("lf:refa:"))
    check(champ == ref, "the champion's state is that of a run under its rules")

    # 2. The live topic: split leads' transitions from the challenger, the others' from the
    # champion, every one saying which.
    ra = by_lead(env, "ref-a.transitions", sum(int(h.get("seq", 0)) for h in ref.values()))
    rb = by_lead(env, "ref-b.transitions", sum(int(h.get("seq", 0)) for h in want.values()))
    expect = {}
    for lead in set(ra) | set(rb):
        src = rb if in_split(lead) else ra
        if lead in src:
            # The challenger's published ids are "<lead>:challenger:<seq>" (its numbering).
            expect[lead] = {
                (i.replace("%s:" % lead, "%s:challenger:" % lead, 1) if in_split(lead) else i):
                dict(t, transition_id=(t["transition_id"].replace(
                    "%s:" % lead, "%s:challenger:" % lead, 1) if in_split(lead)
                    else t["transition_id"]))
                for i, t in src[lead].items()}
    n_split = sum(1 for lead in expect if in_split(lead))
    check(0 < n_split < len(expect) // 4, "split leads with transitions: %d of %d" % (
        n_split, len(expect)))
    livet = by_lead(env, H.TRANSITIONS_TOPIC, sum(len(v) for v in expect.values()))
    check_eq(sorted(livet), sorted(expect), "leads with transitions on the live topic")
    for lead, ts in livet.items():
        check_eq(strip(ts), strip(expect[lead]), "transitions of %s (split: %s)" % (
            lead, in_split(lead)))
        models = {t.get("model") for t in ts.values()}
        check_eq(models, {"challenger" if in_split(lead) else "champion"}, "model of " + lead)
    for ts in list(ra.values()) + list(rb.values()):
        check(all("model" not in t for t in ts.values()), "no model field without a split")

    # 3. Dead letters: the champion's only (the challenger counts them, sends none).
    dead = env.consume(H.DEAD_TOPIC, lambda m: len(m) >= bad, idle_after=2.0)
    offsets = {dict(m.headers())["lf.source.offset"] for m in dead}
    check_eq(len(offsets), bad, "dead letters, one per bad event")
    check_eq(len(dead), bad, "no dead letter twice (the challenger sent none)")

    # 4. `leadflow compare` defaults to the challenger: the same report as comparing the two
    # reference prefixes.
    rc, out, err = env.run_cli(["compare", "-c", live, "--json", "--at", "2026-02-01T00:00:00Z"])
    check_eq(rc, 0, "compare exit status\n" + err)
    rep = json.loads(out)
    check_eq((rep["before"]["label"], rep["after"]["label"]), ("live", "challenger"), "labels")
    check_eq(rep["after"]["prefix"], "lf:challenger:", "the challenger's prefix")
    rc, out, err = env.run_cli(["compare", "-c", live, "--before-prefix", "lf:refa:",
                                "--after-prefix", "lf:refb:", "--after-rules", b_path, "--json",
                                "--at", "2026-02-01T00:00:00Z"])
    check_eq(rc, 0, "compare of the references\n" + err)
    refrep = json.loads(out)
    for k in ("changed", "scores", "mqls", "transitions", "both"):
        check_eq(rep[k], refrep[k], "report section " + k)
    check(rep["changed"]["leads"] > 0, "the models differ somewhere")


def test_challenger_without_a_split_publishes_nothing():
    env = H.started_env("challenger-quiet", partitions=1)
    base = open(env.deploy_rules()).read()
    env.write_rules(edit(base, "chal-b", enter=50), name="b.yaml")
    live = env.write_rules(edit(base, "champ-a", extra="challenger:\n  rules: b.yaml\n"),
                           name="live.yaml")
    evs = [(H.event("track", "f-%d" % i, 1769904000000 + i * 1000, user="u-%d" % i,
                    event="form_submit"), "json") for i in range(6)]
    challenger = env.start_run(instance="challenger", rules=live, extra=["--challenger"])
    env.produce_events(evs)
    H.wait_until(lambda: len(env.all_leads("lf:challenger:")) == 6, 40, "challenger scored")
    check_eq(challenger.stop(), 0, "exit status")
    check_eq(env.high_watermarks(H.TRANSITIONS_TOPIC) if _topic_exists(env) else 0, 0,
             "nothing on the transitions topic")
    check_eq(env.all_leads("lf:"), {}, "nothing under the live prefix")
    # check-config checks the challenger's file too, and shows the challenger.
    rc, out, err = env.run_cli(["check-config", live])
    check_eq(rc, 0, "check-config\n" + err)
    check("challenger  rules=b.yaml" in out, "summary line:\n" + out)
    gone = env.write_rules(open(live).read().replace("rules: b.yaml", "rules: nosuch.yaml"),
                           name="gone.yaml")
    rc, out, err = env.run_cli(["check-config", gone])
    check_eq(rc, 1, "check-config with a missing challenger file")
    check("challenger.rules" in err and "nosuch.yaml" in err, "says which:\n" + err)
    # Without challenger.rules, --challenger is a usage error.
    plain = env.write_rules(base, name="plain.yaml")
    rc, out, err = env.run_cli(["run", "-c", plain, "--challenger"])
    check_eq(rc, 1, "--challenger with no challenger.rules\n" + err)
    check("challenger.rules" in err, "it names the setting:\n" + err)


def _topic_exists(env):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": env.brokers, "group.id": "lf-topics"})
    try:
        md = c.list_topics(timeout=10)
        return H.TRANSITIONS_TOPIC in md.topics
    finally:
        c.close()


if __name__ == "__main__":
    H.main([
        test_challenger_with_a_ten_percent_split,
        test_challenger_without_a_split_publishes_nothing,
    ])
