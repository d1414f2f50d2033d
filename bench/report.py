#!/usr/bin/python3
"""Turns bench/results/<ts>/results.json into report.md and chart.png (matplotlib, from the
Debian package python3-matplotlib; without it the chart is skipped with a note), and prints
the main table on stdout. Usage: report.py RESULTS_DIR"""
import json
import os
import re
import sys



def _processing_settings():
    """batch_max_events / batch_max_ms as deploy/leadflow.yaml has them (what the run used)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "leadflow.yaml")
    try:
        text = open(path).read()
    except OSError:
        return "(unreadable)"
    out = []
    for k in ("batch_max_events", "batch_max_ms", "cache_leads"):
        m = re.search(r"(?m)^\s+%s:\s*(\S+)" % k, text)
        out.append("%s %s" % (k, m.group(1) if m else "(default)"))
    return ", ".join(out)

def f(v, nd=0, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return ("{:,.%df}" % nd).format(v) + unit
    return str(v)



# ---- figures shared with the driver (pure functions: bench/driver.py imports them, the offline
# test tests/offline/test_bench_report.py checks them on fixtures) ----------------------------

def trial_outcome(samples, rate, warmup_s, seconds, max_lag_s=1.0, growth=0.05):
    """Whether the live path kept up in one search trial. samples: [t, produced, next] with t
    in seconds since the first record reached the broker, produced = the topic's high
    watermarks summed, next = the progress hash's next offsets summed. Only the samples of the
    measured window (after the warm-up, up to its end) count. Bounded = the lag at the end is
    below max_lag_s worth of events at the offered rate, and over the window's second half it
    does not grow faster than growth x rate (events/s, least squares) unless it stays under
    0.1 s worth (a lag that small is batching noise, not falling behind)."""
    end = warmup_s + seconds
    win = [s for s in samples if warmup_s <= s[0] <= end + 0.25]
    out = {"samples": len(win)}
    if len(win) < 4 or rate <= 0:
        out.update(bounded=False, reason="too few lag samples in the measured window")
        return out
    lags = [max(0, p - n) for _, p, n in win]
    out["end_lag"] = lags[-1]
    out["end_lag_s"] = round(lags[-1] / rate, 3)
    out["max_lag_s"] = round(max(lags) / rate, 3)
    half = [(s[0], l) for s, l in zip(win, lags) if s[0] >= warmup_s + seconds / 2.0]
    slope = 0.0
    if len(half) >= 3:
        mt = sum(t for t, _ in half) / len(half)
        ml = sum(l for _, l in half) / len(half)
        den = sum((t - mt) ** 2 for t, _ in half)
        slope = sum((t - mt) * (l - ml) for t, l in half) / den if den > 0 else 0.0
    out["lag_slope_eps"] = round(slope, 1)
    out["lag_growth_of_rate"] = round(slope / rate, 3)
    growing = slope > growth * rate and lags[-1] > 0.1 * rate
    if lags[-1] >= max_lag_s * rate:
        out.update(bounded=False, reason="lag %.2f s worth at the end (limit %.1f s)"
                   % (lags[-1] / rate, max_lag_s))
    elif growing:
        out.update(bounded=False, reason="lag growing by %.0f %% of the rate over the second half"
                   % (100.0 * slope / rate))
    else:
        out.update(bounded=True, reason="lag %.2f s worth at the end, growth %.0f %% of the rate"
                   % (lags[-1] / rate, 100.0 * slope / rate))
    return out


def attribute_memory(m):
    """Splits the used_memory delta of a run between known leads, anonymous visitors and a fixed
    part. m = {"delta": used_memory after - empty, "nonkey_delta": the change of what MEMORY
    STATS counts outside the keyspace (overhead.total less the keyspace's hash tables),
    "ht_expires": the expires dict's bytes (MEMORY STATS), "expires": keys with a TTL (INFO
    keyspace), "keys": keys in all (DBSIZE), "classes": {name: {"owner": "lead" | "visitor" |
    "fixed", "count": keys, "avg_bytes": MEMORY USAGE average of a sample or "bytes": the exact
    sum, "ttl_count": keys of the class with a TTL}}, "zsets": {name: {"bytes", "members",
    "visitor_members"}}}.
    Every key gets its MEMORY USAGE (key, value, dictEntry). A key with a TTL also gets its
    share of the expires dict (ht_expires / expires: entry + bucket, which MEMORY USAGE does not
    see). What is left of the delta (the keyspace dict's buckets, sampling error, allocator
    rounding) is spread equally over every key: it is a per-key cost, not one proportional to a
    value's size. A sorted set's bytes go to its members' owners, pro rata. So the known, the
    visitors' and the fixed part add up to the measured delta exactly."""
    cl, zs = m.get("classes", {}), m.get("zsets", {})
    keys = m.get("keys") or (sum(c["count"] for c in cl.values()) + len(zs))
    e = m["ht_expires"] / m["expires"] if m.get("expires") else 0.0
    est = sum(c["bytes"] if "bytes" in c else c["count"] * c.get("avg_bytes", 0)
              for c in cl.values()) + sum(z["bytes"] for z in zs.values())
    resid = m["delta"] - m.get("nonkey_delta", 0) - m.get("ht_expires", 0) - est
    r = resid / keys if keys else 0.0
    owners = {"lead": 0.0, "visitor": 0.0, "fixed": float(m.get("nonkey_delta", 0))}
    classes = {}
    for name, c in cl.items():
        mu = c["bytes"] if "bytes" in c else c["count"] * c.get("avg_bytes", 0)
        tot = mu + c["count"] * r + c.get("ttl_count", 0) * e
        owners[c["owner"]] += tot
        classes[name] = {"owner": c["owner"], "count": c["count"],
                         "avg_memory_usage": round(mu / c["count"], 1) if c["count"] else None,
                         "ttl_count": c.get("ttl_count", 0),
                         "avg_bytes_attributed": round(tot / c["count"], 1) if c["count"] else None,
                         "bytes": round(tot)}
    n_lead = sum(c["count"] for c in cl.values() if c.get("is_record") == "lead")
    n_vis = sum(c["count"] for c in cl.values() if c.get("is_record") == "visitor")
    index = {"lead": 0.0, "visitor": 0.0}
    zout = {}
    for name, z in zs.items():
        tot = z["bytes"] + r
        if not z["members"]:
            owners["fixed"] += tot
            zout[name] = {"lead_bytes": 0, "visitor_bytes": 0, "fixed_bytes": round(tot)}
            continue
        v = tot * z.get("visitor_members", 0) / z["members"]
        owners["visitor"] += v
        owners["lead"] += tot - v
        index["visitor"] += v
        index["lead"] += tot - v
        zout[name] = {"lead_bytes": round(tot - v), "visitor_bytes": round(v),
                      "bytes_per_member": round(tot / z["members"], 1)}
    return {
        "method": "MEMORY USAGE per key class (sampled) + expires-dict share per TTL key + the "
                  "rest of the used_memory delta spread equally per key; sorted sets pro rata "
                  "to their members' owners",
        "known_leads": n_lead, "visitors": n_vis,
        "bytes_known_leads": round(owners["lead"]), "bytes_visitors": round(owners["visitor"]),
        "bytes_fixed": round(owners["fixed"]),
        "bytes_per_lead": round(owners["lead"] / n_lead, 1) if n_lead else None,
        "bytes_per_visitor": round(owners["visitor"] / n_vis, 1) if n_vis else None,
        "index_bytes_per_lead": round(index["lead"] / n_lead, 1) if n_lead else None,
        "index_bytes_per_visitor": round(index["visitor"] / n_vis, 1) if n_vis else None,
        "per_key_residual_bytes": round(r, 1), "per_ttl_key_expires_bytes": round(e, 1),
        "memory_usage_scale": round((m["delta"] - m.get("nonkey_delta", 0)) / est, 3)
        if est else None,
        "classes": classes, "zsets": zout,
    }


