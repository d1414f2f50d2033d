"""Duplicates by event-time window (docs/contract.md "Semantics"), end to end on redis-server and the embedded
broker: a repeat of a messageId is dropped however many events of the lead came between, as
long as its event time lies within processing.dedup_window (default 24 h) of the lead's
latest event; past the window it counts as new (README: the bound and what happens past it).
The remembered ids stay in the lead's compact hash (in its packed parts "p", "p2", ...:
<= 64-byte values; docs/redis-layout.md); hashes of the layouts before ("dw", "dd") still read.
Run: LF_BIN=build/leadflow python3 tests/integration/test_dedup.py"""
import calendar
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq, DAY_MS, HOUR_MS  # noqa: E402

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
      points: 1
    - name: forms
      kind: form_submit
      points: 30
"""
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * 1000
L = "u-dana"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def start(name, extra_processing=""):
    env = H.started_env(name)
    env.write_rules(env.connections() +
                    MODEL.replace("processing:\n", "processing:\n" + extra_processing))
    return env


def page(mid, ts):
    return (H.event("page", mid, ts, user=L, url="https://ex.com/docs/%s" % mid), "msgpack")


def counts(p):
    return (p["consumed"], p["applied"], p["duplicates"], p["dead"])


def remembered(h):
    """The remembered messageIds of a decoded record (lfrecord.py): [(hash, second), ...]."""
    return [tuple(x.split("@")) for x in h.get("dw", "").split(",") if x]


def check_compact(env, key, what):
    h = env.rb.hgetall(key)
    too_long = {f: len(v) for f, v in h.items() if len(v) > 64}
    check(not too_long, "%s: values over 64 bytes: %s" % (what, too_long))
    check(len(h) < 128, "%s: %d fields" % (what, len(h)))
    check_eq(env.r.object("encoding", key), "listpack", "%s: hash encoding" % what)
    check(b"p" in h and not any(f.startswith((b"dw", b"dd")) for f in h),
          "%s: the ids are packed, not in dw/dd fields: %s" % (what, sorted(h)))


def test_repeat_after_100_events_and_23h_later():
    env = start("dedup")
    first = H.event("track", "d-first", T0 + HOUR_MS, user=L, event="form_submit")
    # The original, then 100 other events of the lead, then the repeat (same bytes).
    evs = [(first, "json")] + [page("d-v%d" % i, T0 + HOUR_MS + (i + 1) * 1000)
                               for i in range(100)] + [(first, "json")]
    env.produce_events(evs)
    run = env.start_run()
    p = env.wait_consumed(102, proc=run)
    check_eq(counts(p), (102, 101, 1, 0), "consumed/applied/duplicates/dead after 100 between")
    # Events 23 h later, then the repeat again: the same messageId and timestamp.
    env.produce_events([page("d-23h", T0 + 24 * HOUR_MS), (first, "msgpack")])
    p = env.wait_consumed(104, proc=run)
    check_eq(counts(p), (104, 102, 2, 0), "counts after the repeat 23 h of event time later")
    h = env.lead(L)
    check_eq((h.get("n.form_submit"), h.get("events")), ("1", "102"), "form submits, events")
    check_eq(h.get("t"), str(T0 + 24 * HOUR_MS), "t: the latest event time")
    check_eq(len(remembered(h)), 102, "ids remembered (the form submit and 101 views)")
    check_compact(env, "lf:lead:{%s}" % L, "the lead with 102 remembered ids")
    # Past the window: after an event 25 h after the original, its repeat counts as new.
    env.produce_events([page("d-25h", T0 + 26 * HOUR_MS), (first, "json")])
    p = env.wait_consumed(106, proc=run)
    check_eq(counts(p), (106, 104, 2, 0), "counts after the repeat past the window")
    h = env.lead(L)
    check_eq(h.get("n.form_submit"), "2", "the repeat past the window was applied")
    # Every id within 24 h of the latest event is still known: the last 100 views are not.
    env.produce_events([page("d-v99", T0 + HOUR_MS + 100 * 1000), page("d-25h", T0 + 26 * HOUR_MS)])
    p = env.wait_consumed(108, proc=run)
    check_eq(counts(p), (108, 105, 3, 0), "a view 25 h old applied again, the recent one not")
    # inspect decodes the lead (the dw fields included).
    rc, out, err = env.run_cli(["inspect", L, "-c", env.rules_path, "--json"])
    check_eq(rc, 0, "leadflow inspect exit status (stderr %s)" % err.strip())
    check_eq(run.stop(), 0, "exit status")


def test_window_setting_and_old_layout():
    env = start("dedupcfg", "  dedup_window: 2h\n")
    key = "lf:lead:{%s}" % L
    # A lead stored in the layout before: messageId hashes without times in "dd".
    h = 14695981039346656037
    for b in b"d-old":
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    h &= 0xFFFFFFFFFFFF
    dd = "".join(B64[(h >> (6 * k)) & 63] for k in range(7, -1, -1))
    t = T0 + HOUR_MS
    env.r.hset(key, mapping={"stage": "lead", "seq": "1", "grade": "L3", "score": "0", "fit": "0",
                             "eng": "0", "t": str(t), "first_seen": str(t), "last_seen": str(t),
                             "stage_at": str(t), "events": "1", "rules_version": "old",
                             "n.page_view": "1", "v": "1", "dd": dd + "AAAAAAAB"})
    env.produce_events([page("d-old", t), page("d-1h", t + HOUR_MS), page("d-old", t)])
    run = env.start_run()
    p = env.wait_consumed(3, proc=run)
    check_eq(counts(p), (3, 1, 2, 0), "an id of the old dd field is a duplicate")
    h = env.lead(L)
    check_eq(h.get("layout"), "2", "the old-layout lead was rewritten packed")
    # processing.dedup_window: 2h: 2 h 1 s after it, the old id is forgotten.
    env.produce_events([page("d-3h", t + 2 * HOUR_MS + 1000), page("d-old", t)])
    p = env.wait_consumed(5, proc=run)
    check_eq(counts(p), (5, 3, 2, 0), "past a 2 h window the repeat is applied")
    check_eq(env.lead(L).get("events"), "4", "events")
    check_compact(env, key, "the rewritten lead")
    check_eq(run.stop(), 0, "exit status")
    # The old form of the setting (a count) is refused with the reason.
    env.write_rules(H.kafka_block(env.brokers, env.group) + MODEL.replace(
        "processing:\n", "processing:\n  dedup_window: 16\n"), name="old.yaml")
    rc, out, err = env.run_cli(["check-config", env.path("old.yaml")])
    check_eq(rc, 1, "check-config of dedup_window: 16")
    check("dedup_window" in out + err and "duration" in out + err,
          "the error names the setting and says it is a duration: %r" % (out + err))


if __name__ == "__main__":
    H.main([
        test_repeat_after_100_events_and_23h_later,
        test_window_setting_and_old_layout,
    ])
