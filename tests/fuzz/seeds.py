#!/usr/bin/env python3
"""Regenerate the seed corpora of the fuzz harnesses: tests/fuzz/corpus/<harness>/.

    python3 tests/fuzz/seeds.py

Seeds are small, valid or nearly valid inputs that reach deep into each parser quickly:
the Segment fixtures of tests/fixtures/segment (as JSON, and packed as MessagePack),
hand-written hostile events, the timestamp and URL tables of the unit tests, the example
rules file and the rule snippets of tests/unit/test_config.c. Regression inputs (crashes
found and fixed) live apart, in tests/fuzz/regressions/<harness>/, and are never rewritten
here. Writes only the corpus directories; run from anywhere.
"""
import json
import os
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "segment")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from lfharness import mp_pack  # noqa: E402  (the integration tests' MessagePack packer)


def reset(name):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


GOOD = {
    "messageId": "m-1", "type": "page", "userId": "u-1", "anonymousId": "a-1",
    "timestamp": "2015-07-10T23:00:00.123+02:00",
    "context": {"page": {"url": "https://x.com/pricing?utm_source=li&utm_medium=cpc&gclid=G",
                         "path": "/pricing", "referrer": "https://google.com/", "title": "P",
                         "search": "?utm_campaign=spring"},
                "campaign": {"source": "adwords", "medium": "cpc", "name": "s", "term": "t",
                             "content": "c"},
                "userAgent": "Mozilla/5.0", "traits": {"company": "Initech", "region": "EU"}},
    "properties": {"form_id": "demo", "seats": 25, "price": 14.99, "neg": -3, "ok": True,
                   "gone": None, "list": [1, 2], "address": {"city": "Berlin",
                                                             "geo": {"lat": 52.5}}},
    "traits": {"company": "Initrode", "employees": 250, "company_tier": "enterprise"},
}


def events():
    """(name, object) pairs: one of each shape the field logic distinguishes."""
    track = dict(GOOD, type="track", event="Email Link Clicked")
    ident = {"messageId": "i", "type": "identify", "userId": "u", "anonymousId": "a",
             "originalTimestamp": 1436569200123, "traits": {"email": "a@b.c"}}
    alias = {"messageId": "al", "type": "alias", "userId": "u", "previousId": "p",
             "receivedAt": "2015-07-10T23:00:00Z"}
    deep = {"messageId": "d", "type": "page", "userId": "u", "timestamp": 1436569200000}
    node = deep
    for _ in range(14):
        node["properties"] = {"k": "v"}
        node = node["properties"]
    return [
        ("page", GOOD),
        ("track", track),
        ("identify", ident),
        ("alias", alias),
        ("kind_direct", dict(GOOD, type="qr_scan")),
        ("deep", deep),
        ("batch", {"batch": [GOOD]}),
        ("missing_ts", {"messageId": "m", "type": "page", "userId": "u"}),
        ("id_number", dict(GOOD, userId=42)),
        ("id_long", dict(GOOD, userId="x" * 129)),
        ("ts_range", dict(GOOD, timestamp="1990-01-01T00:00:00Z")),
        ("ts_float", dict(GOOD, timestamp=1436569200000.5)),
        ("bad_utf8_prop", dict(GOOD, properties={"x": "\udcff"})),
        ("amp_query", dict(GOOD, context={"page": {
            "url": "https://x.com/a?x=1&amp;utm_source=news%20letter&UTM_MEDIUM=e+mail#f"}})),
    ]