SIZING_TARGETS = ((1_000_000, 10_000_000), (10_000_000, 100_000_000))


def sizing(att, top=None, targets=SIZING_TARGETS):
    """Redis size for L known leads + V visitors: fixed + L x per-lead + V x per-visitor, from
    attribute_memory's figures. top = {"members", "lead_bytes"} of lf:top: when it holds fewer
    members than there are known leads it is capped (top N), a fixed cost, not a per-lead one."""
    nl, nv = att.get("known_leads") or 0, att.get("visitors") or 0
    if not nl:
        return None
    lead_b = att["bytes_known_leads"]
    fixed = att["bytes_fixed"]
    capped = bool(top and top.get("members") and top["members"] < nl)
    if capped:
        lead_b -= top["lead_bytes"]
        fixed += top["lead_bytes"]
    per_lead = lead_b / nl
    per_vis = att["bytes_visitors"] / nv if nv else 0.0
    rows = []
    for L, V in targets:
        tot = fixed + L * per_lead + V * per_vis
        rows.append({"leads": L, "visitors": V, "bytes": round(tot),
                     "gib": round(tot / 2 ** 30, 2), "leads_gib": round(L * per_lead / 2 ** 30, 2),
                     "visitors_gib": round(V * per_vis / 2 ** 30, 2)})
    md = ["| known leads | anonymous visitors | Redis memory | of which leads | of which visitors |",
          "| ---: | ---: | ---: | ---: | ---: |"]
    for x in rows:
        md.append("| %s | %s | **%.2f GiB** | %.2f GiB | %.2f GiB |" % (
            "{:,}".format(x["leads"]), "{:,}".format(x["visitors"]), x["gib"], x["leads_gib"],
            x["visitors_gib"]))
    return {"bytes_per_lead": round(per_lead, 1), "bytes_per_visitor": round(per_vis, 1),
            "fixed_bytes": round(fixed), "top_capped": capped,
            "top_members": (top or {}).get("members"),
            "note": "fixed + leads x bytes per lead + visitors x bytes per visitor; %s"
                    % ("lf:top is capped (%s members): counted in the fixed part"
                       % "{:,}".format(top["members"]) if capped else
                       "lf:top holds every known lead: counted per lead"),
            "rows": rows, "table_md": "\n".join(md)}


