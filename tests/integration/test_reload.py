"""Hot reload of the rules file (docs/contract.md "The rules file"): SIGHUP and `leadflow reload` (through Redis),
on redis-server and the embedded broker. A valid file takes effect from the next batch with
no event lost or counted twice; an invalid one is refused and logged, the old rules stay; the
heartbeat and `leadflow stats` show each instance's rules version.
Run: LF_BIN=build/leadflow python3 tests/integration/test_reload.py"""
import calendar
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000

# Every event at T0: no decay, engagement is the sum of points. The sweep keeps event time
# with no lateness, so what it does is what the events say.
MODEL = """
processing:
  batch_max_ms: 20
  idle_clock: event
  allowed_lateness: 0s
model:
  decay:
    half_life: 1d
  stages:
    mql:
      enter: %(enter)s
      exit: %(exit)s
  engagement:
    - name: page_views
      kind: page_view
      points: %(points)s
"""


def rules(env, version, points=5, enter=60, exit=45, name="leadflow.yaml"):
    text = ('version: "%s"\n' % version + env.connections() +
            MODEL % {"points": points, "enter": enter, "exit": exit})
    path = env.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def pages(lead, first, n, ts=T0):
    return [(H.event("page", "%s-%d" % (lead, first + k), ts, user=lead,
                     url="https://ex.com/p%d" % k), "json") for k in range(n)]


def transitions(env, want):
    msgs = env.consume(H.TRANSITIONS_TOPIC, lambda m: len(m) >= want, idle_after=1.5)
    out = [H.decode_transition(m.value()) for m in msgs]
    ids = [t["transition_id"] for t in out]
    check_eq(len(ids), len(set(ids)), "each transition published once")
    return {t["transition_id"]: t for t in out}


def wait_log(proc, text, n=1, timeout=20):
    H.wait_until(lambda: proc.log_text().count(text) >= n, timeout, "log line %r" % text)


def heartbeat(env, instance):
    return env.r.hgetall("lf:ops:instance:" + instance)


def check_conservation(env, n):
    p = env.progress()
    check_eq(p["consumed"], n, "consumed")
    check_eq(p["applied"] + p["duplicates"] + p["dead"], n, "conservation")


def test_sighup_mid_stream_changes_scores_from_the_next_batch():
    env = H.started_env("reload-hup")
    path = rules(env, "r1", points=5)
    run = env.start_run(rules=path)
    env.produce_events(pages("u-a", 0, 4))
    env.wait_consumed(4, proc=run)
    check_eq(float(env.lead("u-a")["eng"]), 20.0, "eng under r1: 4 x 5")
    rules(env, "r2", points=20)
    run.p.send_signal(signal.SIGHUP)
    wait_log(run, "rules version r1 -> r2")
    env.produce_events(pages("u-a", 4, 3) + pages("u-b", 0, 1))
    env.wait_consumed(8, proc=run)
    a, b = env.lead("u-a"), env.lead("u-b")
    check_eq(float(a["eng"]), 80.0, "u-a: 4 x 5 under r1, then 3 x 20 under r2")
    check_eq(float(b["eng"]), 20.0, "u-b: 1 x 20 under r2")
    check_eq(a["stage"], "mql", "u-a crossed mql.enter (60) under r2")
    check_eq(a["rules_version"], "r2", "u-a's record written under r2")
    check_eq(b["rules_version"], "r2", "u-b's record written under r2")
    tr = transitions(env, 3)
    check_eq(sorted(tr), ["u-a:1", "u-a:2", "u-b:1"], "transition ids")
    check_eq(tr["u-a:1"]["rules_version"], "r1", "u-a's first change: under r1")
    check_eq(tr["u-a:2"]["rules_version"], "r2", "u-a's mql: under r2")
    check_eq(tr["u-a:2"]["to"], "mql", "u-a:2 to")
    check_eq(tr["u-b:1"]["rules_version"], "r2", "u-b's first change: under r2")
    check_conservation(env, 8)
    hb = H.wait_until(lambda: (lambda h: h if h.get("rules_version") == "r2" else None)(
        heartbeat(env, "lf-test")), 10, "heartbeat with r2")
    check(hb["reload_result"].startswith("ok: r1 -> r2"), "reload_result %r" % hb["reload_result"])
    run.p.send_signal(signal.SIGTERM)
    check_eq(run.p.wait(30), 0, "exit status")


