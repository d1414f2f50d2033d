"""A lead's or a visitor's Redis record, decoded in Python for the tests: an independent
reader of the layout docs/redis-layout.md documents (the C reader is src/core/lead_codec.c
and lead_pack.c), so a test checks the format, not only that leadflow reads back what it
wrote.

record(pairs) takes a lead hash as read with bytes (HGETALL, decode_responses=False), or
{b"p": value} for a visitor's string, and returns the lead as one flat dict of strings with
the field names of the layout before packed records (stage seq score grade fit eng t
first_seen last_seen stage_at events rules_version n.<kind> ft.* lt.* tr.<trait> cap.<rule>
anon rq v o h0..h7 "seq|from|to|reason|at|score"), with "dw" the remembered messageIds as
"<48-bit hash in hex>@<event second>,..." newest first; plus the bookkeeping (BOOKKEEPING:
not lead state) "layout" ("2" or "1"), "expires" (a visitor's, unix s) and "packed_bytes".
A hash in the layout before is returned as it is (with "layout": "1")."""

import re

from lfharness import mp_unpack

KINDS = ["other", "page_view", "utm_click", "qr_scan", "form_submit", "email_open",
         "email_click", "event_register", "event_attend", "asset_download", "video_view",
         "sales_accept", "sales_reject", "sales_qualify", "opportunity_created", "deal_won",
         "deal_lost", "disqualify", "identify", "alias"]
STAGES = ["visitor", "lead", "mql", "sal", "sql", "opportunity", "customer", "nurture",
          "disqualified"]
REASONS = ["identify", "first_seen", "score_threshold", "score_decay", "score_drop",
           "sales_event", "rules_switch"]
FORMAT = 2
# Fields of record() that are storage bookkeeping, not the lead's state: two runs that agree on
# every lead may differ here (write versions, offsets, wall-clock expiry).
BOOKKEEPING = ("v", "o", "layout", "expires", "packed_bytes")


def _num(x):
    if isinstance(x, float):
        return repr(x)
    return str(x)


def _dedup(b, t_ms):
    out, i, prev = [], 0, t_ms // 1000
    while i < len(b):
        delta, shift = 0, 0
        while True:
            c = b[i]
            i += 1
            delta |= (c & 0x7f) << shift
            shift += 7
            if not c & 0x80:
                break
        h = int.from_bytes(b[i:i + 6], "big")
        i += 6
        prev -= delta
        out.append((h, prev))
    return out


def _parts(pairs):
    parts = {}
    for f, v in pairs.items():
        m = re.fullmatch(rb"p([1-9][0-9]*)?", f)
        if m:
            parts[int(m.group(1) or b"1")] = v
    if not parts:
        return None
    n = max(parts)
    assert sorted(parts) == list(range(1, n + 1)), "packed parts missing: %s" % sorted(parts)
    return b"".join(parts[k] for k in range(1, n + 1))


def record(pairs):
    if not pairs:
        return {}
    pairs = {(k.encode() if isinstance(k, str) else k): (v.encode() if isinstance(v, str) else v)
             for k, v in pairs.items()}
    packed = _parts(pairs)
    if packed is None:
        out = {k.decode(): v.decode() for k, v in pairs.items()}
        out["layout"] = "1"
        return out
    e = mp_unpack(packed)
    assert isinstance(e, list) and len(e) >= 17 and e[0] == FORMAT, "not a packed record: %r" % e[:2]
    out = {"layout": "2", "packed_bytes": str(len(packed))}
    for k, v in pairs.items():
        if not re.fullmatch(rb"p([1-9][0-9]*)?", k):
            out[k.decode()] = v.decode()
    if len(e) >= 22:  # self-contained (a visitor's)
        out.update(stage=STAGES[e[17]], seq=str(e[18]), fit=_num(e[19]), eng=_num(e[20]),
                   t=str(e[21]))
    t = int(out["t"])
    out["v"] = str(e[1])
    if e[2] & 1:
        out["anon"] = "1"
    if e[2] & 2:
        out["rq"] = "1"
    out["rules_version"] = e[3]
    out["first_seen"], out["last_seen"], out["stage_at"] = (str(t - e[4]), str(t - e[5]),
                                                            str(t - e[6]))
    out["events"] = str(e[7])
    c = e[8]
    for i in range(0, len(c), 2):
        out["n." + KINDS[c[i]]] = str(c[i + 1])
    touches = [("ft", e[9]), ("lt", e[10] if e[10] is not None else e[9])]
    for name, tt in touches:
        if tt is not None:
            out[name + ".source"], out[name + ".medium"], out[name + ".campaign"] = tt[:3]
            out[name + ".at"] = str(t - tt[3])
    for i in range(0, len(e[11]), 2):
        out["tr." + e[11][i]] = e[11][i + 1]
    for i in range(0, len(e[12]), 2):
        w = e[12][i + 1]
        out["cap." + e[12][i]] = ",".join("%d=%s" % (w[j], _num(w[j + 1]))
                                         for j in range(0, len(w), 2))
    out["dw"] = ",".join("%012x@%d" % x for x in _dedup(e[13], t))
    o = e[14]
    if o:
        out["o"] = ",".join("%d:%d" % (o[i], o[i + 1]) for i in range(0, len(o), 2))
    h = e[15]
    for i in range(0, len(h), 6):
        seq, fr, to, reason, at, score = h[i:i + 6]
        out["h%d" % (seq % 8)] = "%d|%s|%s|%s|%d|%.2f" % (seq, STAGES[fr], STAGES[to],
                                                        REASONS[reason], t - at, score / 100)
    if e[16]:
        out["expires"] = str(e[16])
    return out
