#!/usr/bin/python3
"""The "careful Python consumer" of issue 5: what a competent user would write instead of
leadflow, measured on the same preloaded topic by `make bench`.

confluent-kafka consumer, batches of 1000 (Consumer.consume), msgpack decode, validation
(bad input to a dead-letter topic with a reason header), bot filter, the engagement and fit
rules of the same rules file (read with PyYAML: kinds and Segment names, path prefixes, UTM
fields from context.campaign or the URL query, property and trait conditions), then one
pipelined EVALSHA per event (redis-py pipeline, transaction=False, one round trip per
batch) of a Lua script that updates the lead atomically: dedup on the last 16 messageIds,
identity (alias key, the visitor's engagement merged decay-aligned), caps per window of
event time (last 4 windows per rule), decay, score, grade, counters, the stage machine
(visitor -> lead, lead/nurture <-> mql with enter/exit thresholds and required traits, the
sales kinds, the decay exit at event time), lf:top and the stage sorted sets. Transitions
the script returns are published to a Kafka topic; offsets are committed after each batch.

Deliberate simplifications (each makes the baseline cheaper, never slower): fit is computed
in Python from the traits the identify event carries (not re-derived from all traits ever
seen); there is no outbox, no progress hash and no per-partition replay guard (exactly-once
is not attempted; redelivery after a crash is deduplicated by messageId only); there is no
decay sweep for leads that receive no event; no stage history list.

Usage: python_baseline.py --brokers B --topic T --redis HOST:PORT --group G
                          --config deploy/leadflow.yaml --expect N [--seconds 60]
                          [--transitions T] [--dead-letter T] [--prefix py:]
Prints one JSON object on stdout.
"""
import argparse
import json
import re
import sys
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import msgpack
import redis
import yaml
from confluent_kafka import Consumer, KafkaError, Producer

KINDS = {
    "page_view": ["page viewed", "page view"],
    "utm_click": ["utm click", "utm link clicked"],
    "qr_scan": ["qr code scanned", "qr scanned"],
    "form_submit": ["form submitted", "form submit"],
    "email_open": ["email opened", "email open"],
    "email_click": ["email link clicked", "email clicked", "email click"],
    "event_register": ["webinar registered", "event registered"],
    "event_attend": ["webinar attended", "event attended"],
    "asset_download": ["asset downloaded", "file downloaded", "content downloaded"],
    "video_view": ["video playback started", "video content playing"],
    "sales_accept": ["lead accepted", "sales accepted"],
    "sales_reject": ["lead rejected", "sales rejected"],
    "sales_qualify": ["lead qualified", "sales qualified"],
    "opportunity_created": ["opportunity created"],
    "deal_won": ["deal won", "opportunity won"],
    "deal_lost": ["deal lost", "opportunity lost"],
    "disqualify": ["lead disqualified", "disqualified"],
    "identify": [],
    "alias": [],
}
KIND_OF = {}
for _k, _aliases in KINDS.items():
    KIND_OF[_k] = _k
    for _a in _aliases:
        KIND_OF[_a] = _k

UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000}


def duration_ms(v):
    if isinstance(v, (int, float)):
        return int(v * 1000)
    total = 0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", str(v)):
        total += float(num) * UNITS[unit]
    return int(total)


def as_list(v):
    return v if isinstance(v, list) else [v]


def compile_cond(spec):
    """A condition of the rules file -> a function(value) -> bool (value: str/num/None)."""
    negate = False
    if isinstance(spec, dict):
        spec = dict(spec)
        if spec.get("not") is True:
            spec.pop("not")
            negate = True
        elif "not" in spec and len(spec) == 1:
            inner = compile_cond(spec["not"])
            return lambda v: not inner(v)
        if "present" in spec:
            want = bool(spec["present"])
            f = lambda v: (v is not None and str(v) != "") == want
        elif "prefix" in spec:
            prefixes = [str(p) for p in as_list(spec["prefix"])]
            f = lambda v: v is not None and any(str(v).startswith(p) for p in prefixes)
        elif "min" in spec or "max" in spec:
            lo, hi = spec.get("min"), spec.get("max")

            def f(v, lo=lo, hi=hi):
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    return False
                return (lo is None or x >= lo) and (hi is None or x < hi)
        else:
            values = {str(x).lower() for x in as_list(spec.get("in", spec.get("equals")))}
            f = lambda v: v is not None and str(v).lower() in values
    else:
        values = {str(x).lower() for x in as_list(spec)}
        f = lambda v: v is not None and str(v).lower() in values
    return (lambda v: not f(v)) if negate else f


