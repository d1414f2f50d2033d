"""Bad input goes to the dead-letter topic unchanged, with the reason and its source in the
headers; the processor keeps running and conservation holds (docs/contract.md "Events in").
Run: LF_BIN=build/leadflow python3 tests/integration/test_deadletter.py"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402
from test_pipeline import T0, small_rules, check_conservation  # noqa: E402

HOUR = H.HOUR_MS


def ev(mid, ts, **kw):
    return H.event("track", mid, ts, event="form_submit", **kw)


def bad_records():
    """(name, key, value, reason) for every kind of bad input; reasons as lf_bad_name."""
    good = ev("x", T0, user="u-bad")
    j = lambda e: json.dumps(e).encode()  # noqa: E731
    no_mid = dict(good)
    del no_mid["messageId"]
    no_ts = dict(good)
    del no_ts["timestamp"]
    big = ev("big", T0, user="u-bad", properties={"blob": "x" * 3000})  # limit: 2048 bytes
    recs = [
        ("garbage bytes", b"u-bad", b"\xc1\xc1 not an event", "not_decodable"),
        ("broken JSON", b"u-bad", b'{"messageId": "m", "type": ', "not_decodable"),
        ("empty value", b"u-bad", b"", "not_decodable"),
        ("MessagePack array", b"u-bad", H.mp_pack([1, 2, 3]), "not_a_map"),
        ("MessagePack string", None, H.mp_pack("just a string"), "not_a_map"),
        ("no messageId", b"u-bad", j(no_mid), "missing_field"),
        ("no ids", b"u-bad", j(ev("noid", T0)), "missing_field"),
        ("no timestamp", b"u-bad", H.mp_pack(no_ts), "missing_field"),
        ("track without event", b"u-bad",
         j({"messageId": "te", "type": "track", "userId": "u-bad", "timestamp": T0}),
         "missing_field"),
        ("userId a number", b"u-bad", j(dict(good, userId=42)), "wrong_type"),
        ("userId too long", b"x" * 129, j(dict(good, userId="x" * 129)), "id_too_long"),
        ("messageId too long", b"u-bad", H.mp_pack(dict(good, messageId="m" * 129)),
         "id_too_long"),
        ("timestamp unparsable", b"u-bad", j(dict(good, timestamp="yesterday")),
         "timestamp_unparsable"),
        ("timestamp before min", b"u-bad", j(dict(good, timestamp="1990-01-01T00:00:00Z")),
         "timestamp_out_of_range"),
        ("timestamp after max", b"u-bad", H.mp_pack(dict(good, timestamp=4200000000000)),
         "timestamp_out_of_range"),
        ("oversized value", b"u-bad", j(big), "too_large"),
        ("Segment batch envelope", b"u-bad", j({"batch": [good, good]}), "batch_envelope"),
        ("JSON array of events", b"u-bad", j([good, good]), "not_a_map"),
        ("JSON after a UTF-8 BOM", b"u-bad", b"\xef\xbb\xbf" + j(good), "not_decodable"),
    ]
    return recs


# lf.error says what is wrong, not "bytes after the first object" (the first byte of these
# read as a MessagePack integer).
ERRORS = {"JSON array of events": "JSON array", "JSON after a UTF-8 BOM": "byte order mark"}


def test_dead_letters():
    env = H.new_env("dlq")
    env.start_redis()
    env.start_broker(2)
    small_rules(env)
    run = env.start_run()
    bad = bad_records()
    records = []
    # Good events around the bad ones: the processor keeps going.
    for i, (name, key, value, reason) in enumerate(bad):
        g = ev("g%d" % i, T0 + i * HOUR, user="u-good")
        records.append((b"u-good", H.encode(g, "json" if i % 2 else "msgpack")))
        records.append((key, value))
    records.append((b"u-good", H.encode(ev("g-last", T0 + 30 * HOUR, user="u-good"), "json")))
    where = env.produce(records)
    n = len(records)
    p = env.wait_consumed(n, proc=run)
    check_eq(p["dead"], len(bad), "dead-lettered count")
    check_eq(p["applied"], len(bad) + 1, "applied count")
    check_conservation(p)
    check(run.alive(), "the processor stopped")
    h = env.lead("u-good")
    check_eq(h.get("n.form_submit"), str(len(bad) + 1), "good events all applied")

    msgs = env.consume(H.DEAD_TOPIC, lambda m: len(m) >= len(bad), timeout=30, idle_after=1.0)
    check_eq(len(msgs), len(bad), "messages on the dead-letter topic")
    got = {}
    for m in msgs:
        hd = {}
        for k, v in m.headers() or []:
            hd[k] = v.decode() if v is not None else None
        key = (hd.get("lf.source.partition"), hd.get("lf.source.offset"))
        got[key] = (m, hd)
    for i, (name, key, value, reason) in enumerate(bad):
        part, off = where[2 * i + 1]
        entry = got.get((str(part), str(off)))
        check(entry is not None, "%s: no dead letter with source %d/%d" % (name, part, off))
        m, hd = entry
        check_eq(m.value() or b"", value, name + ": value unchanged")
        check_eq(m.key(), key, name + ": key unchanged")
        check_eq(hd.get("lf.reason"), reason, name + ": lf.reason")
        check_eq(hd.get("lf.source.topic"), H.EVENTS_TOPIC, name + ": lf.source.topic")
        check(hd.get("lf.error"), name + ": lf.error is empty")
        if name in ERRORS:
            check(ERRORS[name] in hd.get("lf.error", ""),
                  "%s: lf.error %r does not say %r" % (name, hd.get("lf.error"), ERRORS[name]))
    # Still alive and working after all that.
    env.produce_events([(ev("after", T0 + 40 * HOUR, user="u-good"), "json")])
    p = env.wait_consumed(n + 1, proc=run)
    check_eq(env.lead("u-good").get("n.form_submit"), str(len(bad) + 2), "an event after")
    check_conservation(p)
    check_eq(run.stop(), 0, "exit status")


if __name__ == "__main__":
    H.main([test_dead_letters])