def json_corpus():
    d = reset("json")
    if os.path.isdir(FIXTURES):
        for name in sorted(os.listdir(FIXTURES)):
            if name != "README.md":
                shutil.copy(os.path.join(FIXTURES, name), os.path.join(d, "fixture-" + name))
    for name, ev in events():
        put(d, name + ".json", json.dumps(ev, ensure_ascii=False, separators=(",", ":"),
                                          default=str).encode("utf-8", "surrogateescape"))
    good = json.dumps(GOOD)
    put(d, "array_of_events.json", "[" + good + "," + good + "]")
    put(d, "bom.json", b"\xef\xbb\xbf" + good.encode())
    put(d, "string.json", '"just a string"')
    put(d, "number.json", "1436569200000")
    put(d, "true.json", " true ")
    put(d, "trailing.json", good + " x")
    put(d, "nul_escape.json", good[:-1] + ',"p":{"x":"a\\u0000b"}}')
    put(d, "inf_prop.json", good[:-1] + ',"properties":{"big":1e999,"neg":-1e999}}')
    put(d, "escapes.json", good[:-1] + ',"properties":{"s":"\\ud83d\\ude00\\n\\t\\"\\\\\\/"}}')
    put(d, "too_deep.json", "{" * 17 + "}" * 17)
    put(d, "control_in_id.json", json.dumps(dict(GOOD, userId="u\u001b[31m\nforged row")))
    put(d, "text.txt", "hello world")


def mp_float32(v):
    return b"\xca" + struct.pack(">f", v)


def msgpack_corpus():
    d = reset("msgpack")
    if os.path.isdir(FIXTURES):
        for name in sorted(os.listdir(FIXTURES)):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(FIXTURES, name), "rb") as f:
                        put(d, "fixture-" + name[:-5] + ".mp", mp_pack(json.load(f)))
                except ValueError:
                    pass  # not valid JSON: only the JSON corpus has it
    for name, ev in events():
        try:
            put(d, name + ".mp", mp_pack(ev))
        except UnicodeEncodeError:
            pass
    good = mp_pack(GOOD)
    put(d, "trailing.mp", good + b"\xc0")
    put(d, "reserved_c1.mp", b"\x81\xa1a\xc1")
    put(d, "huge_map32.mp", b"\xdf\xff\xff\xff\xff\xa1a")
    put(d, "huge_str32.mp", b"\x81\xdb\xff\xff\xff\xf0a")
    put(d, "nul_in_key.mp", b"\x81\xa3a\x00b\xc0")
    # ids as bin, ext and float32; NaN and infinities as properties and timestamps
    base = {k: v for k, v in GOOD.items() if k != "properties"}
    head = mp_pack(base)
    n = len(base)
    assert 0x80 + n + 1 <= 0x8f
    props = (b"\xa5nan32" + mp_float32(float("nan")) + b"\xa4inf2" + b"\xcb" +
             struct.pack(">d", float("inf")) + b"\xa4ninf" + b"\xcb" +
             struct.pack(">d", float("-inf")) + b"\xa3bin\xc4\x02ab" +
             b"\xa3ext\xd4\x01x")
    put(d, "nan_props.mp", bytes([0x80 + n + 1]) + head[1:] + b"\xaaproperties\x85" + props)
    put(d, "ts_float32.mp", mp_pack(dict(base, timestamp=0)).replace(
        b"\xa9timestamp\x00", b"\xa9timestamp" + mp_float32(1.4e12)))
    put(d, "id_bin.mp", mp_pack(dict(base, userId="u-1")).replace(
        b"\xa6userId\xa3u-1", b"\xa6userId\xc4\x03u-1"))
    put(d, "array.mp", mp_pack([GOOD, GOOD]))
    put(d, "nested_arrays.mp", b"\x81\xa1p" + b"\x91" * 15 + b"\xc0")


URLS = [
    "https://example.com/pricing?utm_source=google&utm_term=lead+scoring&gclid=EAIaIQob",
    "https://x.com/a?utm_source=li&amp;utm_medium=cpc&UTM_Campaign=Spring%20Sale#frag",
    "//cdn.x.com/a/b?fbclid=1&dclid&msclkid=&utm_content=%zz%4",
    "/relative/path?utm_source=a&utm_source=b",
    "index.html",
    "http://host",
    "http://host?",
    "?utm_medium=%E2%82%AC&x=%",
    "mailto:a@b.c?utm_source=mail",
    "https://x.com/p#?utm_source=nope",
    "https://x.com/%2F..%2F?a=1&&&=&utm_term=",
    "a+b%20c%2Bd%",
]

