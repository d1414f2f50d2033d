"""ids.hmac_key on redis-server and the embedded broker: every lead is stored and published
under HMAC-SHA-256(key, id) — userIds and anonymousIds that are e-mail addresses and phone
numbers, an alias's previousId, and the email and phone traits — so that no raw one is
anywhere in Redis (every key and value read) or in a transition; the state equals, lead for
lead, a run without the key over the same input; `leadflow inspect` finds a lead by its raw
id, by its hash and by a linked anonymousId; the key comes from a file and is never printed.
Run: LF_BIN=build/leadflow python3 tests/integration/test_id_hash.py"""
import calendar
import hashlib
import hmac
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
import lfrecord  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

KEY = "idKeySecret-5b8e1f0c2d7a4e69"
T0 = calendar.timegm((2026, 3, 2, 9, 0, 0)) * 1000
RAW = ["ana@example.com", "anon-ana-1", "old.ana@example.com", "+1-555-0199", "anon-bo-7",
       "+1-555-0100", "bo@example.org"]


def h(raw):
    return hmac.new(KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()


def events():
    evs, n = [], [0]

    def ev(type_, ts, **kw):
        n[0] += 1
        evs.append((H.event(type_, "m-%d" % n[0], ts, **kw), "json"))
    ts = T0
    for i in range(3):  # anonymous visits, then the visitor identifies
        ev("page", ts + i * 60000, anon="anon-ana-1", url="https://ex.com/pricing")
    ev("identify", ts + 200000, anon="anon-ana-1", user="ana@example.com",
       traits={"email": "ana@example.com", "phone": "+1-555-0100", "company": "Acme",
               "employees": 5000, "company_tier": "enterprise"})
    ev("alias", ts + 210000, user="ana@example.com", previousId="old.ana@example.com")
    for i in range(6):
        ev("track", ts + 300000 + i * 60000, user="ana@example.com", event="Form Submitted",
           properties={"form_id": "demo-request"})
    for i in range(4):
        ev("page", ts + 400000 + i * 60000, user="+1-555-0199", url="https://ex.com/docs")
    ev("page", ts + 500000, anon="anon-bo-7", url="https://ex.com/")
    ev("identify", ts + 510000, anon="anon-bo-7", user="bo@example.org",
       traits={"email": "bo@example.org", "company": "Bo GmbH"})
    return evs


def rules(env, prefix, group, key_file=None, name="hashed.yaml"):
    path = H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW,
                            idle_clock="event")
    with open(path) as f:
        text = f.read()
    text = re.sub(r"(?m)^(  group_id:).*$", r"\1 %s" % group, text, count=1)
    text, k = re.subn(r"(?m)^  prefix:.*$", '  prefix: "%s"' % prefix, text, count=1)
    check_eq(k, 1, "redis.prefix set")
    if key_file:
        text += "ids:\n  hmac_key: ${file:%s}\n" % key_file
    else:
        text = re.sub(r"(?m)^(    transitions:).*$", r"\1 plain.transitions", text, count=1)
        text = re.sub(r"(?m)^(    dead_letter:).*$", r"\1 plain.dead", text, count=1)
    return env.write_rules(text, name=name)


def key_and_values(rb, k):
    """A key and every value it holds, as bytes."""
    out = [k]
    t = rb.type(k)
    if t == b"string":
        out.append(rb.get(k) or b"")
    elif t == b"hash":
        for f, v in rb.hgetall(k).items():
            out += [f, v]
    elif t == b"zset":
        out += [m for m, _ in rb.zrange(k, 0, -1, withscores=True)]
    elif t == b"set":
        out += list(rb.smembers(k))
    elif t == b"list":
        out += rb.lrange(k, 0, -1)
    return out


