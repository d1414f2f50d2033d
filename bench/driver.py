#!/usr/bin/python3
"""`make bench`, the measuring part (bench/run.sh builds the helpers and calls this).

Starts a private redis-server and `leadflow devbroker` on free loopback ports, preloads the
topic with `leadflow gen`, then measures on that same topic, one after the other:
  consume-only  (bench/consume_only.c: poll + msgpack decode, the input side's limit)
  python        (bench/peers/python_baseline.py: the careful Python consumer, time-boxed)
  leadflow      (`leadflow run` with the default rules file: every feature on)
then Redis memory per lead, then event-to-transition latency at fractions of leadflow's
measured rate (bench/latency_probe.c), and writes results.json; bench/report.py turns it
into report.md + chart.png. Everything it starts is stopped at the end, also on failure.

Settings come from the environment (see bench/README.md)."""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: the figures' pure functions)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")
PY = "/usr/bin/python3"


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(float(v)) if v.strip() else default


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


CFG = {
    "events": env_int("BENCH_EVENTS", 1_000_000),
    "leads": env_int("BENCH_LEADS", 1_000_000),
    "partitions": env_int("BENCH_PARTITIONS", 64),
    "seed": env_int("BENCH_SEED", 1),
    "py_seconds": env_float("BENCH_PY_SECONDS", 60),
    # a second leadflow run with `--workers N` (0 or 1: none); default one per core
    "lf_workers": env_int("BENCH_LF_WORKERS", os.cpu_count() or 1),
    # `--workers N` for the leadflow of the latency phase (1: one process)
    "lat_workers": env_int("BENCH_LAT_WORKERS", 1),
    "lf_timeout_s": env_float("BENCH_LF_TIMEOUT_S", 420),
    "lat_seconds": env_float("BENCH_LAT_SECONDS", 20),
    "lat_fractions": [float(x) for x in os.environ.get("BENCH_LAT_RATES", "0.25,0.5,0.9").split(",") if x.strip()],
    "lat_linger_ms": env_int("BENCH_LAT_LINGER_MS", 5),
    # 1: the mock parks an empty Fetch for the whole fetch.wait.max.ms (a real broker answers
    # when data arrives); at 10 the probe's own consumer added ~5 ms on average
    "lat_probe_fetch_wait_ms": env_int("BENCH_LAT_FETCH_WAIT_MS", 1),
    "preload_linger_ms": env_int("BENCH_PRELOAD_LINGER_MS", 100),
    "lat_partitions": env_int("BENCH_LAT_PARTITIONS", 8),
    # 2: the mock parks an empty Fetch for the whole wait, a real broker answers as soon as
    # data arrives; 2 ms makes the mock behave like the real one (0: leadflow's default)
    "lat_lf_fetch_wait_ms": env_int("BENCH_LAT_LF_FETCH_WAIT_MS", 2),
    # extra librdkafka properties for leadflow's live config (kafka.properties), "k=v,k=v"
    "lat_lf_props": [x.strip() for x in os.environ.get("BENCH_LAT_LF_PROPS", "").split(",")
                     if x.strip()],
    # processing.batch_max_ms of leadflow's live config (0: as in deploy/leadflow.yaml)
    "lat_lf_batch_max_ms": env_int("BENCH_LAT_LF_BATCH_MAX_MS", 0),
    # seconds produced at the target rate before the measured BENCH_LAT_SECONDS (not counted)
    "lat_warmup_s": env_float("BENCH_LAT_WARMUP_S", 3),
    # the sustained live rate search (0: skip it; latency then at fractions of the preloaded rate)
    "live_search_s": env_float("BENCH_LIVE_SEARCH_S", 90),
    "live_trial_s": env_float("BENCH_LIVE_TRIAL_S", 6),
    "live_warmup_s": env_float("BENCH_LIVE_WARMUP_S", 2),
    "live_start": env_float("BENCH_LIVE_START", 0.3),
    "live_step": env_float("BENCH_LIVE_STEP", 1.5),
    "live_precision": env_float("BENCH_LIVE_PRECISION", 0.1),
    "live_max_lag_s": env_float("BENCH_LIVE_MAX_LAG_S", 1.0),
    "live_growth": env_float("BENCH_LIVE_GROWTH", 0.05),
    # keys sampled per key class for MEMORY USAGE
    "mem_samples": env_int("BENCH_MEM_SAMPLES", 300),
}

PIDS_FILE = None
children = []  # Popen objects we started, stopped in reverse order at the end


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def fail(msg, code=3):
    log("FAILED: " + msg)
    raise SystemExit(code)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def spawn(name, argv, stdout=None, stderr=None, env=None):
    p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    p.bench_name = name
    children.append(p)
    with open(PIDS_FILE, "a") as fh:
        fh.write("%d %s\n" % (p.pid, os.path.basename(argv[0])))
    return p


def stop(p, timeout=20):
    """SIGTERM, then SIGKILL after timeout; only our own child, by its pid."""
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        log("%s (pid %d) did not stop in %ds: SIGKILL" % (p.bench_name, p.pid, timeout))
        p.kill()
        return p.wait(10)


def stop_all():
    for p in reversed(children):
        try:
            stop(p, 10)
        except Exception as e:  # keep stopping the others
            log("stopping %s: %s" % (p.bench_name, e))


def proc_cpu(pid):
    """utime + stime of a live process, in seconds (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except (OSError, IndexError):
        return None


def children_of(pid):
    """pids whose parent is pid (the workers of `leadflow run --workers N`)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def proc_tree_cpu(pid):
    """proc_cpu of a process plus its live children's (the workers of `run --workers N`)."""
    own = proc_cpu(pid)
    if own is None:
        return None
    return own + sum(proc_cpu(c) or 0 for c in children_of(pid))


