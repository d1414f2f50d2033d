"""The documentation against the repository and the code, with no server and no binary:

- no document (README.md, docs/, deploy/, bench/*.md) points outside the repository (the old
  workspace spec `../shared/CONTRACT.md`, "CONTRACT §N") or cites an issue number a reader of
  a clone cannot follow;
- every relative markdown link in README.md, docs/*.md and bench/*.md names a file of the
  repository, and an `#anchor` into a markdown file names one of its headings;
- docs/contract.md names what the code names, both ways where the code has a closed list:
  the Redis keys (src/core/keys.c and every other place a key is built from the prefix), the
  lead hash's readable fields (src/core/lead_codec.c), the heartbeat fields
  (src/pipeline/heartbeat.c), the dead-letter reasons (src/core/event.c) and headers
  (src/pipeline/kafka.c), the transition fields (both encoders of src/core/transition.c),
  the stages and transition reasons (src/core/stage.c); and every settings key it names is in
  src/core/config_settings.c, every model key in src/core/config_model.c.

A name that differs between the code and the contract fails here. Last line "N passed,
N failed". Run: LF_BIN=build/leadflow python3 tests/offline/test_docs.py (LF_BIN is not
used: nothing is run)."""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # the runner; starts nothing
import lfharness as H  # noqa: E402
from lfharness import check  # noqa: E402

CONTRACT = os.path.join("docs", "contract.md")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def rel_files(patterns):
    out = []
    for pat in patterns:
        out += glob.glob(os.path.join(ROOT, pat), recursive=True)
    return sorted(os.path.relpath(p, ROOT) for p in set(out) if os.path.isfile(p))


def documents():
    """What a user reads: the README, docs/, deploy/, the bench's markdown."""
    return rel_files(["README.md", "docs/**/*", "deploy/**/*", "bench/*.md"])


def markdown_files():
    return rel_files(["README.md", "docs/**/*.md", "bench/*.md"])


def sources(*patterns):
    return rel_files(["src/" + p for p in patterns])


def fmt(names):
    return ", ".join(sorted(names)) or "none"


def check_same(doc, code, what):
    """The contract's names and the code's, both ways."""
    check(not (doc - code) and not (code - doc),
          "%s: in docs/contract.md but not in the code: %s; in the code but not in "
          "docs/contract.md: %s" % (what, fmt(doc - code), fmt(code - doc)))


# ---- markdown ---------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~)")


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def without_code_spans(line):
    return re.sub(r"(`+)(.+?)\1", "CODE", line)


def slug(heading):
    """The anchor GitHub gives a heading: lower case, code and link markup dropped,
    punctuation but '-' and '_' removed, spaces as '-'."""
    t = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    t = t.replace("`", "").lower()
    t = re.sub(r"[^\w\- ]", "", t)
    return t.replace(" ", "-")


def anchors(text):
    seen, out = {}, set()
    for _, line in prose_lines(text):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        s = slug(m.group(1))
        k = seen.get(s, 0)
        out.add(s if k == 0 else "%s-%d" % (s, k))
        seen[s] = k + 1
    return out


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(text):
    for n, line in prose_lines(text):
        for m in LINK.finditer(without_code_spans(line)):
            yield n, m.group(1)


def section(text, title):
    """The text under the heading `title` (any level) up to the next heading of the same or
    a higher level."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if m and m.group(2) == title:
            level = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                h = re.match(r"^(#{1,6})\s", nxt)
                if h and len(h.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise H.TestFailure("docs/contract.md has no heading %r" % title)


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def table(text, first_header):
    """The rows (lists of cells) of the markdown table in `text` whose header's first cell is
    `first_header`."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|") and cells(line)[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            return rows
    raise H.TestFailure("docs/contract.md: no table whose first column is %r" % first_header)


def ticked(cell):
    return re.findall(r"`([^`]+)`", cell)


def first_ticked(rows):
    out = set()
    for r in rows:
        t = ticked(r[0])
        check(t, "docs/contract.md: a table row with no `name` first: %r" % r)
        out.add(t[0])
    return out


# ---- nothing outside the repository ------------------------------------------------------

OUTSIDE = [
    (re.compile(r"\.\./shared"), "a path into the workspace outside the repository"),
    (re.compile(r"CONTRACT(\.md|\s*§|\s+section)"), "the old spec outside the repository "
     "(docs/contract.md is the contract)"),
    (re.compile(r"/work/(shared|main|wt)\b"), "an absolute path of the workspace"),
    (re.compile(r"\bissues?\s*\(?#?\d+", re.I), "an issue number as a reference"),
]


def test_nothing_points_outside_the_repository():
    docs = documents()
    check(CONTRACT in docs and "README.md" in docs, "the documents: %r" % docs)
    bad = []
    for rel in docs:
        try:
            text = read(rel)
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.split("\n"), 1):
            for rx, why in OUTSIDE:
                if rx.search(line):
                    bad.append("%s:%d: %s: %s" % (rel, n, why, line.strip()[:100]))
    check(not bad, "references a clone cannot follow:\n  " + "\n  ".join(bad))