def test_no_raw_id_in_redis_or_transitions_and_the_same_state():
    # One partition: a visitor's events and its lead's interleave the same way in both runs
    # (docs/contract.md, Identity), so the two states can be compared field by field.
    env = H.started_env("idhash", partitions=1)
    with open(env.path("id-key"), "w") as f:
        f.write(KEY + "\n")
    hashed = rules(env, "lf:", "g-hashed", key_file="id-key")
    plain = rules(env, "plain:", "g-plain", name="plain.yaml")
    env.produce_events(events())
    n = env.high_watermarks(H.EVENTS_TOPIC)
    runs = [env.start_run("hashed", rules=hashed), env.start_run("plain", rules=plain)]

    def consumed(prefix, group):
        env.group = group
        return env.progress(prefix)["consumed"]
    H.wait_until(lambda: consumed("lf:", "g-hashed") == n and consumed("plain:", "g-plain") == n,
                 60, "both runs consumed the %d events" % n)
    for r in runs:
        env.settle(r)

    # 1. Nothing raw in Redis under the hashed prefix (the plain run's keys are skipped).
    rb = env.rb
    leaks = ["%s in %r" % (raw, k) for k in rb.scan_iter(match="lf:*", count=1000)
             for raw in RAW if any(raw.encode() in p for p in key_and_values(rb, k))]
    check(not leaks, "raw ids or contact traits in Redis: %s" % leaks[:10])
    plain_blob = b"\n".join(p for k in rb.scan_iter(match="plain:*", count=1000)
                            for p in key_and_values(rb, k))
    check(b"ana@example.com" in plain_blob, "the plain run's state does hold them (the check "
          "reads)")

    # 2. The same state, lead for lead: the hashed run's record of h(x) is the plain run's of
    # x, but for the contact traits, which are their hashes.
    got, want = env.all_leads("lf:"), env.all_leads("plain:")
    check_eq(len(got), len(want), "records")
    check(want, "the plain run stored leads")
    for raw_id, rec in want.items():
        g = got.get(h(raw_id))
        check(g is not None, "no record under h(%s)" % raw_id)
        for f, v in rec.items():
            if f in lfrecord.BOOKKEEPING:
                continue
            if f in ("tr.email", "tr.phone"):
                check_eq(g.get(f), h(v), "%s of %s: its hash" % (f, raw_id))
            else:
                check_eq(g.get(f), v, "%s of %s" % (f, raw_id))
    check_eq(got[h("ana@example.com")]["stage"], "mql", "ana became an MQL (email present)")

    # 3. Transitions: lead ids are hashes, nothing raw in any payload; the same ones otherwise.
    tmsgs = env.consume(H.TRANSITIONS_TOPIC, lambda m: len(m) >= 1, idle_after=2)
    pmsgs = env.consume("plain.transitions", lambda m: len(m) >= 1, idle_after=2)
    for m in tmsgs:
        for raw in RAW:
            check(raw.encode() not in m.value() and raw.encode() not in (m.key() or b""),
                  "%s in a transition" % raw)
    tg = sorted((t["lead_id"], t["seq"], t["to"]) for t in map(
        lambda m: H.decode_transition(m.value()), tmsgs))
    tp = sorted((h(t["lead_id"]), t["seq"], t["to"]) for t in map(
        lambda m: H.decode_transition(m.value()), pmsgs))
    check_eq(sorted(set(tg)), sorted(set(tp)), "the same transitions, under hashed ids")

    # 4. inspect by the raw id, by the hash, and by a linked anonymousId; the key not printed.
    for q, want_line in (("ana@example.com", "the id of ana@example.com under ids.hmac_key"),
                         (h("ana@example.com"), "lead " + h("ana@example.com")),
                         ("anon-ana-1", "linked to this lead")):
        rc, out, err = env.run_cli(["inspect", q, "-c", hashed])
        check_eq(rc, 0, "inspect %s\n%s%s" % (q, out, err))
        check(want_line in out and "lead " + h("ana@example.com") in out,
              "inspect %s shows the lead:\n%s" % (q, out[:800]))
    rc, out, err = env.run_cli(["check-config", hashed])
    check_eq(rc, 0, "check-config")
    check("hmac_key=***" in out and KEY not in out + err, "the key masked:\n" + out[-600:])
    for r in runs:
        check_eq(r.stop(), 0, "exit status")
        check(KEY not in r.log_text(), "the key is not logged")


if __name__ == "__main__":
    H.main([test_no_raw_id_in_redis_or_transitions_and_the_same_state])