TIMES = [
    "2015-07-10T23:00:00Z", "2015-07-10T23:00:00", "2015-07-10t23:00:00z",
    "2015-07-10T23:00:00.500-07:30", "2015-07-10T23:00:00,250Z", "2015-07-10T23:00:00+0200",
    "2015-07-10T23:00:00+02", "2018-09-05T23:05:25.862826855Z", "2016-02-29T00:00:00Z",
    "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999-23:59", "1969-12-31T23:59:59.999Z",
    "2015-02-29T00:00:00Z", "2015-07-10T24:00:00Z", "2015-07-10T23:00:00.Z",
    "2020-05-09 23:54:49.209808489 +0000 UTC", "2015-07-10T23:00:00.000000000000000001Z",
    "2100-01-01T00:00:00.000Z",
]


def url_corpus():
    d = reset("url")
    for i, u in enumerate(URLS):
        put(d, "url%02d" % i, u)


def time_corpus():
    d = reset("time")
    for i, t in enumerate(TIMES):
        put(d, "ts%02d" % i, t)
    put(d, "int64_min", struct.pack("<q", -2 ** 63) + b"2015-07-10T23:00:00Z")
    put(d, "int64_max", struct.pack("<q", 2 ** 63 - 1) + b"2015-07-10T23:00:00Z")


CONFIGS = [
    "",
    "{}",
    "- a list\n",
    "kafka:\n  bootstrap_servers: a:1,b:2\n  properties: {linger.ms: 5, sasl.password: s}\n"
    "redis: {host: h, port: 6380, password: p, db: 2, prefix: 'x:'}\n",
    "base: &b {points: 5, kind: page_view}\nmodel:\n  engagement:\n"
    "    - <<: *b\n      name: a\n    - {<<: *b, name: b, cap: {points: 10, per: 1d}}\n",
    "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nmodel: {version: *c}\n",
    "model:\n  decay: {half_life: 1w 2d 3h 4m 5s 6ms}\n  grades: {L1: 80, L2: 40}\n",
    "model:\n  fit:\n    - name: big\n      traits: {employees: {min: 1000, max: 1e9}, "
    "region: [EU, US]}\n      points: 10\n",
    "model:\n  stages:\n    mql: {enter: 60, exit: 45, require_traits: [company, email]}\n"
    "  recycle: {mode: cool_down, period: 30d}\n",
    "redis:\n  port: 6379\n  port: 6380\n",
    "!!map {? a : b}\n",
    "%YAML 1.1\n---\nmodel: {}\n...\n---\nsecond: doc\n",
    "model:\n  engagement:\n    - name: \"\\u00e9\\t\"\n      kind: [page_view, utm_click]\n"
    "      path_prefix: [/a, /b]\n      utm: {source: [li], medium: cpc}\n"
    "      properties: {form_id: [demo], seats: {min: 1}}\n      points: 1.5\n",
]


def c_unescape(s):
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape")


def config_corpus():
    d = reset("config")
    shutil.copy(os.path.join(ROOT, "deploy", "leadflow.yaml"), os.path.join(d, "deploy.yaml"))
    shutil.copy(os.path.join(ROOT, "tests", "unit", "data", "three_mistakes.yaml"),
                os.path.join(d, "three_mistakes.yaml"))
    for i, c in enumerate(CONFIGS):
        put(d, "hand%02d.yaml" % i, c)
    # The one-line YAML snippets of the unit tests: {"model:\n ...", LINE, "message"}.
    with open(os.path.join(ROOT, "tests", "unit", "test_config.c")) as f:
        src = f.read()
    seen = set()
    for m in re.finditer(r'\{"((?:[^"\\]|\\.)*)",\s*\d+,', src):
        text = c_unescape(m.group(1))
        if ":" in text and text not in seen:
            seen.add(text)
            put(d, "unit%03d.yaml" % len(seen), text)


def main():
    json_corpus()
    msgpack_corpus()
    url_corpus()
    time_corpus()
    config_corpus()
    for h in ("json", "msgpack", "url", "time", "config"):
        d = os.path.join(HERE, "corpus", h)
        print("%-8s %3d seeds" % (h, len(os.listdir(d))))


if __name__ == "__main__":
    main()