def test_the_readme_links_the_contract():
    targets = [t for _, t in links(read("README.md"))]
    check("docs/contract.md" in targets, "README.md links docs/contract.md: %r" % targets)


def test_relative_links_resolve():
    bad, seen = [], 0
    for rel in markdown_files():
        text = read(rel)
        here = os.path.dirname(os.path.join(ROOT, rel))
        for n, target in links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
                continue
            seen += 1
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(ROOT, rel)
            where = "%s:%d: %s" % (rel, n, target)
            if not (full + os.sep).startswith(ROOT + os.sep):
                bad.append(where + ": outside the repository")
            elif not os.path.exists(full):
                bad.append(where + ": no such file")
            elif anchor and full.endswith(".md"):
                with open(full, encoding="utf-8") as f:
                    if anchor not in anchors(f.read()):
                        bad.append(where + ": no heading with that anchor")
    check(not bad, "links that do not resolve:\n  " + "\n  ".join(bad))
    check(seen >= 10, "relative links checked: %d (the contract's own among them)" % seen)


# ---- the contract against the code -------------------------------------------------------


def key_pattern(s):
    """A key as a pattern: a printf conversion or a <placeholder> is '*'."""
    s = re.sub(r"%[-0-9.]*l{0,2}[sdub]", "*", s)
    s = re.sub(r"<[^>]*>", "*", s)
    return re.sub(r"\*(\.\*)+", "*", s)


def code_keys():
    """Every key leadflow builds from the prefix, as a pattern without the prefix: the
    builders of keys.c, the control keys named at lf_key_control's callers, and the keys
    formatted in place (`snprintf(k, n, "%s<key>"...)`, `redisCommand(c, "CMD %s<key>"...)`).
    Names that end in ':' are prefixes of a whole state (a replay's, a challenger's)."""
    keys, prefixes = set(), set()
    for rel in sources("**/*.c"):
        text = read(rel)
        for m in re.finditer(r"lf_key_tagged\([^;]*?\"(\w+:)\"", text):
            keys.add(m.group(1) + "{*}")
        for m in re.finditer(r"lf_key_control\([^;]*?\"(\w+)\"\s*\)", text):
            keys.add("ctl:" + m.group(1))
        found = [m.group(1) for m in re.finditer(
            r"snprintf\(\s*[^,;]+,\s*[^,;]+,\s*\"%s([a-z][^\"\s]*)\"", text)]
        found += [m.group(1) for m in re.finditer(
            r"redis(?:Append)?Command\(\s*[^,;]+,\s*\"[A-Z]+ %s([a-z][^\"\s]*)", text)]
        for k in found:
            k = key_pattern(k)
            if k == "ctl:*":
                continue  # lf_key_control itself: its names are at its callers
            (prefixes if k.endswith(":") else keys).add(k)
    return keys, prefixes


def test_redis_keys():
    text = read(CONTRACT)
    rows = table(section(text, "Redis keys"), "key")
    doc = set()
    for k in first_ticked(rows):
        check(k.startswith("lf:"), "a key of the table without the prefix: %r" % k)
        doc.add(key_pattern(k[3:]))
    keys, prefixes = code_keys()
    check(len(keys) >= 15, "keys found in the code: %s" % fmt(keys))
    check_same(doc, keys, "Redis keys")
    missing = [p for p in prefixes if "`lf:%s`" % p not in text]
    check(not missing, "state prefixes the code builds, not named in docs/contract.md: %s"
          % fmt("lf:" + p for p in missing))


def test_lead_hash_fields():
    doc = first_ticked(table(section(read(CONTRACT), "Redis keys"), "field"))
    code = set(re.findall(r"lf_put\w*\(out,\s*\"(\w+)\"", read("src/core/lead_codec.c")))
    check(len(code) >= 5, "readable fields found in lead_codec.c: %s" % fmt(code))
    check_same(doc, code, "the lead hash's readable fields")


def test_heartbeat_fields():
    para = [p for p in section(read(CONTRACT), "Redis keys").split("\n\n")
            if p.startswith("**The heartbeat fields**")]
    check(len(para) == 1, "docs/contract.md: one paragraph on the heartbeat fields")
    doc = set(ticked(re.sub(r"\([^()]*\)", "", para[0])))
    hb = read("src/pipeline/heartbeat.c")
    code = set(re.findall(r"LF_HB_(?:STR|INT)\(\"(\w+)\"", hb))
    code |= set(re.findall(r"lf_argv_adds\(f,\s*\"(\w+)\"\)", hb))
    check(len(code) >= 20, "heartbeat fields found in heartbeat.c: %s" % fmt(code))
    check_same(doc, code, "heartbeat fields")