class Model:
    def __init__(self, path):
        with open(path) as fh:
            doc = yaml.safe_load(fh)
        m = doc.get("model", {})
        self.version = str(doc.get("version", ""))
        self.half_life = duration_ms(m.get("decay", {}).get("half_life", "14d"))
        g = m.get("grades", {})
        self.l1, self.l2 = float(g.get("L1", 80)), float(g.get("L2", 40))
        mql = m.get("stages", {}).get("mql", {})
        self.enter, self.exit = float(mql.get("enter", 60)), float(mql.get("exit", 45))
        self.required = list(mql.get("require_traits", []))
        self.bots = [b.lower() for b in m.get("bots", {}).get("user_agents", [])]
        self.rules = []  # (index, kinds or None, prefixes or None, utm conds, prop conds, points, cap_points, cap_ms)
        for i, r in enumerate(m.get("engagement", [])):
            kinds = None
            if "kind" in r:
                kinds = {KIND_OF.get(str(k).lower(), str(k).lower()) for k in as_list(r["kind"])}
            prefixes = [str(p) for p in as_list(r["path_prefix"])] if "path_prefix" in r else None
            utm = [(("campaign" if f == "name" else f), compile_cond(c))
                   for f, c in (r.get("utm") or {}).items()]
            props = [(f, compile_cond(c)) for f, c in (r.get("properties") or {}).items()]
            cap = r.get("cap")
            self.rules.append((i, kinds, prefixes, utm, props, float(r["points"]),
                               float(cap["points"]) if cap else 0.0,
                               duration_ms(cap["per"]) if cap else 0))
        self.fit = [([(f, compile_cond(c)) for f, c in (r.get("traits") or {}).items()],
                     float(r["points"])) for r in m.get("fit", [])]
        lim = doc.get("limits", {})
        self.max_bytes = int(lim.get("max_event_bytes", 32768))
        self.min_ts = parse_ts(lim.get("min_timestamp", "2000-01-01T00:00:00Z"))
        self.max_ts = parse_ts(lim.get("max_timestamp", "2100-01-01T00:00:00Z"))


def parse_ts(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, datetime):
        return int(v.timestamp() * 1000)
    if isinstance(v, str):
        try:
            return int(datetime.fromisoformat(v).timestamp() * 1000)
        except ValueError:
            return None
    return None


def flatten(d, prefix, out, depth=0):
    for k, v in d.items():
        key = prefix + str(k)
        if isinstance(v, dict) and depth < 2:
            flatten(v, key + ".", out, depth + 1)
        else:
            out[key] = v
    return out


class Bad(Exception):
    pass


def as_id(ev, name, required=False):
    v = ev.get(name)
    if v is None or v == "":
        if required:
            raise Bad("missing_field")
        return None
    if not isinstance(v, str):
        raise Bad("wrong_type")
    if len(v.encode()) > 128:
        raise Bad("id_too_long")
    return v


