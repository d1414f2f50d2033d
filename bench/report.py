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
        w("## Redis memory (after the leadflow run)")
        w("")
        w("| measure | value |")
        w("| --- | ---: |")
        w("| lead hashes (`lf:lead:*`) | %s |" % f(M["lead_keys"]))
        w("| used_memory: empty → after | %s → %s bytes |" % (f(M["used_memory_empty"]),
                                                              f(M["used_memory_after"])))
        w("| **bytes per lead, used_memory delta / lead hashes** (everything: hashes, aliases, "
          "indexes, outbox, progress) | **%s** |" % f(M["bytes_per_lead_used_memory"]))
        w("| bytes per lead: its hash + its aliases + its index entries (MEMORY USAGE) | %s |"
          % f(M["bytes_per_lead_hash_alias_indexes"]))
        s = M["samples"].get("lf:lead:*", {})
        w("| lead hash, MEMORY USAGE (avg of %s sampled; %s fields on average; encoding %s) | %s |"
          % (s.get("sampled"), s.get("avg_fields"), s.get("encoding"), f(s.get("avg_bytes"))))
        for pat, label in (("lf:alias:*", "alias key"), ("lf:hist:*", "history list")):
            s = M["samples"].get(pat)
            if s:
                w("| %s, MEMORY USAGE avg (%s keys) | %s |" % (label, f(M["key_counts"][pat]),
                                                              f(s["avg_bytes"])))
        dd = M.get("dedup")
        if dd:  # the remembered messageIds' fields, "dw", "dw2", ... (dedup by time window)
            w("| dedup (remembered messageIds, fields `dw*`): %s ids per lead on average, %s "
              "of %s sampled leads have some; their field names + values | %s bytes |"
              % (f(dd.get("avg_entries"), 2), f(dd.get("leads_with_dedup")),
                 f(dd.get("sampled")), f(dd.get("avg_field_bytes"), 1)))
            w("| **dedup bytes per lead**: lead hash MEMORY USAGE with − without those fields "
              "(%s → %s, a scratch copy) | **%s** |"
              % (f(dd.get("avg_memory_usage_with"), 1), f(dd.get("avg_memory_usage_without"), 1),
                 f(dd.get("bytes_per_lead"), 1)))
        else:
            w("| dedup bytes per lead | not measured (driver without the dedup probe) |")
        if M.get("bytes_per_lead_hist"):  # builds that kept a history list per lead
            w("| history lists per lead (bytes) | %s |" % f(M.get("bytes_per_lead_hist")))
        w("| index (zset) members per lead | %s |" % f(M.get("index_members_per_lead"), 2))
        w("")
        w("| sorted set | members | bytes | bytes/member | encoding |")
        w("| --- | ---: | ---: | ---: | --- |")
        for k, z in M["zsets"].items():
            w("| `%s` | %s | %s | %s | %s |" % (k, f(z["members"]), f(z["bytes"]),
                                               f(z["bytes_per_member"], 1), z["encoding"]))
        w("")
        w("Goal (issue 5): ≤ 450 bytes per lead at 1 M leads (hash + alias + every index entry).")
        w("")
    if L:
        w("## Event-to-transition latency")
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
        w("| target | events/s sent | samples | p50 ms | p99 ms | p99.9 ms | max ms | leadflow CPU µs/event | redis µs/event | mock broker alone: p50 / p99 / p99.9 ms |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for x in L:
            bo = x.get("broker_only") or {}
            w("| %.0f %% of max | %s | %s | %s | **%s** | %s | %s | %s | %s | %s / %s / %s |" % (
                100 * x["fraction"], f(x.get("achieved_rate")), f(x.get("samples")),
                f(x.get("p50_ms"), 1), f(x.get("p99_ms"), 1), f(x.get("p999_ms"), 1),
                f(x.get("max_ms"), 1), f(cpu(x, "leadflow"), 1), f(cpu(x, "redis-server"), 1),
                f(bo.get("p50_ms"), 1), f(bo.get("p99_ms"), 1), f(bo.get("p999_ms"), 1)))
        w("")
        w("`mock broker alone`: the same producer at the same rate into another fresh topic, "
          "consumed straight back by the probe (one Kafka hop, no leadflow): the floor one hop "
          "puts under the figures on its left (leadflow's path has two hops: events in, "
          "transitions out). The mock parks an empty Fetch for the whole fetch.wait.max.ms "
          "where a real broker answers when data arrives, hence the short waits configured.")
        w("")
        w("Goal (issue 5): p99 ≤ 25 ms at half the maximum rate.")
        for x in L:
            if x.get("leadflow_errors"):
                w("")
                w("leadflow errors at %.0f %%: `%s`" % (100 * x["fraction"],
                                                        "`, `".join(x["leadflow_errors"])))
        w("")
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
    if M and M.get("zsets"):
        z = M["zsets"]
        top = (z.get("lf:top") or {}).get("bytes_per_member")
        stages = [v for k, v in z.items() if k.startswith("lf:stage:") and v["members"]]
        nst = sum(v["members"] for v in stages)
        stage = sum(v["bytes"] for v in stages) / nst if nst else None
        s = M["samples"].get("lf:lead:*", {})
        if top and stage:
            rows.append((
                "≤ 450 bytes of Redis memory per lead",
                "the two sorted-set entries every lead has (`lf:top`, one `lf:stage:*`) take "
                "%.0f + %.0f = %.0f bytes here, leaving %.0f for its hash (%s fields, measured "
                "%s) and aliases" % (top, stage, top + stage, 450 - top - stage,
                                     s.get("avg_fields"), f(s.get("avg_bytes"))),
                "index entries alone are %.0f %% of it" % (100.0 * (top + stage) / 450)))
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
                        label="%.0f%% of max (%s/s): p99 %.1f ms" % (
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