def test_an_invalid_file_is_refused_and_the_rules_stay():
    env = H.started_env("reload-bad")
    path = rules(env, "r1", points=5)
    run = env.start_run(rules=path)
    env.produce_events(pages("u-a", 0, 2))
    env.wait_consumed(2, proc=run)
    with open(path) as f:
        good = f.read()
    with open(path, "w") as f:
        f.write(good.replace("points: 5", "points: lots").replace('"r1"', '"r-bad"'))
    run.p.send_signal(signal.SIGHUP)
    wait_log(run, "reload (SIGHUP) refused")
    log = run.log_text()
    check("points" in log and "leadflow.yaml:" in log,
          "the loader's error, with its file and line, is logged:\n" + log[-1500:])
    env.produce_events(pages("u-a", 2, 2))
    env.wait_consumed(4, proc=run)
    a = env.lead("u-a")
    check_eq(float(a["eng"]), 20.0, "4 x 5: the old rules stayed in force")
    check_eq(a["rules_version"], "r1", "record still under r1")
    hb = H.wait_until(lambda: (lambda h: h if h.get("reload_result", "").startswith(
        "refused") else None)(heartbeat(env, "lf-test")), 10, "heartbeat says refused")
    check_eq(hb["rules_version"], "r1", "heartbeat rules_version")
    # `leadflow reload` with the invalid file: refused before asking anyone (exit 1).
    rc, out, err = env.run_cli(["reload", "-c", path, "--wait", "20s"])
    check_eq(rc, 1, "reload with an invalid file\n" + out + err)
    check("points" in err, "it says what is wrong:\n" + err)
    # With a valid file naming the same Redis it asks through Redis: the instance refuses
    # again (its own file is still invalid), exit 3, and the report says so.
    conn = rules(env, "r1", points=5, name="conn.yaml")
    rc, out, err = env.run_cli(["reload", "-c", conn, "--wait", "20s"])
    check_eq(rc, 3, "reload exit status (refused)\n" + out + err)
    check("refused" in out and "lf-test" in out, "reload's report:\n" + out)
    check(run.alive(), "still running")
    rc, out, err = env.run_cli(["stats", "-c", conn])
    check("r1 (reload refused)" in out, "stats shows the refused reload:\n" + out)
    rc, out, err = env.run_cli(["stats", "-c", conn, "--json"])
    inst = json.loads(out)["instances"][0]
    check(inst["reload_result"].startswith("refused: ") and inst["reload_gen"] == 1,
          "stats --json: %r" % inst)
    check_conservation(env, 4)
    run.p.send_signal(signal.SIGTERM)
    check_eq(run.p.wait(30), 0, "exit status")