def sys_busy():
    """Busy and total jiffies of the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v) - idle) / TICK, sum(v) / TICK


def cmd_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def control(port, line):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(line.encode() + b"\n")
    d = b""
    while not d.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        d += chunk
    s.close()
    return d.decode().strip()


def watermarks(port, topic):
    r = control(port, "watermarks " + topic)
    if not r.startswith("ok"):
        fail("devbroker watermarks %s: %s" % (topic, r))
    out = {}
    for part in r.split()[2:]:
        p, lo, hi = part.split(":")
        out[int(p)] = (int(lo), int(hi))
    return out


class Meter:
    """CPU seconds of named processes and of the whole machine between start() and stop()."""

    def __init__(self, procs):
        self.procs = procs  # name -> pid

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = {n: proc_tree_cpu(p) for n, p in self.procs.items()}
        self.s0 = sys_busy()
        return self

    def stop(self):
        self.t1 = time.monotonic()
        self.c1 = {n: proc_tree_cpu(p) for n, p in self.procs.items()}
        self.s1 = sys_busy()
        return self

    def result(self, events, extra=None):
        wall = self.t1 - self.t0
        cpu = {n: (self.c1[n] - self.c0[n]) if self.c1[n] is not None and self.c0[n] is not None
               else None for n in self.procs}
        if extra:
            cpu.update(extra)
        busy = self.s1[0] - self.s0[0]
        ours = sum(v for v in cpu.values() if v)
        return {
            "wall_s": round(wall, 3),
            "cpu_s": {n: (round(v, 3) if v is not None else None) for n, v in cpu.items()},
            "cpu_us_per_event": {n: (round(v * 1e6 / events, 2) if v is not None and events else None)
                                 for n, v in cpu.items()},
            "cores_used": {n: (round(v / wall, 2) if v is not None and wall > 0 else None)
                           for n, v in cpu.items()},
            "machine_busy_cores": round(busy / wall, 2) if wall > 0 else None,
            "other_processes_cores": round(max(0.0, busy - ours) / wall, 2) if wall > 0 else None,
        }


def run_child_measured(name, argv, meter_procs, events_key, timeout, stdout_path, stderr_path):
    """Runs a helper to completion; its own CPU from wait4's rusage, the servers' from /proc."""
    m = Meter(meter_procs).start()
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        p = spawn(name, argv, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        ru = None
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                log("%s: timeout after %ds, stopping it" % (name, timeout))
                p.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 30
                timeout = 30
            time.sleep(0.05)
    m.stop()
    with open(stdout_path) as fh:
        lines = [l for l in fh.read().splitlines() if l.startswith("{")]
    if not lines:
        with open(stderr_path) as fh:
            tail = fh.read()[-2000:]
        fail("%s printed no result (exit %s); stderr:\n%s" % (name, p.returncode, tail))
    res = json.loads(lines[-1])
    own = ru.ru_utime + ru.ru_stime
    res["exit"] = p.returncode
    res["resources"] = m.result(res.get(events_key) or 0, {name: own})
    return res


def lf_progress(r, group, topic):
    h = r.hgetall("lf:wm:%s:%s" % (group, topic))
    nxt = consumed = 0
    for k, v in h.items():
        k = k.decode()
        if k.isdigit():
            nxt += int(v)
        elif k.endswith(".consumed"):
            consumed += int(v)
    return nxt, consumed


def write_config(path, events_topic, transitions_topic, fetch_wait_ms=0, props=(),
                 batch_max_ms=0):
    with open(os.path.join(ROOT, "deploy", "leadflow.yaml")) as fh:
        text = fh.read()
    props = list(props)
    if fetch_wait_ms > 0:
        props.append("fetch.wait.max.ms=%d" % fetch_wait_ms)
    for kv in props:
        k, eq, v = kv.partition("=")
        if not eq or not k.strip():
            fail("BENCH_LAT_LF_PROPS: %r is not name=value" % kv)
        text, n0 = re.subn(r"(?m)^(\s+)properties:.*$",
                           lambda m: m.group(0) + "\n" + m.group(1) + "  %s: %s"
                           % (k.strip(), v.strip()), text, 1)
        if n0 != 1:
            fail("cannot add %s to a copy of deploy/leadflow.yaml" % k)
    if batch_max_ms > 0:
        text, n3 = re.subn(r"(?m)^(\s+batch_max_ms:\s*)\S+",
                           lambda m: m.group(1) + str(batch_max_ms), text, 1)
        if n3 != 1:
            fail("cannot set processing.batch_max_ms in a copy of deploy/leadflow.yaml")
    text, n1 = re.subn(r"(?m)^(\s+events:\s*)\S+", lambda m: m.group(1) + events_topic, text, 1)
    text, n2 = re.subn(r"(?m)^(\s+transitions:\s*)\S+", lambda m: m.group(1) + transitions_topic,
                       text, 1)
    if n1 != 1 or n2 != 1:
        fail("cannot set the topics in a copy of deploy/leadflow.yaml")
    with open(path, "w") as fh:
        fh.write(text)


def parse_trace(path):
    """Per-batch phase timings of LF_TRACE_BATCH=1 lines."""
    pat = re.compile(r"batch (\d+) events: produce dead letters (\d+) ms, leads (\d+) ms, "
                     r"publish (\d+) \+ await dead letters (\d+) ms, finish (\d+) ms")
    n = ev = 0
    tot = {"dead_letters_ms": 0, "leads_ms": 0, "publish_ms": 0, "finish_ms": 0}
    pubs = 0
    with open(path, errors="replace") as fh:
        for line in fh:
            m = pat.search(line)
            if not m:
                continue
            n += 1
            ev += int(m.group(1))
            tot["dead_letters_ms"] += int(m.group(2))
            tot["leads_ms"] += int(m.group(3))
            pubs += int(m.group(4))
            tot["publish_ms"] += int(m.group(5))
            tot["finish_ms"] += int(m.group(6))
    if not n:
        return None
    return {"batches": n, "events": ev, "avg_batch_events": round(ev / n, 1),
            "transitions_published": pubs, "phase_ms": tot}


def wait_for_line(path, needle, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with open(path, errors="replace") as fh:
                if needle in fh.read():
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main():
    global PIDS_FILE
    lf = sys.argv[1]
    work = sys.argv[2]
    bindir = sys.argv[3]
    outdir = sys.argv[4]
    PIDS_FILE = os.path.join(work, "pids")
    os.makedirs(outdir, exist_ok=True)
    res = {"config": dict(CFG), "phases": {}}
    cfgd = res["config"]
    cfgd["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cfgd["cpu_model"] = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                              if l.startswith("model name")), "?")
    cfgd["cores"] = os.cpu_count()
    cfgd["kernel"] = os.uname().release
    cfgd["librdkafka"] = cmd_out(["pkg-config", "--modversion", "rdkafka"])
    cfgd["hiredis"] = cmd_out(["pkg-config", "--modversion", "hiredis"])
    cfgd["msgpack_c"] = cmd_out(["pkg-config", "--modversion", "msgpack"])
    cfgd["redis_server"] = cmd_out(["redis-server", "--version"])
    cfgd["python"] = sys.version.split()[0]
    try:
        import confluent_kafka
        import msgpack as mp
        cfgd["confluent_kafka"] = confluent_kafka.version()[0]
        cfgd["python_msgpack"] = ".".join(map(str, mp.version))
        cfgd["redis_py"] = redis.__version__
    except Exception:
        pass
    cfgd["leadflow_git"] = cmd_out(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    cfgd["leadflow_binary"] = lf
    cfgd["loadavg_start"] = open("/proc/loadavg").read().split()[:3]

    def handler(sig, frame):
        raise SystemExit(130)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)

    try:
        run(lf, work, bindir, outdir, res)
    finally:
        stop_all()
        cfgd["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        cfgd["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            summarize(res)
        except Exception as e:  # a partial run still writes what it has
            log("summary: %s" % e)
        with open(os.path.join(outdir, "results.json"), "w") as fh:
            json.dump(res, fh, indent=2)
        log("results: " + os.path.join(outdir, "results.json"))


def run_leadflow(C, lf, work, r, servers, brokers, rport, ev_topic, total, workers):
    """`leadflow run` (with --workers N when workers > 1) over the preloaded topic, on an empty
    Redis; returns (its result, memory_snapshot of the empty Redis)."""
    tag = "leadflow" if workers == 1 else "leadflow-w%d" % workers
    log("%s run ..." % tag)
    r.flushall()
    time.sleep(0.5)
    mem_empty = memory_snapshot(r)
    group = "bench-" + tag
    lf_err = os.path.join(work, tag + ".err")
    env = dict(os.environ, LF_TRACE_BATCH="1")
    r.config_resetstat()
    m = Meter(servers).start()
    extra = ["--workers", str(workers)] if workers > 1 else []
    with open(os.path.join(work, tag + ".out"), "w") as o, open(lf_err, "w") as e:
        lp = spawn("leadflow", [lf, "run", "-c", os.path.join(ROOT, "deploy", "leadflow.yaml"),
                                "--brokers", brokers, "--redis", "127.0.0.1:%d" % rport,
                                "--group", group, "--instance", "bench-" + tag,
                                "--exit-idle-ms", "3600000"] + extra, stdout=o, stderr=e,
                   env=env)
    t_first = t_last = None
    n_first = 0
    nxt = consumed = 0
    deadline = time.monotonic() + C["lf_timeout_s"]
    while time.monotonic() < deadline:
        if lp.poll() is not None:
            break
        nxt, consumed = lf_progress(r, group, ev_topic)
        now = time.monotonic()
        if nxt and t_first is None:
            t_first, n_first = now, nxt
        if nxt >= total:
            t_last = now
            break
        time.sleep(0.02)
    m.stop()
    lf_cpu = proc_tree_cpu(lp.pid)
    cmdstats = r.info("commandstats")
    complete = t_last is not None
    if lp.poll() is not None and not complete:
        with open(lf_err, errors="replace") as fh:
            tail = fh.read()[-1500:]
        fail("%s run exited early (code %s) after %d of %d events:\n%s"
             % (tag, lp.returncode, nxt, total, tail))
    if not complete:
        t_last = time.monotonic()
        log(tag + ": not complete (%d of %d) after %ds" % (nxt, total, C["lf_timeout_s"]))
    stop(lp, 60)
    span = (t_last - t_first) if t_first else 0
    done = nxt - n_first
    lfres = {"events": nxt, "consumed_counter": consumed, "complete": complete,
             "seconds": round(span, 3),
             "eps": round(done / span, 1) if span > 0 else 0.0,
             "exit": lp.returncode,
             "resources": m.result(nxt, {"leadflow": lf_cpu}),
             "trace": parse_trace(lf_err),
             # what Redis spent its time on (EXEC's time includes the commands inside it)
             "redis_commandstats": {k[len("cmdstat_"):]: {"calls": v["calls"], "usec": v["usec"]}
                                    for k, v in cmdstats.items()},
             "note": "rate over the events after the first progress write (first batch "
                     "excluded), timed by polling lf:wm every 20 ms"}
    lfres["workers"] = workers
    log("%s: %s events/s (%s)" % (tag, lfres["eps"], "complete" if complete else "INCOMPLETE"))
    with open(lf_err, errors="replace") as fh:
        errs = [l.strip() for l in fh if " error: " in l]
    if errs:
        lfres["errors"] = errs[:5]
    return lfres, mem_empty



B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def dedup_entries(text):
    """Entries in the text of "dw", "dw2", ...: a varint ('g'.. continue it), 8 hash chars."""
    n = i = 0
    while i < len(text):
        while i < len(text) and B64.find(text[i]) >= 32:
            i += 1
        i += 9
        n += 1
    return n


def dedup_cost(r, keys):
    """What remembering messageIds (dedup) costs per lead, over the sampled lead hashes: the
    bytes of its fields' names and values ("dw", "dw2", ...; "dd", "dd2" in older builds), and
    MEMORY USAGE of each hash with and without them (on a scratch copy: DUMP, RESTORE, HDEL)."""
    is_dd = re.compile(r"^d[dw]\d*$")
    scratch = "bench:dedup-scratch"
    text = with_b = without_b = having = entries = 0
    for k in keys:
        h = r.hgetall(k)
        fs = sorted(f.decode() for f in h if is_dd.match(f.decode()))
        if fs:
            having += 1
            text += sum(len(f) + len(h[f.encode()]) for f in fs)
            entries += dedup_entries("".join(h[f.encode()].decode() for f in fs
                                             if f.startswith("dw")))
        r.restore(scratch, 0, r.dump(k), replace=True)
        if fs:
            r.hdel(scratch, *fs)
        with_b += r.memory_usage(k, samples=0) or 0
        without_b += r.memory_usage(scratch, samples=0) or 0
        r.delete(scratch)
    n = len(keys)
    return {"sampled": n, "leads_with_dedup": having,
            "avg_entries": round(entries / n, 2) if n else None,
            "avg_field_bytes": round(text / n, 1) if n else None,
            "avg_memory_usage_with": round(with_b / n, 1) if n else None,
            "avg_memory_usage_without": round(without_b / n, 1) if n else None,
            "bytes_per_lead": round((with_b - without_b) / n, 1) if n else None}



def memory_snapshot(r):
    """used_memory, and from MEMORY STATS what lies outside the keyspace and the expires dict."""
    st = r.memory_stats()
    used = int(r.info("memory")["used_memory"])
    ht_main = ht_exp = 0
    for k, v in st.items():
        k = k.decode() if isinstance(k, bytes) else k
        if k.startswith("db.") and isinstance(v, dict):
            for kk, vv in v.items():
                kk = kk.decode() if isinstance(kk, bytes) else kk
                if kk == "overhead.hashtable.main":
                    ht_main += int(vv)
                elif kk == "overhead.hashtable.expires":
                    ht_exp += int(vv)
    total = int(st.get("overhead.total", st.get(b"overhead.total", 0)))
    return {"used_memory": used, "overhead_total": total, "ht_main": ht_main,
            "ht_expires": ht_exp, "nonkey": total - ht_main - ht_exp}


def key_id(k):
    """<id> of <prefix><kind>{<id>}."""
    i, j = k.find(b"{"), k.rfind(b"}")
    return k[i + 1:j] if 0 <= i < j else k


def sample_keys(r, keys, n):
    """MEMORY USAGE (SAMPLES 0) and PTTL of up to n random keys: (avg bytes, TTL fraction,
    sampled keys)."""
    pick = random.sample(keys, min(n, len(keys)))
    if not pick:
        return None, 0.0, []
    pipe = r.pipeline(transaction=False)
    for k in pick:
        pipe.memory_usage(k, samples=0)
        pipe.pttl(k)
    out = pipe.execute()
    mus = [v for v in out[0::2] if v]
    ttls = out[1::2]
    return (sum(mus) / len(mus) if mus else None,
            sum(1 for t in ttls if t is not None and t >= 0) / len(ttls), pick)


def measure_memory(r, empty):
    """Redis memory after the leadflow run, split between known leads and anonymous visitors
    (either layout: a `lf:lead:{id}` hash with anon=1 is a visitor of the old layout,
    `lf:v:{id}` one of the new), see report.attribute_memory."""
    after = memory_snapshot(r)
    info = r.info("memory")
    nsample = CFG["mem_samples"]
    lead_keys, vis_keys, alias_keys, hist_keys, other_keys, zset_keys = [], [], [], [], [], []
    for k in r.scan_iter(count=10000):
        if k.startswith(b"lf:lead:"):
            lead_keys.append(k)
        elif k.startswith(b"lf:v:"):
            vis_keys.append(k)
        elif k.startswith(b"lf:alias:"):
            alias_keys.append(k)
        elif k.startswith(b"lf:hist:"):
            hist_keys.append(k)
        elif k == b"lf:top" or k.startswith(b"lf:stage:"):
            zset_keys.append(k)
        else:
            other_keys.append(k)
    # old layout: a visitor is a lead hash with anon=1
    known, anon_hash = [], []
    for i in range(0, len(lead_keys), 10000):
        chunk = lead_keys[i:i + 10000]
        pipe = r.pipeline(transaction=False)
        for k in chunk:
            pipe.hget(k, "anon")
        for k, v in zip(chunk, pipe.execute()):
            (anon_hash if v == b"1" else known).append(k)
    visitor_ids = set(key_id(k) for k in anon_hash) | set(key_id(k) for k in vis_keys)
    classes, samples = {}, {}
    for name, keys, owner, rec in (("lead hash (known)", known, "lead", "lead"),
                                   ("alias", alias_keys, "lead", None),
                                   ("history list", hist_keys, "lead", None),
                                   ("lead hash (visitor, anon=1)", anon_hash, "visitor", "visitor"),
                                   ("visitor record", vis_keys, "visitor", "visitor")):
        if not keys:
            continue
        avg, ttl, pick = sample_keys(r, keys, nsample)
        classes[name] = {"owner": owner, "count": len(keys), "avg_bytes": avg or 0,
                         "ttl_count": round(ttl * len(keys))}
        if rec:
            classes[name]["is_record"] = rec
        samples[name] = {"sampled": len(pick), "avg_bytes": round(avg or 0, 1),
                         "ttl_fraction": round(ttl, 3)}
        if keys and (name.startswith("lead hash") or name == "visitor record"):
            samples[name]["encoding"] = r.object("encoding", pick[0]).decode()
            if name.startswith("lead hash"):
                pipe = r.pipeline(transaction=False)
                for k in pick:
                    pipe.hlen(k)
                hl = pipe.execute()
                samples[name]["avg_fields"] = round(sum(hl) / len(hl), 1)
        if name == "lead hash (known)":
            lead_pick = pick
    # the names earlier reports and goal_bounds read
    if "lead hash (known)" in samples:
        samples["lf:lead:*"] = samples["lead hash (known)"]
    if "alias" in samples:
        samples["lf:alias:*"] = samples["alias"]
    # the fixed part: every other key, measured one by one (outbox, progress, ops, funnel, ...)
    pipe = r.pipeline(transaction=False)
    for k in other_keys:
        pipe.memory_usage(k, samples=0)
        pipe.pttl(k)
    out = pipe.execute() if other_keys else []
    other_bytes = sum(v or 0 for v in out[0::2])
    classes["other keys (fixed)"] = {"owner": "fixed", "count": len(other_keys),
                                     "bytes": other_bytes,
                                     "ttl_count": sum(1 for t in out[1::2] if t is not None and t >= 0)}
    zsets = {}
    for k in sorted(zset_keys):
        card = r.zcard(k)
        mu = r.memory_usage(k, samples=0) or 0
        vm = 0
        if visitor_ids and card:
            vm = sum(1 for m, _ in r.zscan_iter(k, count=10000) if m in visitor_ids)
        zsets[k.decode()] = {"members": card, "bytes": mu, "visitor_members": vm,
                             "bytes_per_member": round(mu / card, 1) if card else None,
                             "encoding": r.object("encoding", k).decode()}
    keyspace = r.info("keyspace").get("db0", {})
    m = {"delta": after["used_memory"] - empty["used_memory"],
         "nonkey_delta": after["nonkey"] - empty["nonkey"],
         "ht_expires": after["ht_expires"] - empty["ht_expires"],
         "expires": int(keyspace.get("expires", 0)), "keys": r.dbsize(),
         "classes": classes, "zsets": {n: {"bytes": z["bytes"], "members": z["members"],
                                           "visitor_members": z["visitor_members"]}
                                       for n, z in zsets.items()}}
    att = report.attribute_memory(m)
    top = zsets.get("lf:top")
    res = {
        "layout": "v2 (lf:v:* records)" if vis_keys else
                  ("v1 (visitors are lf:lead hashes with anon=1)" if anon_hash else
                   "no visitors seen"),
        "used_memory_empty": empty["used_memory"], "used_memory_after": after["used_memory"],
        "memory_stats_empty": empty, "memory_stats_after": after,
        "lead_keys": len(lead_keys), "known_leads": len(known),
        "visitors": len(anon_hash) + len(vis_keys),
        "key_counts": {"lf:lead:*": len(lead_keys), "lf:lead:* anon=1": len(anon_hash),
                       "lf:v:*": len(vis_keys), "lf:alias:*": len(alias_keys),
                       "lf:hist:*": len(hist_keys), "other": len(other_keys)},
        "other_keys": sorted(set(re.sub(rb"[:{].*", b":*", k[3:]).decode(errors="replace")
                                 for k in other_keys)),
        "dbsize": m["keys"], "expires": m["expires"],
        "bytes_per_lead_used_memory": round(m["delta"] / len(lead_keys), 1) if lead_keys else None,
        "samples": samples, "zsets": zsets,
        "index_members_per_lead": round(sum(z["members"] - z["visitor_members"]
                                            for z in zsets.values()) / len(known), 2)
        if known else None,
        "mem_fragmentation_ratio": info.get("mem_fragmentation_ratio"),
        "attribution_input": m, "attribution": att,
        "sizing": report.sizing(att, {"members": top["members"] - top["visitor_members"],
                                      "lead_bytes": att["zsets"]["lf:top"]["lead_bytes"]}
                                if top and top["members"] else None),
    }
    res["dedup"] = dedup_cost(r, lead_pick) if known else None
    return res


LIVE_START_MS = 1767225600000 + 30 * 86400000  # where the preload's event time ends


def live_setup(X, name, rate, seconds):
    """A live run's pieces: a fresh input stream (`gen --out`, new seed, event time continuing
    one day later than the previous live run's), a fresh topic pair and a fresh `leadflow
    run` on the warm Redis, assigned its partitions. Returns (process, input, topic, group,
    stderr path)."""
    C = X["C"]
    day = X["day"]
    X["day"] += 1
    topic = "bench." + name
    n_in = int(rate * seconds * 1.1) + 1000
    inp = os.path.join(X["work"], name + ".bin")
    g = subprocess.run([X["lf"], "gen", "--leads", str(C["leads"]), "--events", str(n_in),
                        "--seed", str(C["seed"] + 100 + day), "--start-ms",
                        str(LIVE_START_MS + day * 86400000), "--span-days", "1", "--out", inp,
                        "--quiet"], capture_output=True, text=True)
    if g.returncode != 0:
        fail("leadflow gen --out failed: " + g.stderr[-500:])
    for t in (topic + ".events", topic + ".transitions"):
        rep = control(X["cport"], "topic-create %s %d" % (t, C["lat_partitions"]))
        if not rep.startswith("ok"):
            fail("devbroker topic-create %s: %s" % (t, rep))
    conf = os.path.join(X["work"], name + ".yaml")
    write_config(conf, topic + ".events", topic + ".transitions", C["lat_lf_fetch_wait_ms"],
                 C["lat_lf_props"], C["lat_lf_batch_max_ms"])
    lerr = os.path.join(X["work"], name + ".leadflow.err")
    group = "bench-" + name
    with open(os.path.join(X["work"], name + ".leadflow.out"), "w") as o, open(lerr, "w") as e:
        lp = spawn("leadflow", [X["lf"], "run", "-c", conf, "--brokers", X["brokers"], "--redis",
                                "127.0.0.1:%d" % X["rport"], "--group", group,
                                "--instance", group, "--exit-idle-ms", "3600000"]
                   + (["--workers", str(C["lat_workers"])] if C["lat_workers"] > 1 else []),
                   stdout=o, stderr=e, env=dict(os.environ, LF_TRACE_BATCH="1"))
    needles = (["leadflow[w%d] info: assigned" % k for k in range(1, C["lat_workers"] + 1)]
               if C["lat_workers"] > 1 else ["assigned"])
    if not all(wait_for_line(lerr, nd, 60, lp) for nd in needles):
        stop(lp)
        fail("leadflow (%s) did not get its partitions" % name)
    time.sleep(1.0)
    return lp, inp, topic, group, lerr


def live_trial(X, k, rate):
    """One trial of the sustained-rate search: latency_probe produces at rate for the warm-up
    plus the trial's seconds into a fresh topic read by a fresh leadflow; every 0.2 s the
    driver reads the topic's high watermarks (produced) and the progress hash's next offsets
    (consumed and written); report.trial_outcome decides whether the lag stayed bounded."""
    C = X["C"]
    wu, dur = C["live_warmup_s"], C["live_trial_s"]
    name = "search%d" % k
    t0 = time.monotonic()
    lp, inp, topic, group, lerr = live_setup(X, name, rate, wu + dur)
    m = Meter(dict(X["servers"], leadflow=lp.pid)).start()
    pout = os.path.join(X["work"], name + ".probe.out")
    with open(pout, "w") as o, open(os.path.join(X["work"], name + ".probe.err"), "w") as e:
        probe = spawn("latency_probe", [
            os.path.join(X["bindir"], "latency_probe"), "--brokers", X["brokers"], "--topic",
            topic + ".events", "--transitions", topic + ".transitions", "--input", inp,
            "--rate", "%.1f" % rate, "--duration", str(dur), "--warmup-s", str(wu),
            "--drain-s", "0", "--linger-ms", str(C["lat_linger_ms"]), "--fetch-wait-ms",
            str(C["lat_probe_fetch_wait_ms"])], stdout=o, stderr=e)
    samples = []
    tp = None
    deadline = time.monotonic() + wu + dur + 60
    while probe.poll() is None and time.monotonic() < deadline:
        wm = watermarks(X["cport"], topic + ".events")
        produced = sum(hi for lo, hi in wm.values())
        nxt, _ = lf_progress(X["r"], group, topic + ".events")
        now = time.monotonic()
        if produced and tp is None:
            tp = now
        if tp is not None:
            samples.append([round(now - tp, 3), produced, nxt])
        time.sleep(0.2)
    if probe.poll() is None:
        stop(probe)
    m.stop()
    pres = {}
    with open(pout) as fh:
        lines = [l for l in fh.read().splitlines() if l.startswith("{")]
    if lines:
        pres = json.loads(lines[-1])
    sent = pres.get("sent") or (samples[-1][1] if samples else 0)
    stop(lp, 60)
    out = report.trial_outcome(samples, rate, wu, dur, C["live_max_lag_s"], C["live_growth"])
    ach = pres.get("achieved_rate")
    if out["bounded"] and ach and ach < 0.95 * rate:
        out.update(bounded=False, reason="the probe offered only %.0f events/s" % ach)
    out.update(trial=k, rate=round(rate, 1), achieved_rate=ach, sent=sent,
               wall_s=round(time.monotonic() - t0, 1),
               resources=m.result(sent), trace=parse_trace(lerr),
               lag_timeline=samples[::max(1, len(samples) // 60)])
    try:
        os.unlink(inp)
    except OSError:
        pass
    log("live search trial %d: %.0f events/s offered (%s achieved): %s — %s"
        % (k, rate, ach, "BOUNDED" if out["bounded"] else "not bounded", out["reason"]))
    return out


def live_search(X, res, preload_eps):
    """The highest offered rate at which the live path's lag stays bounded: start at
    BENCH_LIVE_START x the preloaded rate, step x BENCH_LIVE_STEP up (or halve down) until the
    outcome flips, then bisect until the bracket is within BENCH_LIVE_PRECISION, all within
    BENCH_LIVE_SEARCH_S seconds."""
    C = X["C"]
    S = {"budget_s": C["live_search_s"], "trial_s": C["live_trial_s"],
         "warmup_s": C["live_warmup_s"], "max_lag_s": C["live_max_lag_s"],
         "growth_limit": C["live_growth"], "trials": []}
    res["live_search"] = S
    if C["live_search_s"] <= 0 or preload_eps <= 0:
        S["skipped"] = True
        log("live search: skipped")
        return None
    t_end = time.monotonic() + C["live_search_s"]
    rate = max(100.0, C["live_start"] * preload_eps)
    lo = hi = None
    est = C["live_trial_s"] + C["live_warmup_s"] + 5
    k = 0
    while time.monotonic() + est <= t_end:
        tr = live_trial(X, k, rate)
        S["trials"].append(tr)
        k += 1
        est = max(est, tr["wall_s"])
        if tr["bounded"]:
            lo = rate if lo is None else max(lo, rate)
        else:
            hi = rate if hi is None else min(hi, rate)
        if hi is None:
            rate = rate * C["live_step"]
        elif lo is None:
            rate = rate / 2
            if rate < 100:
                break
        elif hi <= lo * (1 + C["live_precision"]):
            break
        else:
            rate = (lo + hi) / 2
    S["seconds"] = round(time.monotonic() - t_end + C["live_search_s"], 1)
    S["bracket"] = [lo, hi]
    S["live_sustained_eps"] = round(lo, 1) if lo else None
    S["converged"] = bool(lo and hi and hi <= lo * (1 + C["live_precision"]))
    res["live_sustained_eps"] = S["live_sustained_eps"]
    log("live search: sustained %s events/s (bracket %s .. %s, %d trials in %.0f s)"
        % (S["live_sustained_eps"], lo, hi, k, S["seconds"]))
    return lo


def summarize(res):
    """The headline figures of issue 16 in one place (report.py prints them, the goal table
    reads them)."""
    P = res.get("phases", {})
    lf = P.get("leadflow") or {}
    att = (res.get("memory") or {}).get("attribution") or {}
    res["redis_cpu_us_per_event"] = {
        "preloaded": lf.get("resources", {}).get("cpu_us_per_event", {}).get("redis-server"),
        "live": report.live_redis_us(res),
        "live_basis": "the latency run at 50 % of the sustained rate (redis-server utime+stime "
                      "/ events sent, warm-up included)"}
    res["p99_50_over_devbroker"] = report.p99_ratio(res)
    res["bytes_per_lead"] = att.get("bytes_per_lead")
    res["bytes_per_visitor"] = att.get("bytes_per_visitor")
    res["sizing"] = (res.get("memory") or {}).get("sizing")
    res["goals"] = report.goals(res)

def run(lf, work, bindir, outdir, res):
    C = res["config"]
    ev_topic = "leadflow.events"
    extra_topics = ["bench.py.transitions", "bench.py.dead-letter"]

    # ---- servers
    rport, kport, cport = free_port(), free_port(), free_port()
    rlog = open(os.path.join(work, "redis.log"), "w")
    rs = spawn("redis-server", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--daemonize", "no"],
               stdout=rlog, stderr=subprocess.STDOUT)
    dbo = open(os.path.join(work, "devbroker.out"), "w")
    dbe = open(os.path.join(work, "devbroker.err"), "w")
    db = spawn("devbroker", [lf, "devbroker", "--port", str(kport), "--partitions",
                             str(C["partitions"]), "--control-port", str(cport),
                             "--topics", ",".join(extra_topics)], stdout=dbo, stderr=dbe)
    r = redis.Redis(host="127.0.0.1", port=rport)
    for _ in range(100):
        try:
            if r.ping():
                break
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    else:
        fail("redis-server did not start")
    if not wait_for_line(os.path.join(work, "devbroker.out"), "bootstrap.servers=", 30, db):
        fail("devbroker did not start: " + open(os.path.join(work, "devbroker.err")).read()[-500:])
    brokers = "127.0.0.1:%d" % kport
    C["ports"] = {"redis": rport, "kafka": kport, "control": cport}
    log("redis-server pid %d on :%d, devbroker pid %d on :%d" % (rs.pid, rport, db.pid, kport))
    servers = {"redis-server": rs.pid, "devbroker": db.pid}

    # ---- 1. preload
    log("preload: %d events, %d leads, %d partitions" % (C["events"], C["leads"], C["partitions"]))
    t0 = time.monotonic()
    gen_stats = os.path.join(work, "gen-stats.json")
    g = subprocess.run([lf, "gen", "--leads", str(C["leads"]), "--events", str(C["events"]),
                        "--seed", str(C["seed"]), "--format", "msgpack", "--brokers", brokers,
                        "--topic", ev_topic, "--stats", gen_stats,
                        "-X", "linger.ms=%d" % C["preload_linger_ms"]],
                       capture_output=True, text=True)
    if g.returncode != 0:
        fail("leadflow gen failed: " + g.stderr[-1000:])
    log(g.stderr.strip())
    with open(gen_stats) as fh:
        gs = json.load(fh)
    wm = watermarks(cport, ev_topic)
    lost = {p: lo for p, (lo, hi) in wm.items() if lo != 0}
    total = sum(hi for lo, hi in wm.values())
    res["preload"] = {"seconds": round(time.monotonic() - t0, 2), "gen": gs,
                      "total_messages": total, "partitions": len(wm),
                      "max_partition_messages": max(hi for lo, hi in wm.values()),
                      "min_partition_messages": min(hi for lo, hi in wm.values()),
                      "bytes": gs.get("bytes")}
    if lost:
        fail("the mock broker dropped the oldest messages of %d partition(s) during the preload "
             "(low watermarks %s). Its retention is ~5 MiB / 100,000 message sets per partition "
             "and one hot lead fills one partition: lower BENCH_EVENTS or raise BENCH_LEADS."
             % (len(lost), lost))
    if total != C["events"]:
        fail("the topic holds %d messages, %d were generated (the mock's idempotent producer "
             "can duplicate a retried batch): rerun" % (total, C["events"]))
    log("preload ok: %d messages, every partition's low watermark is 0 (largest partition %d)"
        % (total, res["preload"]["max_partition_messages"]))

    # ---- 2c. consume-and-decode only
    log("consume-only ...")
    res["phases"]["consume_only"] = run_child_measured(
        "consume_only", [os.path.join(bindir, "consume_only"), "--brokers", brokers, "--topic",
                         ev_topic, "--expect", str(total), "--group", "bench-consume-only",
                         "--timeout-s", "300"],
        {"devbroker": db.pid}, "events", 360, os.path.join(work, "consume_only.out"),
        os.path.join(work, "consume_only.err"))
    log("consume-only: %s events/s" % res["phases"]["consume_only"]["eps"])

    # ---- 2b. Python baseline
    log("python baseline (time budget %ds) ..." % C["py_seconds"])
    r.flushall()
    res["phases"]["python"] = run_child_measured(
        "python", [PY, os.path.join(HERE, "peers", "python_baseline.py"), "--brokers", brokers,
                   "--topic", ev_topic, "--redis", "127.0.0.1:%d" % rport, "--group",
                   "bench-python", "--config", os.path.join(ROOT, "deploy", "leadflow.yaml"),
                   "--expect", str(total), "--seconds", str(C["py_seconds"])],
        servers, "events", C["py_seconds"] + 120, os.path.join(work, "python.out"),
        os.path.join(work, "python.err"))
    log("python: %s events/s" % res["phases"]["python"]["eps"])

    # ---- 2a. leadflow (one process)
    lfres, mem_empty = run_leadflow(C, lf, work, r, servers, brokers, rport, ev_topic, total, 1)
    res["phases"]["leadflow"] = lfres

    # ---- 3. Redis memory: per known lead, per visitor
    log("redis memory ...")
    res["memory"] = measure_memory(r, mem_empty)
    att = res["memory"]["attribution"]
    log("memory: %s bytes per known lead (%d), %s bytes per visitor (%d), fixed %s bytes; "
        "used_memory delta / lead hashes %s" % (att["bytes_per_lead"], att["known_leads"],
                                                att["bytes_per_visitor"], att["visitors"],
                                                att["bytes_fixed"],
                                                res["memory"]["bytes_per_lead_used_memory"]))

    # ---- 2d. leadflow, one worker process per core (`run --workers N`)
    if C["lf_workers"] > 1:
        r.flushall()
        res["phases"]["leadflow_workers"], _ = run_leadflow(
            C, lf, work, r, servers, brokers, rport, ev_topic, total, C["lf_workers"])

    # ---- 4. the rate the live path sustains, then latency at fractions of it
    X = {"C": C, "lf": lf, "work": work, "bindir": bindir, "brokers": brokers, "rport": rport,
         "cport": cport, "r": r, "servers": servers, "day": 0}
    res["latency"] = []
    sustained = live_search(X, res, lfres["eps"])
    max_rate = sustained or lfres["eps"]
    res["latency_basis"] = {"rate": max_rate,
                            "basis": "live_sustained_eps" if sustained else "preloaded eps"}
    if not C["lat_fractions"] or max_rate <= 0:
        log("latency: skipped")
        return
    for i, frac in enumerate(C["lat_fractions"]):
        rate = max(50.0, frac * max_rate)
        log("latency at %.0f%% of %.0f (%s) = %.0f events/s for %ds ..." %
            (frac * 100, max_rate, res["latency_basis"]["basis"], rate, C["lat_seconds"]))
        lp, inp, topic, _, lerr = live_setup(X, "live%d" % i, rate,
                                             C["lat_seconds"] + C["lat_warmup_s"])
        procs = dict(servers, leadflow=lp.pid)
        one = run_child_measured(
            "latency_probe", [os.path.join(bindir, "latency_probe"), "--brokers", brokers,
                              "--topic", topic + ".events", "--transitions",
                              topic + ".transitions", "--input", inp, "--rate", "%.1f" % rate,
                              "--duration", str(C["lat_seconds"]), "--warmup-s",
                              str(C["lat_warmup_s"]), "--linger-ms",
                              str(C["lat_linger_ms"]), "--fetch-wait-ms",
                              str(C["lat_probe_fetch_wait_ms"]), "--samples",
                              os.path.join(work, "live%d.latencies.txt" % i)],
            procs, "sent", C["lat_seconds"] + C["lat_warmup_s"] + 90, os.path.join(work, "live%d.probe.out" % i),
            os.path.join(work, "live%d.probe.err" % i))
        one["fraction"] = frac
        one["rate_basis"] = res["latency_basis"]["basis"]
        one["leadflow_live_settings"] = {
            "kafka.properties": C["lat_lf_props"] + (
                ["fetch.wait.max.ms=%d" % C["lat_lf_fetch_wait_ms"]]
                if C["lat_lf_fetch_wait_ms"] > 0 else []),
            "processing.batch_max_ms": C["lat_lf_batch_max_ms"] or "as deploy/leadflow.yaml"}
        one["leadflow_exit"] = lp.poll()
        stop(lp, 60)
        # The same rate through the mock broker alone (produce -> consume of the events
        # themselves, no leadflow): the floor the two Kafka hops put under the latency.
        bt = topic + ".brokeronly"
        rep = control(cport, "topic-create %s %d" % (bt, C["lat_partitions"]))
        if not rep.startswith("ok"):
            fail("devbroker topic-create %s: %s" % (bt, rep))
        try:
            floor = run_child_measured(
                "latency_probe", [os.path.join(bindir, "latency_probe"), "--brokers", brokers,
                                  "--topic", bt, "--transitions", bt, "--match-key", "messageId",
                                  "--input", inp, "--rate", "%.1f" % rate, "--duration",
                                  str(C["lat_seconds"]), "--warmup-s", str(C["lat_warmup_s"]),
                                  "--linger-ms", str(C["lat_linger_ms"]),
                                  "--fetch-wait-ms", str(C["lat_probe_fetch_wait_ms"])],
                servers, "sent", C["lat_seconds"] + C["lat_warmup_s"] + 90,
                os.path.join(work, "live%d.brokeronly.out" % i),
                os.path.join(work, "live%d.brokeronly.err" % i))
            one["broker_only"] = {k: floor.get(k) for k in ("samples", "p50_ms", "p99_ms",
                                                            "p999_ms", "max_ms",
                                                            "warmup_samples", "warmup_max_ms")}
        except SystemExit:
            one["broker_only"] = None
        with open(lerr, errors="replace") as fh:
            errs = [l.strip() for l in fh if " error: " in l]
        if errs:
            one["leadflow_errors"] = errs[:5]
        # a compact histogram of the samples for the chart
        try:
            with open(os.path.join(work, "live%d.latencies.txt" % i)) as fh:
                lat = [float(x) for x in fh]
            one["cdf"] = [[round(100.0 * k / 200, 1), lat[min(len(lat) - 1, int(k / 200 * len(lat)))]]
                          for k in range(201)] if lat else []
        except OSError:
            one["cdf"] = []
        res["latency"].append(one)
        log("latency %.0f%%: sent %d at %.0f/s, %d samples, p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms"
            " (warm-up %.0f s: %d samples, max %.1f ms)"
            % (frac * 100, one["sent"], one["achieved_rate"], one["samples"], one["p50_ms"],
               one["p99_ms"], one["p999_ms"], C["lat_warmup_s"], one.get("warmup_samples", 0),
               one.get("warmup_max_ms", -1)))
        bo = one.get("broker_only") or {}
        if bo:
            log("latency %.0f%% mock broker alone: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms"
                % (frac * 100, bo.get("p50_ms", -1), bo.get("p99_ms", -1), bo.get("p999_ms", -1)))
        try:
            os.unlink(inp)
        except OSError:
            pass


if __name__ == "__main__":
    main()