LUA = r"""
-- KEYS: 1 lead hash (userId, else anonymousId), 2 lf:top, 3 visitor hash, 4 alias key
-- ARGV: 1 lead id, 2 messageId, 3 ts, 4 kind, 5 has userId, 6 anon id (identify/alias or
-- anonymous-only: its alias is looked up), 7 fit ('' = unchanged), 8 required traits
-- present ('' = unchanged), then per matched rule: rule, points, cap points, cap ms.
-- The model's constants are formatted into the script when it is loaded.
local key, lead = KEYS[1], ARGV[1]
local ts, kind, user = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local prefix, hl = '%(prefix)s', %(half_life)s
local enter, exit = %(enter)s, %(exit)s
if not user then
  local to = redis.call('GET', KEYS[4])
  if to then lead = to; key = prefix .. 'lead:{' .. to .. '}' end
end
local nr = (#ARGV - 8) / 4
local fields = {'stage', 'eng', 't', 'fit', 'dd', 'seq', 'req', 'rq', 'events', 'first_seen',
                'last_seen', 'stage_at', 'n.' .. kind}
for r = 0, nr - 1 do fields[14 + r] = 'cap.' .. ARGV[9 + 4 * r] end
local h = redis.call('HMGET', key, unpack(fields))
local stage = h[1]
local exists = stage ~= false
local msgid = ARGV[2]
if exists and h[5] and string.find(h[5], msgid, 1, true) then return {0} end
local e, t = tonumber(h[2] or '0'), tonumber(h[3] or '0')
local fit, seq, req, rq = tonumber(h[4] or '0'), tonumber(h[6] or '0'), h[7] == '1', h[8] == '1'
local stage_at = tonumber(h[12] or '0')
if not exists then stage = 'visitor'; stage_at = ts end
local function decay(dt) if dt <= 0 then return 1 end return 2 ^ (-dt / hl) end
local function add(p, at)
  if at >= t then e = e * decay(at - t) + p; t = at else e = e + p * decay(t - at) end
end
local out = {1}
local function move(to, reason, at)
  seq = seq + 1
  local eng = e * decay(at - t)
  out[#out + 1] = stage; out[#out + 1] = to; out[#out + 1] = reason
  out[#out + 1] = tostring(fit + eng); out[#out + 1] = tostring(at); out[#out + 1] = tostring(seq)
  stage = to; stage_at = at
end
-- a decay exit that happened before this event, at its crossing time
if exists and stage == 'mql' and ts >= t and e > 0 and exit - fit > 0 then
  local gap = exit - fit
  local at = t
  if e >= gap then at = t + math.floor(hl * math.log(e / gap) / math.log(2)) + 1 end
  if at <= ts then move('nurture', 'score_decay', math.max(at, stage_at)) end
end
-- identity: link the visitor once, moving its engagement and counters
if user and ARGV[6] ~= '' and (kind == 'identify' or kind == 'alias') then
  if redis.call('SET', KEYS[4], lead, 'NX') then
    local v = redis.call('HMGET', KEYS[3], 'eng', 't', 'events', 'first_seen')
    if v[1] then
      add(tonumber(v[1]), tonumber(v[2]))
      h[9] = tonumber(h[9] or '0') + tonumber(v[3] or '0')
      redis.call('DEL', KEYS[3])
      redis.call('ZREM', KEYS[2], ARGV[6])
      redis.call('ZREM', prefix .. 'stage:visitor', ARGV[6])
      if not exists or tonumber(v[4]) < ts then h[10] = v[4] end
    end
  end
end
local dd = h[5] or ''
local n = 0
for _ in string.gmatch(dd, '[^,]+') do n = n + 1 end
if n >= 16 then dd = string.sub(dd, string.find(dd, ',', 1, true) + 1) end
dd = (dd == '' and msgid) or (dd .. ',' .. msgid)
if ARGV[7] ~= '' then fit = tonumber(ARGV[7]) end
if ARGV[8] ~= '' then req = ARGV[8] == '1' end
local set = {'dd', dd, 'last_seen', math.max(tonumber(h[11] or '0'), ts),
             'first_seen', h[10] and math.min(tonumber(h[10]), ts) or ts}
-- caps: 'cap.<rule>' = 'window:granted,...' (last 4 windows)
for r = 0, nr - 1 do
  local rule, p = ARGV[9 + 4 * r], tonumber(ARGV[10 + 4 * r])
  local cp, cw = tonumber(ARGV[11 + 4 * r]), tonumber(ARGV[12 + 4 * r])
  if cp > 0 and p > 0 then
    local k = math.floor(ts / cw)
    local wins, slot, oldest = {}, nil, nil
    local cur = h[14 + r] or ''
    for w, g in string.gmatch(cur, '(%%-?%%d+):([%%d%%.]+)') do
      wins[#wins + 1] = {tonumber(w), tonumber(g)}
      if tonumber(w) == k then slot = #wins end
      if not oldest or tonumber(w) < wins[oldest][1] then oldest = #wins end
    end
    if not slot then
      if #wins < 4 then wins[#wins + 1] = {k, 0}; slot = #wins
      elseif k > wins[oldest][1] then wins[oldest] = {k, 0}; slot = oldest
      else p = 0 end
    end
    if slot then
      local grant = math.max(0, math.min(p, cp - wins[slot][2]))
      wins[slot][2] = wins[slot][2] + grant
      p = grant
      local s = {}
      for i = 1, #wins do s[i] = wins[i][1] .. ':' .. wins[i][2] end
      set[#set + 1] = 'cap.' .. rule; set[#set + 1] = table.concat(s, ',')
    end
  end
  if p ~= 0 then add(p, ts) end
end
if t < ts and e == 0 then t = ts end
local at = math.max(ts, t)
if stage == 'visitor' and user then
  move('lead', kind == 'identify' and 'identify' or 'first_seen', ts)
end
local target, moved = nil, false
if string.find('|sales_accept|sales_qualify|opportunity_created|deal_won|sales_reject|deal_lost|disqualify|', '|' .. kind .. '|', 1, true) then
  target = ({sales_accept = 'sal', sales_qualify = 'sql', opportunity_created = 'opportunity',
             deal_won = 'customer', sales_reject = 'nurture', deal_lost = 'nurture',
             disqualify = 'disqualified'})[kind]
end
local order = target and {visitor = 0, lead = 1, mql = 2, sal = 3, sql = 4, opportunity = 5,
                          customer = 6, nurture = 7, disqualified = 8}
if target and stage ~= 'visitor' and stage ~= 'disqualified' and stage ~= target then
  local ok
  if target == 'disqualified' then ok = true
  elseif target == 'nurture' then ok = order[stage] >= 2 and order[stage] <= 5
  elseif stage == 'nurture' then ok = order[target] >= 2 and order[target] <= 6
  else ok = order[target] > order[stage] end
  if ok then move(target, 'sales_event', ts); moved = true; if target == 'nurture' then rq = true end end
end
local score = fit + e * decay(at - t)
if score < enter then rq = false end
if not moved then
  if (stage == 'lead' or (stage == 'nurture' and not rq)) and score >= enter and req then
    move('mql', 'score_threshold', at)
  elseif stage == 'mql' and score < exit then
    move('nurture', 'score_drop', at)
  end
end
local grade = 'L3'
if score >= %(l1)s then grade = 'L1' elseif score >= %(l2)s then grade = 'L2' end
redis.call('HSET', key, 'stage', stage, 'eng', e, 't', t, 'fit', fit, 'seq', seq,
           'req', req and 1 or 0, 'rq', rq and 1 or 0, 'score', score, 'grade', grade,
           'stage_at', stage_at, 'events', tonumber(h[9] or '0') + 1,
           'n.' .. kind, tonumber(h[13] or '0') + 1, unpack(set))
redis.call('ZADD', KEYS[2], score, lead)
if h[1] ~= stage then
  if h[1] then redis.call('ZREM', prefix .. 'stage:' .. h[1], lead) end
  redis.call('ZADD', prefix .. 'stage:' .. stage, stage_at, lead)
end
out[#out + 1] = lead
return out
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", default="leadflow.events")
    ap.add_argument("--redis", required=True)
    ap.add_argument("--group", default="bench-python")
    ap.add_argument("--config", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--transitions", default="bench.py.transitions")
    ap.add_argument("--dead-letter", default="bench.py.dead-letter")
    ap.add_argument("--prefix", default="py:")
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()

    model = Model(a.config)
    host, port = a.redis.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    prefix = a.prefix
    sha = r.script_load(LUA % {"prefix": prefix, "half_life": model.half_life,
                               "enter": model.enter, "exit": model.exit, "l1": model.l1,
                               "l2": model.l2})
    top_key = prefix + "top"
    consumer = Consumer({
        "bootstrap.servers": a.brokers, "group.id": a.group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100, "queued.max.messages.kbytes": 65536,
    })
    producer = Producer({"bootstrap.servers": a.brokers, "linger.ms": 5,
                         "enable.idempotence": True})
    consumer.subscribe([a.topic])

    rules, fit_rules, required, bots = model.rules, model.fit, model.required, model.bots
    # Rules grouped by the kind they can match (rule order kept): most events test 1-5 rules.
    any_kind = [x for x in rules if x[1] is None]
    all_kinds = {k for x in rules if x[1] for k in x[1]} | set(KINDS)
    by_kind = {k: [x for x in rules if x[1] is None or k in x[1]] for k in all_kinds}
    by_kind_campaign = [x for x in rules
                        if x[1] is None or "page_view" in x[1] or "utm_click" in x[1]]
    n = applied = dups = dead = filtered = transitions = 0
    t_first = t_last = None
    t_start = time.monotonic()
    unpackb = msgpack.unpackb

    def dead_letter(msg, reason):
        producer.produce(a.dead_letter, key=msg.key(), value=msg.value(),
                         headers=[("lf.reason", reason), ("lf.source.topic", msg.topic()),
                                  ("lf.source.partition", str(msg.partition())),
                                  ("lf.source.offset", str(msg.offset()))])

    while n < a.expect:
        if t_first is not None and time.monotonic() - t_first > a.seconds:
            break
        if time.monotonic() - t_start > a.seconds + 60:
            break
        msgs = consumer.consume(num_messages=a.batch, timeout=0.5)
        if not msgs:
            continue
        pipe = r.pipeline(transaction=False)
        sent = 0
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print("consumer error:", msg.error(), file=sys.stderr)
                continue
            if t_first is None:
                t_first = time.monotonic()
            n += 1
            raw = msg.value()
            try:
                if raw is None or len(raw) > model.max_bytes:
                    raise Bad("too_large")
                try:
                    ev = unpackb(raw, raw=False, strict_map_key=False) if raw[:1] != b"{" \
                        else json.loads(raw)
                except Exception:
                    raise Bad("not_decodable")
                if not isinstance(ev, dict):
                    raise Bad("not_a_map")
                msgid = as_id(ev, "messageId", required=True)
                typ = ev.get("type")
                if not isinstance(typ, str) or not typ:
                    raise Bad("missing_field")
                tl = typ.lower()
                if tl == "track":
                    name = ev.get("event")
                    if not isinstance(name, str) or not name:
                        raise Bad("missing_field")
                    kind = KIND_OF.get(name.lower(), name)
                    if kind in ("identify", "alias"):
                        kind = name
                elif tl == "page":
                    kind = "page_view"
                else:
                    kind = KIND_OF.get(tl, typ)
                user = as_id(ev, "userId")
                anon = as_id(ev, "anonymousId")
                if not user and not anon:
                    raise Bad("missing_field")
                link = anon
                if kind == "alias":
                    link = as_id(ev, "previousId", required=True)
                ts = None
                for f in ("timestamp", "originalTimestamp", "receivedAt"):
                    if f in ev:
                        ts = parse_ts(ev[f])
                        if ts is None:
                            raise Bad("timestamp_unparsable")
                        break
                if ts is None:
                    raise Bad("missing_field")
                if ts < model.min_ts or ts > model.max_ts:
                    raise Bad("timestamp_out_of_range")
            except Bad as b:
                dead += 1
                dead_letter(msg, str(b))
                continue
            ctx = ev.get("context") if isinstance(ev.get("context"), dict) else {}
            ua = ctx.get("userAgent")
            if ua and bots:
                ual = str(ua).lower()
                if any(b in ual for b in bots):
                    filtered += 1
                    continue
            page = ctx.get("page") if isinstance(ctx.get("page"), dict) else {}
            props = ev.get("properties") if isinstance(ev.get("properties"), dict) else {}
            url = page.get("url") or props.get("url") or ""
            path = page.get("path") or props.get("path") or (urlsplit(url).path if url else "")
            utm = {}
            camp = ctx.get("campaign")
            if isinstance(camp, dict):
                for f in ("source", "medium", "term", "content"):
                    if camp.get(f):
                        utm[f] = camp[f]
                if camp.get("name"):
                    utm["campaign"] = camp["name"]
            click = None
            if url and "?" in url:
                q = parse_qs(urlsplit(url).query)
                for f in ("source", "medium", "campaign", "term", "content"):
                    if f not in utm and ("utm_" + f) in q:
                        utm[f] = q["utm_" + f][0]
                for c in ("gclid", "msclkid", "dclid", "fbclid"):
                    if c in q:
                        click = q[c][0]
                        break
            if click:
                utm["click_id"] = click
            has_campaign = bool(utm)
            flat = flatten(props, "", {}) if props else {}
            args = [(user or anon), msgid, ts, kind, 1 if user else 0,
                    (link or "") if user and kind in ("identify", "alias") else (anon or "")]
            traits = ev.get("traits") if isinstance(ev.get("traits"), dict) else None
            if isinstance(ctx.get("traits"), dict):
                traits = dict(ctx["traits"], **(traits or {}))
            if traits:
                fit = sum(p for conds, p in fit_rules if all(c(traits.get(f)) for f, c in conds))
                args += [fit, 1 if all(traits.get(t) not in (None, "") for t in required) else 0]
            else:
                args += ["", ""]
            matched = []
            cands = by_kind.get(kind, any_kind)
            if kind == "page_view" and has_campaign:
                cands = by_kind_campaign
            for (i, kinds, prefixes, uconds, pconds, points, cap_p, cap_ms) in cands:
                if prefixes is not None and not any(path.startswith(p) for p in prefixes):
                    continue
                if uconds and not all(c(utm.get(f)) for f, c in uconds):
                    continue
                if pconds and not all(c(flat.get(f)) for f, c in pconds):
                    continue
                matched += [i, points, cap_p, cap_ms]
            args += matched
            lead_key = prefix + "lead:{" + (user or anon) + "}"
            anon_for_keys = args[5] or (user or anon)
            pipe.evalsha(sha, 4, lead_key, top_key, prefix + "lead:{" + anon_for_keys + "}",
                         prefix + "alias:{" + anon_for_keys + "}", *args)
            sent += 1
        results = pipe.execute() if sent else []
        for res in results:
            if res[0] == 0:
                dups += 1
                continue
            applied += 1
            lead = res[-1].decode() if isinstance(res[-1], bytes) else res[-1]
            for j in range(1, len(res) - 1, 6):
                fr, to, reason, score, at, seq = (x.decode() if isinstance(x, bytes) else x
                                                  for x in res[j:j + 6])
                producer.produce(a.transitions, key=lead, value=msgpack.packb({
                    "transition_id": "%s:%s" % (lead, seq), "lead_id": lead, "seq": int(seq),
                    "from": fr, "to": to, "reason": reason, "score": float(score),
                    "at": int(float(at)), "rules_version": model.version}))
                transitions += 1
        producer.poll(0)
        consumer.commit(asynchronous=True)
        t_last = time.monotonic()
    producer.flush(30)
    consumer.close()
    secs = (t_last - t_first) if t_first and t_last else 0.0
    print(json.dumps({"events": n, "seconds": round(secs, 3),
                      "eps": round(n / secs, 1) if secs > 0 else 0.0,
                      "applied": applied, "duplicates": dups, "dead_lettered": dead,
                      "filtered": filtered, "transitions": transitions,
                      "complete": n >= a.expect, "time_budget_s": a.seconds}))


if __name__ == "__main__":
    main()