def test_dead_letter_reasons_and_headers():
    dl = section(read(CONTRACT), "Dead letters")
    doc = first_ticked(table(dl, "reason"))
    code = set(re.findall(r"\[LF_BAD_\w+\]\s*=\s*\"(\w+)\"", read("src/core/event.c")))
    code.discard("none")
    check(len(code) >= 10, "reasons found in event.c: %s" % fmt(code))
    check_same(doc, code, "dead-letter reasons")
    doc = first_ticked(table(dl, "header"))
    code = set(re.findall(r"rd_kafka_header_add\(h,\s*\"([\w.]+)\"",
                          read("src/pipeline/kafka.c")))
    check_same(doc, code, "dead-letter headers")


def test_transition_fields():
    text = read(CONTRACT)
    out = section(text, "Transitions out")
    doc = first_ticked(table(out, "field"))
    src = read("src/core/transition.c")
    as_json = set(re.findall(r"cJSON_Add\w+ToObject\(o,\s*\"(\w+)\"", src))
    as_msgpack = set(re.findall(r"lf_pack_str\(&?pk,\s*\"(\w+)\"\)", src))
    check(len(as_json) >= 13, "JSON fields found in transition.c: %s" % fmt(as_json))
    check_same(as_msgpack, as_json, "transition fields (here: MessagePack vs JSON encoder)")
    check_same(doc, as_json, "transition fields")
    headers = set(re.findall(r"RD_KAFKA_V_HEADER\(\"([\w.]+)\"", read("src/pipeline/publish.c")))
    check(headers and all("`%s`" % h in out for h in headers),
          "the transitions' headers %s named under Transitions out" % fmt(headers))


def c_names(src, array):
    m = re.search(array + r"\[[^\]]*\]\s*=\s*\{(.*?)\};", src, re.S)
    check(m, "no array %s" % array)
    return set(re.findall(r"\"(\w+)\"", m.group(1)))


def test_stages_and_reasons():
    rows = table(section(read(CONTRACT), "Stages"), "from")
    src = read("src/core/stage.c")
    stages, reasons = c_names(src, "lf_stage_names"), c_names(src, "lf_reason_names")
    doc_stages = set()
    for r in rows:
        doc_stages |= set(ticked(r[0])) | set(ticked(r[1]))
    check_same(doc_stages, stages, "stages (the from and to columns of the Stages table)")
    doc_reasons = set()
    for r in rows:
        doc_reasons |= set(ticked(r[2]))
    check_same(doc_reasons, reasons, "transition reasons (the Stages table)")
    listed = [r for r in table(section(read(CONTRACT), "Transitions out"), "field")
              if ticked(r[0])[0] == "reason"]
    check_same(set(ticked(listed[0][2])), reasons, "transition reasons (the reason field)")


SETTING = re.compile(r"^(version|kafka|redis|processing|limits|log|metrics|challenger)"
                     r"(\.[A-Za-z0-9_]+)+$")


def test_settings_and_model_keys():
    text = read(CONTRACT)
    names = set(re.findall(r"`([^`\s]+)`", text))
    settings = set(re.findall(r"\{\"([a-z_.]+)\",\s*LF_SET_", read("src/core/config_settings.c")))
    check(len(settings) >= 30, "settings found in config_settings.c: %d" % len(settings))
    used = {n for n in names if SETTING.match(n)}
    check(len(used) >= 10, "settings named in docs/contract.md: %s" % fmt(used))
    check(not (used - settings), "settings named in docs/contract.md that "
          "src/core/config_settings.c does not have: %s" % fmt(used - settings))
    model = read("src/core/config_model.c")
    top = c_names(model, "lf_model_keys")
    below = set()
    for arr in ("lf_decay_keys", "lf_grade_keys", "lf_mql_keys", "lf_bots_keys", "lf_eng_keys",
                "lf_fit_keys", "lf_cap_keys", "lf_recycle_keys", "lf_recycle_kind_names"):
        below |= c_names(model, arr)
    below |= c_names(read("src/core/stage.c"), "lf_stage_names")  # model.stages.<stage>
    bad = []
    for n in sorted(x for x in names if x.startswith("model.")):
        parts = n.split(".")[1:]
        if parts[0] not in top or any(p not in below for p in parts[1:]):
            bad.append(n)
    check(not bad, "model keys named in docs/contract.md that src/core/config_model.c does "
          "not read: %s" % fmt(bad))


if __name__ == "__main__":
    H.main([test_nothing_points_outside_the_repository, test_the_readme_links_the_contract,
            test_relative_links_resolve, test_redis_keys, test_lead_hash_fields,
            test_heartbeat_fields, test_dead_letter_reasons_and_headers, test_transition_fields,
            test_stages_and_reasons, test_settings_and_model_keys])