def latency_at(R, frac):
    """The latency entry whose fraction is nearest frac (None without one)."""
    L = R.get("latency") or []
    return min(L, key=lambda x: abs(x.get("fraction", 0) - frac)) if L else None


def live_redis_us(R):
    """Redis CPU µs per event of the live path: the latency run at 50 % of the sustained rate."""
    x = latency_at(R, 0.5)
    if not x:
        return None
    return x.get("resources", {}).get("cpu_us_per_event", {}).get("redis-server")


def p99_ratio(R):
    """p99 at 50 % divided by the devbroker's own p99 at the same rate."""
    x = latency_at(R, 0.5)
    bo = (x or {}).get("broker_only") or {}
    if not x or not x.get("p99_ms") or not bo.get("p99_ms"):
        return None
    return round(x["p99_ms"] / bo["p99_ms"], 2)


def goals(R):
    """Issue 16's goal table: [{"measure", "goal", "value", "met"}] (met None: not measured)."""
    P, A = R.get("phases", {}), (R.get("memory") or {}).get("attribution") or {}
    lf, lfw, py = P.get("leadflow"), P.get("leadflow_workers"), P.get("python")
    pre = (lf or {}).get("resources", {}).get("cpu_us_per_event", {}).get("redis-server")
    ratio_w = (lfw["eps"] / py["eps"] if lfw and py and py.get("eps") and lfw.get("eps")
               else None)
    x50 = latency_at(R, 0.5)
    rows = [
        ("Redis bytes per known lead (hash, aliases, index entries)", "≤ 400",
         A.get("bytes_per_lead"), 400, "le", ""),
        ("Redis bytes per anonymous visitor", "≤ 180", A.get("bytes_per_visitor"), 180, "le", ""),
        ("Redis CPU µs per event, preloaded", "≤ 5", pre, 5, "le", ""),
        ("Redis CPU µs per event, live (at 50 % of the sustained rate)", "≤ 10", live_redis_us(R),
         10, "le", ""),
        ("leadflow --workers %s ÷ careful Python" % ((lfw or {}).get("workers") or 2), "≥ 10×",
         ratio_w, 10, "ge", "×"),
        ("p99 event-to-transition at %s ÷ devbroker's own p99"
         % ("%.0f %% of the sustained rate" % (100 * x50["fraction"]) if x50 else "50 %"),
         "≤ 3×", p99_ratio(R), 3, "le", "×"),
    ]
    out = []
    for measure, goal, v, lim, op, unit in rows:
        met = None if v is None else (v <= lim if op == "le" else v >= lim)
        out.append({"measure": measure, "goal": goal,
                    "value": round(v, 2) if isinstance(v, float) else v, "unit": unit,
                    "met": met})
    return out