def test_leadflow_reload_reaches_two_instances():
    env = H.started_env("reload-two", partitions=2)
    p1 = rules(env, "r1", points=5, name="one.yaml")
    p2 = rules(env, "r1", points=5, name="two.yaml")
    one = env.start_run(instance="one", rules=p1)
    two = env.start_run(instance="two", rules=p2)
    H.wait_until(lambda: "assigned" in one.log_text() and "assigned" in two.log_text(), 40,
                 "both instances assigned")
    leads = ["u-%d" % i for i in range(8)]
    evs = []
    for lead in leads:
        evs += pages(lead, 0, 2)
    env.produce_events(evs)
    env.wait_consumed(16)
    # One file first: a rolling reload shows as two versions in `leadflow stats`.
    rules(env, "r2", points=20, name="one.yaml")
    rc, out, err = env.run_cli(["reload", "-c", p1, "--wait", "20s"])
    check_eq(rc, 0, "reload exit status\n" + out + err)
    check("one" in out and "two" in out and "reload #1" in out, "reload's report:\n" + out)
    rc, out, err = env.run_cli(["stats", "-c", p1, "--json"])
    st = json.loads(out)
    versions = {i["instance"]: i["rules_version"] for i in st["instances"]}
    check_eq(versions, {"one": "r2", "two": "r1"}, "stats: each instance's rules version")
    rules(env, "r2", points=20, name="two.yaml")
    rc, out, err = env.run_cli(["reload", "-c", p2, "--wait", "20s"])
    check_eq(rc, 0, "second reload\n" + out + err)
    check("reload #2" in out, "second reload's number:\n" + out)
    rc, out, err = env.run_cli(["stats", "-c", p1, "--json"])
    versions = {i["instance"]: i["rules_version"] for i in json.loads(out)["instances"]}
    check_eq(versions, {"one": "r2", "two": "r2"}, "both on r2")
    for lead in leads:
        evs = pages(lead, 2, 2)
        env.produce_events(evs)
    env.wait_consumed(32)
    for lead in leads:
        x = env.lead(lead)
        check_eq(float(x["eng"]), 50.0, "%s: 2 x 5 + 2 x 20" % lead)
        check_eq(x["rules_version"], "r2", "%s written under r2" % lead)
    check_conservation(env, 32)
    for proc in (one, two):
        proc.p.send_signal(signal.SIGTERM)
        check_eq(proc.p.wait(30), 0, "exit status")


def test_a_reload_rewrites_the_mql_index():
    """An MQL whose score the new rules put below mql.exit is demoted by the index rewrite
    that follows the reload, with no event for it, under the new rules version."""
    env = H.started_env("reload-index")
    path = rules(env, "r1", points=20)
    run = env.start_run(rules=path)
    env.produce_events(pages("u-a", 0, 4))  # 80: mql
    env.wait_consumed(4, proc=run)
    check_eq(env.lead("u-a")["stage"], "mql", "u-a is an MQL")
    old_exit = env.r.zscore("lf:stage:mql", "u-a")
    rules(env, "r2", points=20, enter=120, exit=100)
    run.p.send_signal(signal.SIGHUP)
    wait_log(run, "indexes rewritten under rules version r2")
    a = H.wait_until(lambda: (lambda x: x if x["stage"] == "nurture" else None)(
        env.lead("u-a")), 15, "u-a demoted")
    check_eq(a["rules_version"], "r2", "written under r2")
    check(env.r.zscore("lf:stage:mql", "u-a") is None, "left lf:stage:mql (was %s)" % old_exit)
    tr = transitions(env, 3)
    check_eq(tr["u-a:3"]["reason"], "score_decay", "u-a:3 reason")
    check_eq(tr["u-a:3"]["rules_version"], "r2", "u-a:3 rules_version")
    check_eq(tr["u-a:3"]["at"], T0, "demoted at the time its score was below the new exit")
    run.p.send_signal(signal.SIGTERM)
    check_eq(run.p.wait(30), 0, "exit status")


def test_sighup_reaches_every_worker():
    env = H.started_env("reload-workers", partitions=2)
    path = rules(env, "r1", points=5)
    run = env.start_run(rules=path, extra=["--workers", "2"])
    H.wait_until(lambda: run.log_text().count("assigned") >= 2, 40, "both workers assigned")
    rules(env, "r2", points=20)
    run.p.send_signal(signal.SIGHUP)
    wait_log(run, "rules version r1 -> r2", n=2)
    check_eq(run.log_text().count("rules version r1 -> r2"), 2, "one reload per worker")
    check(run.alive(), "still running")
    run.p.send_signal(signal.SIGTERM)
    check_eq(run.p.wait(30), 0, "exit status")


if __name__ == "__main__":
    H.main([
        test_sighup_mid_stream_changes_scores_from_the_next_batch,
        test_an_invalid_file_is_refused_and_the_rules_stay,
        test_leadflow_reload_reaches_two_instances,
        test_a_reload_rewrites_the_mql_index,
        test_sighup_reaches_every_worker,
    ])