def memory_section(M):
    """Redis memory: known leads and visitors apart, each key class, the sorted sets, dedup,
    and the sizing table."""
    out = []
    w = out.append
    A = M.get("attribution") or {}
    w("## Redis memory (after the leadflow run)")
    w("")
    w("Layout seen: %s. `used_memory` %s → %s bytes (delta %s). Split between known leads and "
      "anonymous visitors as bench/README.md says: each key's MEMORY USAGE (sampled per key "
      "class), plus the expires dict's share for a key with a TTL (%s bytes per key), plus "
      "what the delta has beyond those, spread equally per key (%s bytes per key: the keyspace "
      "dict's buckets, allocator rounding, sampling error); a sorted set's bytes go to its "
      "members' owners pro rata."
      % (M.get("layout", "?"), f(M.get("used_memory_empty")), f(M.get("used_memory_after")),
         f((M.get("used_memory_after") or 0) - (M.get("used_memory_empty") or 0)),
         f(A.get("per_ttl_key_expires_bytes"), 1), f(A.get("per_key_residual_bytes"), 1)))
    w("")
    w("| measure | value |")
    w("| --- | ---: |")
    if A:
        w("| **bytes per known lead** (its hash, its aliases, its index entries; %s known "
          "leads) | **%s** |" % (f(A.get("known_leads")), f(A.get("bytes_per_lead"), 1)))
        w("| **bytes per anonymous visitor** (its record%s; %s visitors) | **%s** |"
          % (", its index entries" if A.get("index_bytes_per_visitor") else "",
             f(A.get("visitors")), f(A.get("bytes_per_visitor"), 1)))
        w("| of which index entries: per known lead / per visitor | %s / %s |"
          % (f(A.get("index_bytes_per_lead"), 1), f(A.get("index_bytes_per_visitor"), 1)))
        w("| fixed part (progress, outbox, ops, funnel, ... and memory outside the keyspace) "
          "| %s bytes |" % f(A.get("bytes_fixed")))
    w("| used_memory delta / `lf:lead:*` hashes (the old single figure) | %s |"
      % f(M.get("bytes_per_lead_used_memory"), 1))
    w("| index (zset) members per known lead | %s |" % f(M.get("index_members_per_lead"), 2))
    dd = M.get("dedup")
    if dd:  # the remembered messageIds' fields, "dw", "dw2", ... (dedup by time window)
        w("| dedup (hash fields `dw*`, where the layout keeps them apart): %s ids per lead on average, %s of %s sampled "
          "leads have some; their field names + values | %s bytes |"
          % (f(dd.get("avg_entries"), 2), f(dd.get("leads_with_dedup")),
             f(dd.get("sampled")), f(dd.get("avg_field_bytes"), 1)))
        w("| dedup bytes per lead: lead hash MEMORY USAGE with − without those fields "
          "(%s → %s, a scratch copy) | %s |"
          % (f(dd.get("avg_memory_usage_with"), 1), f(dd.get("avg_memory_usage_without"), 1),
             f(dd.get("bytes_per_lead"), 1)))
    w("")
    cls = A.get("classes") or {}
    S = M.get("samples") or {}
    if cls:
        w("| key class | owner | keys | with a TTL | MEMORY USAGE avg | bytes per key attributed "
          "| sampled, encoding, fields |")
        w("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for name, c in cls.items():
            s = S.get(name) or {}
            extra = ", ".join(x for x in (
                "%s sampled" % s["sampled"] if s.get("sampled") else "",
                s.get("encoding", ""),
                "%s fields" % s["avg_fields"] if s.get("avg_fields") else "") if x)
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, c["owner"], f(c["count"]), f(c.get("ttl_count")),
                f(c.get("avg_memory_usage"), 1), f(c.get("avg_bytes_attributed"), 1),
                extra or "every key"))
        w("")
    Z = M.get("zsets") or {}
    if Z:
        za = A.get("zsets") or {}
        w("| sorted set | members | of which visitors | bytes | bytes/member | encoding |")
        w("| --- | ---: | ---: | ---: | ---: | --- |")
        for k, z in Z.items():
            w("| `%s` | %s | %s | %s | %s | %s |" % (
                k, f(z["members"]), f(z.get("visitor_members")), f(z["bytes"]),
                f((za.get(k) or {}).get("bytes_per_member", z.get("bytes_per_member")), 1),
                z.get("encoding")))
        w("")
    sz = M.get("sizing")
    if sz:
        w("### Sizing")
        w("")
        w("Redis memory for a given population, from this run: %s + leads × %s + visitors × %s "
          "bytes (%s). The per-member cost of a large sorted set and the per-key cost of the "
          "keyspace dict change little past ~100 k members; the dict's buckets double at each "
          "power of two, so allow ±10 %%."
          % (f(sz["fixed_bytes"]), f(sz["bytes_per_lead"], 1), f(sz["bytes_per_visitor"], 1),
             sz["note"]))
        w("")
        out.extend(sz["table_md"].split("\n"))
        w("")
    return out


def live_search_section(S, R):
    out = []
    w = out.append
    w("## The rate the live path sustains")
    w("")
    if S.get("skipped"):
        w("Not searched (BENCH_LIVE_SEARCH_S=0): the latency below is at fractions of the "
          "preloaded rate.")
        w("")
        return out
    w("A fresh topic, `bench/latency_probe.c` producing at a fixed rate, a fresh `leadflow run` "
      "on the warm Redis, per trial: %s s of warm-up then %s s measured. Bounded = at the end "
      "the lag (the topic's high watermarks − the progress hash's next offsets) is below %s s "
      "worth of events and over the second half it grows by less than %.0f %% of the rate "
      "(or stays under 0.1 s worth). Search: %s s budget, %s s used."
      % (f(S.get("warmup_s"), 0), f(S.get("trial_s"), 0), f(S.get("max_lag_s"), 1),
         100 * (S.get("growth_limit") or 0), f(S.get("budget_s"), 0), f(S.get("seconds"), 0)))
    w("")
    w("| trial | offered events/s | achieved | lag at end (s worth) | max lag (s worth) | lag "
      "growth / rate | outcome | Redis µs/event | leadflow µs/event | other procs (cores) |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for t in S.get("trials", []):
        cu = (t.get("resources") or {}).get("cpu_us_per_event", {})
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t.get("trial"), f(t.get("rate")), f(t.get("achieved_rate")), f(t.get("end_lag_s"), 2),
            f(t.get("max_lag_s"), 2), f(t.get("lag_growth_of_rate"), 3),
            ("**bounded**" if t.get("bounded") else "not bounded") + ": " + t.get("reason", ""),
            f(cu.get("redis-server"), 1), f(cu.get("leadflow"), 1),
            f((t.get("resources") or {}).get("other_processes_cores"), 2)))
    w("")
    br = S.get("bracket") or [None, None]
    w("**live_sustained_eps = %s** events/s (highest bounded rate; lowest unbounded: %s; %s)."
      % (f(S.get("live_sustained_eps")), f(br[1]),
         "converged" if S.get("converged") else "the budget ended the search first"))
    w("")
    return out


def goal_section(R):
    G = goals(R)
    out = ["## Goal table (issue 16)", "",
           "| measure | goal | this run | |", "| --- | ---: | ---: | --- |"]
    for g in G:
        v = g["value"]
        out.append("| %s | %s | %s | %s |" % (
            g["measure"], g["goal"],
            "n/a" if v is None else f(v, 2 if g["unit"] else 1) + g["unit"],
            "not measured" if g["met"] is None else ("**met**" if g["met"] else "not met")))
    out.append("")
    return out

def main():
    d = sys.argv[1]
    with open(os.path.join(d, "results.json")) as fh:
        R = json.load(fh)
    C = R["config"]
    P = R.get("phases", {})
    co, py, lf = P.get("consume_only"), P.get("python"), P.get("leadflow")
    lfw = P.get("leadflow_workers")
    M = R.get("memory")
    L = R.get("latency", [])
    pre = R.get("preload", {})

    def eps(x):
        return x.get("eps") if x else None

    def cpu(x, name):
        return x["resources"]["cpu_us_per_event"].get(name) if x else None

    def cores(x, name):
        return x["resources"]["cores_used"].get(name) if x else None

    out = []
    w = out.append
    w("# leadflow benchmark — %s" % C.get("started", "?"))
    w("")
    w("One `make bench` run on one machine: every figure below was measured in the same run, on "
      "the same preloaded topic. This is a shared, noisy 2-core VM (load average %s at the "
      "start, %s at the end; the `other procs` column is CPU used by processes that are not "
      "part of the measurement): compare the ratios, not the absolute numbers across runs."
      % (" ".join(C.get("loadavg_start", [])), " ".join(C.get("loadavg_end", []))))
    w("")
    w("## Throughput")
    w("")
    w("| what | events | seconds | events/s | CPU µs/event: own process | redis-server | devbroker | other procs (cores) |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("consume + decode only (C, `bench/consume_only.c`)", co, "consume_only"),
            ("Python careful consumer (`bench/peers/python_baseline.py`)", py, "python"),
            ("**leadflow run** (default rules, every feature on)", lf, "leadflow")]
    if lfw:
        rows.append(("**leadflow run --workers %d** (one process per core, same rules)"
                     % lfw.get("workers", 0), lfw, "leadflow"))
    for label, x, name in rows:
        if not x:
            w("| %s | not run | | | | | | |" % label)
            continue
        note = "" if x.get("complete", True) else " (time-boxed)"
        w("| %s | %s%s | %s | **%s** | %s | %s | %s | %s |" % (
            label, f(x.get("events")), note, f(x.get("seconds"), 2), f(x.get("eps")),
            f(cpu(x, name), 1), f(cpu(x, "redis-server"), 1), f(cpu(x, "devbroker"), 1),
            f(x["resources"].get("other_processes_cores"), 2)))
    w("")
    ratios = {}
    if lf and co and eps(co):
        ratios["leadflow / consume-only"] = eps(lf) / eps(co)
    if lf and py and eps(py):
        ratios["leadflow / python"] = eps(lf) / eps(py)
    if lfw and co and eps(co):
        ratios["leadflow --workers / consume-only"] = eps(lfw) / eps(co)
    if lfw and py and eps(py):
        ratios["leadflow --workers / python"] = eps(lfw) / eps(py)
    if ratios:
        w("| ratio | value | goal (issue 5) |")
        w("| --- | ---: | ---: |")
        goals = {"leadflow / consume-only": "≥ 0.80", "leadflow / python": "≥ 10×",
                 "leadflow --workers / consume-only": "≥ 0.80",
                 "leadflow --workers / python": "≥ 10×"}
        for k, v in ratios.items():
            w("| %s | **%.2f%s** | %s |" % (k, v, "×" if "python" in k else "", goals[k]))
        w("")
    if lf:
        w("Cores busy during the leadflow run: leadflow %s, redis-server %s, devbroker %s "
          "(of 2)." % (f(cores(lf, "leadflow"), 2), f(cores(lf, "redis-server"), 2),
                       f(cores(lf, "devbroker"), 2)))
        t = lf.get("trace")
        if t:
            ph = t["phase_ms"]
            tot = sum(ph.values()) or 1
            w("")
            w("Where leadflow's batch time goes (LF_TRACE_BATCH=1; %d batches, %s events per "
              "batch on average; times are wall-clock inside the batch, excluding the time "
              "spent polling Kafka between batches):" % (t["batches"], f(t["avg_batch_events"], 0)))
            w("")
            w("| phase | ms | share |")
            w("| --- | ---: | ---: |")
            names = {"dead_letters_ms": "dead letters: produce",
                     "leads_ms": "leads: aliases + loads, apply, WATCH/MULTI/EXEC writes",
                     "publish_ms": "publish: wait for the previous batch's transitions, produce "
                                   "this batch's; wait for its dead letters",
                     "finish_ms": "finish: progress + the previous batch's outbox HDELs (one "
                                  "round trip), commit"}
            for k, v in ph.items():
                w("| %s | %s | %.0f %% |" % (names.get(k, k), f(v), 100.0 * v / tot))
            batch_s = tot / 1000.0
            if lf.get("seconds"):
                w("")
                w("Batch processing accounts for %.1f s of the %.1f s run; the rest is "
                  "collecting and decoding the next batch (what the consumer holds, at most "
                  "batch_max_ms)." % (batch_s, lf["seconds"]))
        cs = lf.get("redis_commandstats")
        if cs and lf.get("events"):
            tot_us = sum(v["usec"] for k, v in cs.items() if k != "exec")
            w("")
            w("What redis-server spent its command time on during the leadflow run (`INFO "
              "commandstats`, µs per event of the run; the commands inside MULTI/EXEC are "
              "counted on their own lines, EXEC itself only as the sum of them):")
            w("")
            w("| command | calls | µs per call | µs per event | share |")
            w("| --- | ---: | ---: | ---: | ---: |")
            for k, v in sorted(cs.items(), key=lambda kv: -kv[1]["usec"]):
                if k == "exec" or v["usec"] * 200 < tot_us:
                    continue
                w("| %s | %s | %.2f | %.2f | %.0f %% |" % (
                    k.upper(), f(v["calls"]), v["usec"] / max(1, v["calls"]),
                    v["usec"] / lf["events"], 100.0 * v["usec"] / max(1, tot_us)))
        if lf.get("errors"):
            w("")
            w("leadflow logged errors: `%s`" % "`, `".join(lf["errors"]))
    w("")
    if py:
        w("Python baseline: %s events applied, %s duplicates, %s dead-lettered, %s "
          "transitions in its %ss budget (%s)." % (
              f(py.get("applied")), f(py.get("duplicates")), f(py.get("dead_lettered")),
              f(py.get("transitions")), f(py.get("time_budget_s"), 0),
              "complete" if py.get("complete") else "stopped by the time budget; the rate is "
              "over what it processed"))
        w("")
    if M:
        out.extend(memory_section(M))
    S = R.get("live_search")
    if S:
        out.extend(live_search_section(S, R))
    if L:
        w("## Event-to-transition latency")
        w("")
        lb = R.get("latency_basis") or {}
        w("At %s of %s events/s: %s." % (
            ", ".join("%.0f %%" % (100 * x["fraction"]) for x in L), f(lb.get("rate")),
            "the rate the live path sustains (above)" if lb.get("basis") == "live_sustained_eps"
            else "leadflow's preloaded rate (no sustained-rate search in this run)"))
        w("")
        w("Produced live by `bench/latency_probe.c` (own producer: linger.ms=%s, zstd; it "
          "records the send time of every messageId) into a fresh topic while a fresh `leadflow "
          "run%s` (same rules, warm Redis) consumes it; the probe consumes the transitions topic "
          "(fetch.wait.max.ms=%s) and matches each transition's `trigger` to its send time. "
          "Latency = receive time − send time, so it includes the producer's linger, the "
          "broker, leadflow's batching (batch_max_ms) and its publish. The first %s s at the "
          "rate are a warm-up, not counted (clients connecting, the group forming); only the "
          "first receipt of each key counts. leadflow's live settings: %s."
          % (C.get("lat_linger_ms"),
             " --workers %d" % C["lat_workers"] if C.get("lat_workers", 1) > 1 else "",
             C.get("lat_probe_fetch_wait_ms"), C.get("lat_warmup_s"),
             ", ".join("%s" % p for p in (L[0].get("leadflow_live_settings") or {}).get(
                 "kafka.properties", [])) or "as deploy/leadflow.yaml"))
        w("")
        w("| target | events/s sent | samples | p50 ms | p99 ms | p99.9 ms | max ms | leadflow CPU µs/event | redis µs/event | mock broker alone: p50 / p99 / p99.9 ms | p99 ÷ broker's p99 |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for x in L:
            bo = x.get("broker_only") or {}
            w("| %.0f %% of %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s / %s / %s | %s |" % (
                100 * x["fraction"], "sustained" if x.get("rate_basis") == "live_sustained_eps"
                else "preloaded", f(x.get("achieved_rate")), f(x.get("samples")),
                f(x.get("p50_ms"), 1), f(x.get("p99_ms"), 1), f(x.get("p999_ms"), 1),
                f(x.get("max_ms"), 1), f(cpu(x, "leadflow"), 1), f(cpu(x, "redis-server"), 1),
                f(bo.get("p50_ms"), 1), f(bo.get("p99_ms"), 1), f(bo.get("p999_ms"), 1),
                f(x["p99_ms"] / bo["p99_ms"], 1) + "×" if bo.get("p99_ms") and x.get("p99_ms")
                else "n/a"))
        w("")
        w("`mock broker alone`: the same producer at the same rate into another fresh topic, "
          "consumed straight back by the probe (one Kafka hop, no leadflow): the floor one hop "
          "puts under the figures on its left (leadflow's path has two hops: events in, "
          "transitions out). The mock parks an empty Fetch for the whole fetch.wait.max.ms "
          "where a real broker answers when data arrives, hence the short waits configured.")
        w("")
        w("Goal (issue 16): p99 at 50 %% of the sustained rate ≤ 3× the devbroker's own p99 "
          "(this run: %s)." % (f(p99_ratio(R), 2) + "×" if p99_ratio(R) else "n/a"))
        for x in L:
            if x.get("leadflow_errors"):
                w("")
                w("leadflow errors at %.0f %%: `%s`" % (100 * x["fraction"],
                                                        "`, `".join(x["leadflow_errors"])))
        w("")
    pre_us = cpu(lf, "redis-server")
    live_us = live_redis_us(R)
    if pre_us is not None or live_us is not None:
        w("## Redis CPU per event")
        w("")
        w("redis-server utime+stime over the run / events: preloaded (the leadflow run above) "
          "**%s µs**; live (the latency run at 50 %% of the sustained rate, warm-up included) "
          "**%s µs**%s." % (f(pre_us, 1), f(live_us, 1), "; every live run: " + ", ".join(
              "%.0f %%: %s" % (100 * x["fraction"], f(cpu(x, "redis-server"), 1)) for x in L)
              if L else ""))
        w("")
    out.extend(goal_section(R))
    out.extend(goal_bounds(R))
    w("## Configuration")
    w("")
    g = pre.get("gen", {})
    w("| item | value |")
    w("| --- | --- |")
    items = [
        ("events preloaded", "%s (%s valid, %s duplicates, %s bad), msgpack, %s MB" % (
            f(pre.get("total_messages")), f(g.get("valid")), f(g.get("duplicates")),
            f(g.get("bad")), f((pre.get("bytes") or 0) / 1e6, 1))),
        ("lead population / distinct leads in the stream", "%s / %s (Zipf %s)" % (
            f(C["leads"]), f(g.get("leads")), "0.9")),
        ("partitions", "%s (largest partition %s messages; every low watermark 0 after the "
                       "preload)" % (C["partitions"], f(pre.get("max_partition_messages")))),
        ("preload producer", "leadflow gen: idempotent, zstd, linger.ms=%s, %s s" % (
            C["preload_linger_ms"], pre.get("seconds"))),
        ("leadflow batches", "deploy/leadflow.yaml: " + _processing_settings()),
        ("python baseline", "batches of 1000, one pipelined EVALSHA per event, budget %ss"
         % C["py_seconds"]),
        ("CPU", "%s, %s cores" % (C.get("cpu_model"), C.get("cores"))),
        ("kernel", C.get("kernel")),
        ("librdkafka / hiredis / msgpack-c", "%s / %s / %s" % (C.get("librdkafka"), C.get("hiredis"), C.get("msgpack_c"))),
        ("redis-server", C.get("redis_server")),
        ("python / confluent-kafka / redis-py / msgpack", "%s / %s / %s / %s" % (
            C.get("python"), C.get("confluent_kafka"), C.get("redis_py"), C.get("python_msgpack"))),
        ("leadflow", "%s (%s)" % (C.get("leadflow_git"), C.get("leadflow_binary"))),
    ]
    for k, v in items:
        w("| %s | %s |" % (k, v))
    w("")
    chart = os.path.join(d, "chart.png")
    note = make_chart(chart, rows, L)
    w("![throughput and latency](chart.png)" if note is None else "Chart: " + note)
    w("")
    with open(os.path.join(d, "report.md"), "w") as fh:
        fh.write("\n".join(out))
    # stdout: the tables
    text = "\n".join(out)
    end = text.find("## Configuration")
    print(text[:end].rstrip())
    print("\nreport: %s" % os.path.join(d, "report.md"))


def goal_bounds(R):
    """What the machine allows, from the run's own figures: a goal whose floor needs more
    cores than the machine has cannot be met by any leadflow on it, whatever its code."""
    C, P, M = R["config"], R.get("phases", {}), R.get("memory")
    co, py, lf = P.get("consume_only"), P.get("python"), P.get("leadflow")
    lfw = P.get("leadflow_workers") or lf
    ncores = C.get("cores") or os.cpu_count() or 1
    rows = []
    cs = (lf or {}).get("redis_commandstats") or {}
    writes = cs.get("restore", {}).get("calls", 0)
    leads = (M or {}).get("lead_keys") or 0
    if co and co.get("eps") and lf and lf.get("events") and writes and leads:
        rate = 0.8 * co["eps"]
        cu = co["resources"]["cpu_us_per_event"]
        in_cores = rate * (cu.get("consume_only", 0) + cu.get("devbroker", 0)) / 1e6
        # Every lead written at least once: a RESTORE plus its lf:top and stage-set members,
        # at what this run's writes cost Redis per write (ZADD carries both sets' members).
        per_lead = (cs["restore"]["usec"] + cs.get("zadd", {}).get("usec", 0)) / writes
        redis_cores = rate * leads / lf["events"] * per_lead / 1e6
        need = in_cores + redis_cores
        rows.append((
            "leadflow ≥ 0.80 × consume-only: %s events/s" % f(rate),
            "consuming and decoding alone at that rate: %.2f cores (consume-only's CPU per "
            "event, its own plus the broker's); Redis writing each of the %s leads once (a "
            "RESTORE and its `lf:top` and stage-set entries, %.1f µs per lead write as measured "
            "in the leadflow run) in the same time: %.2f cores. Together %.2f of %d cores, "
            "before any of leadflow's own work" % (in_cores, f(leads), per_lead, redis_cores,
                                                  need, ncores),
            "out of reach on this machine" if need > ncores else "not excluded"))
    if py and py.get("eps") and lfw and lfw.get("events"):
        cu = lfw["resources"]["cpu_us_per_event"]
        per_event = sum(cu.get(k, 0) for k in ("leadflow", "redis-server", "devbroker"))
        most = ncores * 1e6 / per_event if per_event else 0
        rows.append((
            "leadflow ≥ 10 × Python: %s events/s" % f(10 * py["eps"]),
            "at the CPU per event of the leadflow%s run (leadflow + redis-server + devbroker: "
            "%.1f µs), %d cores busy all the time allow %s events/s = %.1f× Python"
            % (" --workers %d" % lfw["workers"] if lfw.get("workers", 1) > 1 else "",
               per_event, ncores, f(most), most / py["eps"]),
            "needs less CPU per event" if most < 10 * py["eps"] else "not excluded"))
    A = (M or {}).get("attribution") or {}
    if A.get("index_bytes_per_lead") is not None and A.get("bytes_per_lead"):
        idx = A["index_bytes_per_lead"]
        s = (M.get("samples") or {}).get("lf:lead:*", {})
        rows.append((
            "≤ 400 bytes of Redis memory per known lead",
            "its index entries (sorted-set members, attributed) take %.0f bytes here, leaving "
            "%.0f for its hash (%s fields, MEMORY USAGE %s) and aliases"
            % (idx, 400 - idx, s.get("avg_fields"), f(s.get("avg_bytes"))),
            "index entries alone are %.0f %% of it" % (100.0 * idx / 400)))
    elif M and M.get("zsets"):
        z = M["zsets"]
        top = (z.get("lf:top") or {}).get("bytes_per_member")
        stages = [v for k, v in z.items() if k.startswith("lf:stage:") and v["members"]]
        nst = sum(v["members"] for v in stages)
        stage = sum(v["bytes"] for v in stages) / nst if nst else None
        s = M["samples"].get("lf:lead:*", {})
        if top and stage:
            rows.append((
                "≤ 400 bytes of Redis memory per known lead",
                "the two sorted-set entries every lead has (`lf:top`, one `lf:stage:*`) take "
                "%.0f + %.0f = %.0f bytes here, leaving %.0f for its hash (%s fields, measured "
                "%s) and aliases" % (top, stage, top + stage, 400 - top - stage,
                                     s.get("avg_fields"), f(s.get("avg_bytes"))),
                "index entries alone are %.0f %% of it" % (100.0 * (top + stage) / 400)))
    if not rows:
        return []
    out = ["## What this machine allows", "",
           "Floors computed from this run's own measurements, not from leadflow's code: a goal "
           "whose floor needs more than the machine's cores cannot be met here by any "
           "implementation of the contract.", "",
           "| goal | floor from this run | verdict |", "| --- | --- | --- |"]
    out += ["| %s | %s | %s |" % r for r in rows]
    out.append("")
    return out


def make_chart(path, rows, L):
    if os.environ.get("BENCH_NO_CHART"):
        return "not drawn (BENCH_NO_CHART is set)"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: python3-matplotlib is not installed (apt-get install python3-matplotlib)"
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels, vals = [], []
    for label, x, name in rows:
        if x:
            label_of = {"consume_only": "consume+decode\nonly (C)", "python": "Python\ncareful",
                        "leadflow": "leadflow run"}
            labels.append(label_of[name] + ("\n--workers %d" % x["workers"]
                                            if x.get("workers", 1) > 1 else ""))
            vals.append(x.get("eps") or 0)
    bars = a1.bar(labels, vals, color=["#999999", "#4c72b0", "#dd8452", "#c44e52"][:len(vals)])
    for b, v in zip(bars, vals):
        a1.text(b.get_x() + b.get_width() / 2, v, "{:,.0f}".format(v), ha="center", va="bottom")
    a1.set_ylabel("events/s")
    a1.set_title("Throughput (same run, same topic)")
    if L:
        for x in L:
            cdf = x.get("cdf") or []
            if cdf:
                a2.plot([c[1] for c in cdf], [c[0] for c in cdf],
                        label="%.0f%% (%s/s): p99 %.1f ms" % (
                            100 * x["fraction"], "{:,.0f}".format(x["achieved_rate"]), x["p99_ms"]))
        a2.set_xscale("log")
        a2.set_xlabel("event-to-transition latency, ms (log)")
        a2.set_ylabel("percentile")
        a2.axvline(25, color="red", linestyle=":", linewidth=1)
        a2.legend(fontsize=8, loc="lower right")
        a2.set_title("Latency CDF")
        a2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


if __name__ == "__main__":
    main()
