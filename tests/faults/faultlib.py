"""Shared code of leadflow's fault-injection tests (tests/faults/test_*.py).

Builds on the integration harness (tests/integration/lfharness.py, imported unchanged) and
adds what fault tests need:

- a devbroker with its control port (`broker-down`, `request-errors`, `watermarks`, ...);
- redis-server with chosen persistence (AOF always, or none) that can be stopped, killed and
  restarted on the same port and directory;
- the generated input (`leadflow gen --stats`), preloaded (every partition's low watermark
  checked to be 0) or produced at a rate while the processor consumes;
- a clean reference run over the same input (same seed), snapshotted into plain data and
  cached per process (and on disk per binary/input, so the files of one suite share it);
- the comparison of a faulted run's final Redis state and transitions with the reference
  (docs/contract.md "Guarantees"), with the semantics below;
- a runner whose last line is "N passed, N failed", that stops everything a test started
  and prints the tails of the process logs when a test fails.

Comparison semantics. A lead whose events all live in one partition must end field for field
equal to the reference (except the bookkeeping fields `v`, `o`; `dd` is compared as a set;
numbers to 1e-9 relative), with the same stage-set and lf:top entries (member and score)
and the same stage history. A lead that absorbed an anonymous visitor (an lf:alias:{anon}
points to it) had events on two partitions whose interleaving differs between any two runs:
for those only the order-independent fields are compared (every `n.<kind>`, `events`,
`first_seen`, `last_seen`, `fit`, `tr.*`, `ft.*`, `rules_version`); how many differ in the
order-dependent ones is printed, not failed. The alias map must be identical. The set of
transition ids of single-partition leads must equal the reference's; for every lead the
seqs on the topic are exactly 1..seq (repeats of an id are allowed: at least once). The
progress counters must equal the generator's counts exactly.

Environment: LF_BIN (the binary), LF_SOAK=1 (bigger runs), LF_SEED (the generator's seed),
LF_KEEP_TMP=1, LF_VERBOSE=1 (as in the harness), LF_NO_REF_CACHE=1 (always run the reference).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import lfharness as H  # noqa: E402  (re-executes under /usr/bin/python3 when needed)
import lfrecord  # noqa: E402

import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


TestFailure = H.TestFailure
check = H.check
check_eq = H.check_eq
wait_until = H.wait_until
LF_BIN = H.LF_BIN
EVENTS_TOPIC = H.EVENTS_TOPIC
TRANSITIONS_TOPIC = H.TRANSITIONS_TOPIC
DEAD_TOPIC = H.DEAD_TOPIC
STAGES = H.STAGES

SOAK = os.environ.get("LF_SOAK", "") not in ("", "0")
# The rules file the tests adapt (connections, test Kafka properties, batch size).
if os.environ.get("LF_RULES_TEMPLATE"):
    H.DEPLOY_RULES = os.environ["LF_RULES_TEMPLATE"]
SEED = int(os.environ.get("LF_SEED", "42"))

# Every processor of the fault suite logs JSON (log.format: json): each test ends by checking
# that every line of every `leadflow run` it started is one JSON object with ts, level and msg
# (check_json_logs). The tests' own checks read a run's log as text: log_text renders the
# objects back into the text format's lines.
JSON_LOGS = "log:\n  format: json\n"


def json_logs(path):
    """Make a rules file log JSON."""
    with open(path) as f:
        text = f.read()
    if "\nlog:\n" not in text:
        with open(path, "a") as f:
            f.write(JSON_LOGS)
    return path


def _as_text(line):
    try:
        o = json.loads(line)
    except ValueError:
        return line
    if not isinstance(o, dict) or "msg" not in o:
        return line
    who = "leadflow[%s]" % o["worker"] if "worker" in o else "leadflow"
    fields = "".join("[%s %s] " % (k, v) for k, v in o.items()
                     if k not in ("ts", "level", "msg", "worker"))
    return "%s %s %s: %s%s" % (o.get("ts", ""), who, o.get("level", ""), fields, o["msg"])


_raw_log_text = H.Proc.log_text


def _log_text(self):
    text = _raw_log_text(self)
    if not self.name.startswith("run-"):
        return text
    return "\n".join(_as_text(ln) for ln in text.split("\n"))


H.Proc.log_text = _log_text


def _json_log_problems(env):
    """The lines of this environment's leadflow runs that are not a JSON log object."""
    bad = []
    for p in env.procs:
        if not p.name.startswith("run-"):
            continue
        for n, line in enumerate(_raw_log_text(p).split("\n"), 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError:
                o = None
            if not (isinstance(o, dict) and {"ts", "level", "msg"} <= set(o)):
                bad.append("%s line %d: %r" % (os.path.basename(p.log_path), n, line[:300]))
    return bad


# Checked when an environment closes (its files go with it), read at the end of each test.
_JSON_PROBLEMS = []
_raw_env_close = H.Env.close


def _env_close(self):
    if not getattr(self, "_json_checked", False):
        self._json_checked = True
        _JSON_PROBLEMS.extend(_json_log_problems(self))
    _raw_env_close(self)


H.Env.close = _env_close


def check_json_logs(envs):
    """Every line of every leadflow run of the test's environments: one JSON object."""
    bad = list(_JSON_PROBLEMS)
    del _JSON_PROBLEMS[:]
    for env in envs:
        bad += _json_log_problems(env)
    check(not bad, "log lines that are not JSON objects:\n  " + "\n  ".join(bad[:20]))


# Fields compared for leads that absorbed a visitor (order-independent ones).
ORDER_FREE_FIELDS = ("events", "first_seen", "last_seen", "fit", "rules_version")
ORDER_FREE_PREFIXES = ("n.", "tr.", "ft.")
BOOKKEEPING = lfrecord.BOOKKEEPING


def log(msg):
    print("# " + msg, flush=True)


def soak(default, soak_value):
    return soak_value if SOAK else default


#---- Environment ----------------------------------------------------------------------------

def new_env(name):
    env = H.new_env(name)
    env.control_port = None
    env.redis_dir = None
    env.redis_args = None
    env.runs = []
    return env


def start_broker(env, partitions):
    """`leadflow devbroker --port 0 --control-port 0`: bootstrap servers and control port."""
    out_path = env.path("devbroker.out")
    out = open(out_path, "wb")
    proc = env._proc("devbroker", [LF_BIN, "devbroker", "--port", "0", "--partitions",
                                   str(partitions), "--control-port", "0"], stdout=out)
    out.close()

    def ready():
        check(proc.alive(), "devbroker exited (status %s)" % proc.p.returncode)
        with open(out_path) as f:
            m = re.search(r"^bootstrap\.servers=(\S+)$", f.read(), re.M)
        c = re.search(r"control=127\.0\.0\.1:(\d+)", proc.log_text())
        return (m.group(1), int(c.group(1))) if m and c else None

    env.brokers, env.control_port = wait_until(ready, 20, "devbroker's bootstrap and control")
    env.broker_proc = proc
    env.partitions = partitions
    return env.brokers


def control(env, line, timeout=10):
    """One control command; returns the reply line (fails unless it starts with `ok`)."""
    s = socket.create_connection(("127.0.0.1", env.control_port), timeout=timeout)
    try:
        s.sendall((line + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    reply = buf.decode().strip()
    check(reply.startswith("ok"), "devbroker control %r: %r" % (line, reply))
    return reply


def watermarks(env, topic=EVENTS_TOPIC):
    """{partition: (low, high)} from the devbroker's control port."""
    reply = control(env, "watermarks " + topic)
    out = {}
    for tok in reply.split()[2:]:
        p, lo, hi = tok.split(":")
        out[int(p)] = (int(lo), int(hi))
    return out


def check_retention(env, events):
    """Fail loudly when the mock dropped input (low watermark > 0) or duplicated it."""
    wm = watermarks(env)
    check_eq(len(wm), env.partitions, "partitions in `watermarks %s`" % EVENTS_TOPIC)
    lost = {p: lo for p, (lo, hi) in wm.items() if lo != 0}
    check(not lost, "the mock broker dropped input to retention (partition: low watermark) %s;"
          " use more partitions or fewer events" % lost)
    total = sum(hi for lo, hi in wm.values())
    check_eq(total, events, "messages on %s vs events generated (the mock duplicates a "
             "produce batch on a late reply)" % EVENTS_TOPIC)
    return wm


def start_redis(env, port=None, aof=False, dir_=None, extra=()):
    """redis-server on `port` (else a free one) in `dir_`; aof=True: appendonly yes,
    appendfsync always. No RDB save points (snapshots are taken explicitly). `extra`: more
    redis-server options."""
    port = port or env.redis_port or H.free_port()
    d = dir_ or env.redis_dir or env.path("redis-%d" % port)
    os.makedirs(d, exist_ok=True)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", d, "--dbfilename", "dump.rdb"]
    if aof:
        args += ["--appendonly", "yes", "--appendfsync", "always"]
    else:
        args += ["--appendonly", "no"]
    proc = env._proc("redis", args + list(extra))
    wait_until(lambda: env._ping(port) or not proc.alive() and _fail("redis-server exited"),
               20, "redis-server on port %d" % port)
    env.redis_port = port
    env.redis_proc = proc
    env.redis_dir = d
    env._r = None
    return proc


def _fail(msg):
    raise TestFailure(msg)


def write_rules(env, batch_max_events=None, batch_max_ms=50):
    """deploy/leadflow.yaml adapted, with gen's dedup window (lfharness.GEN_DEDUP_WINDOW) and
    `idle_clock: event`: the generated input is from
    2026-01 and arrives in chunks or at a rate, so with the default wall clock every pause in
    the input (caught up) would demote each cooled MQL at once, which a preloaded reference
    run does only at its end. The faults are what these tests compare, not the clock
    (tests/integration/test_clock.py tests the wall clock)."""
    bme = batch_max_events or soak(2000, 2000)
    path = env.deploy_rules(batch_max_ms=batch_max_ms, batch_max_events=bme)
    return json_logs(H.set_processing(path, idle_clock="event", dedup_window=H.GEN_DEDUP_WINDOW))


def start_run(env, instance, extra=()):
    p = env.start_run(instance, extra=list(extra))
    env.runs.append(p)
    return p


def gen_args(events, leads, seed=None):
    return ["--leads", str(leads), "--events", str(events), "--seed",
            str(SEED if seed is None else seed)]


def generate(env, args, rate=None, wait=True):
    """`leadflow gen ARGS --brokers ... --stats FILE`; returns (proc, stats path). wait:
    returns (stats dict, proc) after it finished and the input was checked."""
    stats_path = env.path("gen-stats.json")
    extra = ["--rate", str(rate)] if rate else []
    g = env._proc("gen", [LF_BIN, "gen"] + list(args) + extra +
                  ["--brokers", env.brokers, "--topic", EVENTS_TOPIC, "--stats", stats_path,
                   "--quiet"])
    if not wait:
        return g, stats_path
    return finish_gen(env, g, stats_path), g


def finish_gen(env, g, stats_path, timeout=600):
    try:
        rc = g.p.wait(timeout)
    except Exception:
        raise TestFailure("leadflow gen did not finish in %d s" % timeout)
    check_eq(rc, 0, "leadflow gen exit status")
    with open(stats_path) as f:
        st = json.load(f)
    check_eq(st["valid"] + st["duplicates"] + st["bad"], st["events"], "gen stats sum")
    check_retention(env, st["events"])
    return st


#---- Progress and waiting ---------------------------------------------------------------------

def progress(env):
    try:
        return env.progress()
    except (H.redislib.exceptions.ConnectionError, H.redislib.exceptions.TimeoutError):
        return None


def consumed(env):
    p = progress(env)
    return p["consumed"] if p else -1


def wait_assigned_and_progress(env, proc, since_consumed, timeout=60):
    """Until `proc` logged an assignment and the consumed counter moved past since_consumed
    (or everything was consumed)."""
    def cond():
        check(proc.alive(), "leadflow run %s exited (status %s)" % (proc.name,
                                                                    proc.p.returncode))
        if not re.search(r"assigned [1-9][0-9]* partition", proc.log_text()):
            return None
        c = consumed(env)
        return c if c > since_consumed else None
    return wait_until(cond, timeout, "%s assigned and making progress" % proc.name, 0.05)


def wait_all_consumed(env, events, procs, timeout=300):
    def cond():
        for pr in procs:
            check(pr.alive(), "leadflow run %s exited (status %s)" % (pr.name, pr.p.returncode))
        p = progress(env)
        if p is None:
            return None
        # More than produced is a double count: reported by the comparison after settling.
        return p if p["consumed"] >= events else None
    return wait_until(cond, timeout, "all %d events consumed (at %d)" % (events, consumed(env)),
                      0.25)


def settle(env, procs, quiet_s=3.0, timeout=120):
    """The stage sets and transition counters stay unchanged for quiet_s, and the outboxes
    are empty (every transition delivered)."""
    def snap():
        pipe = env.r.pipeline(transaction=False)
        for s in STAGES:
            pipe.zcard("lf:stage:" + s)
        outbox = sum(env.r.hlen(k) for k in env.r.scan_iter(match="lf:outbox:*"))
        return (env.progress()["transitions"], tuple(pipe.execute()), outbox)
    last, since = snap(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - since < quiet_s or last[2] != 0:
        for pr in procs:
            check(pr.alive(), "leadflow run %s exited (status %s)" % (pr.name, pr.p.returncode))
        check(time.monotonic() < deadline, "the state kept changing (or the outbox stayed "
              "non-empty: %d entries) for %.0f s" % (last[2], timeout))
        time.sleep(0.25)
        cur = snap()
        if cur != last:
            last, since = cur, time.monotonic()
    return last


def stop_runs(procs, what="exit status"):
    for pr in procs:
        if pr.alive():
            rc = pr.stop(timeout=15)
            check_eq(rc, 0, "%s %s after SIGTERM" % (pr.name, what))


def kill9(proc):
    if proc.alive():
        os.kill(proc.pid, signal.SIGKILL)
        proc.p.wait(10)


#---- Snapshots --------------------------------------------------------------------------------

def read_transitions(env, want_unique, timeout=90):
    """Every message of the transitions topic: [(transition_id, lead_id, seq)]. Reads until
    at least want_unique distinct ids arrived and nothing more came for 2 s."""
    seen = set()

    def enough(msgs):
        for m in msgs[len(enough.done):]:
            seen.add(_tid(m))
        enough.done = msgs[:]
        return len(seen) >= want_unique
    enough.done = []
    msgs = env.consume(TRANSITIONS_TOPIC, enough, timeout=timeout, idle_after=2.0)
    out = []
    for m in msgs:
        t = H.decode_transition(m.value())
        out.append((t["transition_id"], t["lead_id"], int(t["seq"]),
                    m.key().decode() if m.key() else None))
    return out


def _tid(m):
    for k, v in (m.headers() or []):
        if k == "lf.transition_id":
            return v.decode()
    return H.decode_transition(m.value())["transition_id"]


def snapshot(env):
    """The whole observable Redis state + the transitions topic, as plain data."""
    r = env.r
    leads = env.all_leads()
    alias = {k[len("lf:alias:{"):-1]: r.get(k) for k in r.scan_iter(match="lf:alias:*",
                                                                   count=1000)}
    stages = {s: dict(r.zrange("lf:stage:" + s, 0, -1, withscores=True)) for s in STAGES}
    top = dict(r.zrange("lf:top", 0, -1, withscores=True))
    hist = {lid: H.history(h) for lid, h in leads.items()}
    outbox = {k: r.hlen(k) for k in r.scan_iter(match="lf:outbox:*")}
    prog = env.progress()
    total_seq = sum(int(h.get("seq", 0)) for h in leads.values())
    trans = read_transitions(env, total_seq)
    return {"leads": leads, "alias": alias, "stages": stages, "top": top, "hist": hist,
            "outbox": outbox, "progress": prog, "transitions": trans}


#---- The reference run --------------------------------------------------------------------------

_REF = {}


def _ref_key(args, partitions):
    h = hashlib.sha256()
    st = os.stat(LF_BIN)
    h.update(("%s %d %d" % (os.path.realpath(LF_BIN), st.st_mtime_ns, st.st_size)).encode())
    # the rules, and this file (how a snapshot is taken) and the harness
    for path in (H.DEPLOY_RULES, __file__, H.__file__):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(json.dumps([list(args), partitions]).encode())
    return h.hexdigest()[:24]


def reference(args, partitions):
    """The clean, uninterrupted run over `leadflow gen ARGS` (preloaded), snapshotted."""
    key = _ref_key(args, partitions)
    if key in _REF:
        return _REF[key]
    cache = os.path.join(tempfile.gettempdir(), "lf-faults-ref-%d" % os.getuid(), key + ".json")
    if not os.environ.get("LF_NO_REF_CACHE") and os.path.exists(cache):
        with open(cache) as f:
            ref = json.load(f)
        log("reference: cached %s" % cache)
        _REF[key] = ref
        return ref
    t0 = time.monotonic()
    env = new_env("ref")
    try:
        start_redis(env)
        start_broker(env, partitions)
        write_rules(env)
        st, _ = generate(env, args)
        run = start_run(env, "ref")
        wait_all_consumed(env, st["events"], [run], timeout=600)
        settle(env, [run])
        stop_runs([run])
        ref = snapshot(env)
        ref["gen_stats"] = st
        check_progress(ref["progress"], st, "reference: ")
    except Exception:
        print(tail_logs(env), flush=True)
        raise
    finally:
        env.close()
    log("reference run: %d events, %d leads, %d aliases, %d transitions in %.1f s"
        % (st["events"], len(ref["leads"]), len(ref["alias"]), len(ref["transitions"]),
           time.monotonic() - t0))
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = cache + ".%d.tmp" % os.getpid()
        with open(tmp, "w") as f:
            json.dump(ref, f)
        os.replace(tmp, cache)
    except OSError:
        pass
    _REF[key] = ref
    return ref


#---- The comparison ---------------------------------------------------------------------------

def progress_errors(p, st):
    errs = []
    if p["consumed"] != p["applied"] + p["duplicates"] + p["dead"]:
        errs.append("conservation: consumed %d != applied %d + duplicates %d + dead %d"
                    % (p["consumed"], p["applied"], p["duplicates"], p["dead"]))
    for k, g in (("consumed", "events"), ("applied", "valid"), ("duplicates", "duplicates"),
                 ("dead", "bad")):
        if p[k] != st[g]:
            errs.append("progress %s = %d, gen's %s = %d (%+d)" % (k, p[k], g, st[g],
                                                                 p[k] - st[g]))
    return errs


def check_progress(p, st, label=""):
    errs = progress_errors(p, st)
    check(not errs, label + "; ".join(errs))


def _num_eq(a, b):
    if a == b:
        return True
    try:
        return H.close_rel(float(a), float(b))
    except (TypeError, ValueError):
        return False


def _is_dd(f):
    return re.fullmatch(r"dd\d*", f) is not None


def _dd_ring(h):
    """The recent-messageId ring of a lead hash: "dd", then "dd2", "dd3", ... concatenated."""
    parts = sorted((int(f[2:] or 1), v) for f, v in h.items() if _is_dd(f))
    return "".join(v for _, v in parts)


def _order_free(f):
    return f in ORDER_FREE_FIELDS or f.startswith(ORDER_FREE_PREFIXES)


def compare(got, ref, st, label=""):
    """Fails with the first differences (up to 15); returns a summary dict."""
    errs = []

    def err(msg):
        errs.append(msg)

    errs.extend(progress_errors(got["progress"], st))
    if got["alias"] != ref["alias"]:
        a, b = got["alias"], ref["alias"]
        diff = sorted(set(a.items()) ^ set(b.items()))[:5]
        err("alias map differs (%d vs %d entries; first differing %s)" % (len(a), len(b), diff))
    absorbed = set(ref["alias"].values())
    gl, rl = got["leads"], ref["leads"]
    if set(gl) != set(rl):
        err("lead ids differ: %d only here %s, %d only in the reference %s"
            % (len(set(gl) - set(rl)), sorted(set(gl) - set(rl))[:5], len(set(rl) - set(gl)),
               sorted(set(rl) - set(gl))[:5]))
    order_diff = 0
    for lid in sorted(set(gl) & set(rl)):
        a, b = gl[lid], rl[lid]
        multi = lid in absorbed
        fields = (set(a) | set(b)) - set(BOOKKEEPING)
        fields = {f for f in fields if not _is_dd(f)} | {"dd"}  # the ring: dd, dd2, ...
        lead_order_diff = False
        for f in sorted(fields):
            if multi and not _order_free(f):
                if f not in ("dd",) and not _num_eq(a.get(f), b.get(f)):
                    lead_order_diff = True
                continue
            if f == "dd":
                sa = _dd_set(_dd_ring(a))
                sb = _dd_set(_dd_ring(b))
                if sa != sb:
                    err("lead %s field dd (as a set) differs: %d vs %d ids, %d in common"
                        % (lid, len(sa), len(sb), len(sa & sb)))
                continue
            if not _num_eq(a.get(f), b.get(f)):
                err("lead %s%s field %s: %r, reference %r"
                    % (lid, " (absorbed a visitor)" if multi else "", f, a.get(f), b.get(f)))
        order_diff += lead_order_diff
        if not multi and got["hist"].get(lid) != ref["hist"].get(lid):
            err("lead %s stage history: %r, reference %r" % (lid, got["hist"].get(lid),
                                                              ref["hist"].get(lid)))
    # Stage sets and lf:top: exact for single-partition leads; consistent for all.
    for s in STAGES:
        gs, rs = got["stages"][s], ref["stages"][s]
        for lid in set(gs) | set(rs):
            if lid in absorbed:
                continue
            if lid not in gs or lid not in rs or not _num_eq(gs[lid], rs[lid]):
                err("lf:stage:%s entry of %s: %r, reference %r" % (s, lid, gs.get(lid),
                                                                  rs.get(lid)))
    member = {}
    for s in STAGES:
        for lid in got["stages"][s]:
            member.setdefault(lid, []).append(s)
    for lid, h in gl.items():
        if member.get(lid) != H.stage_sets_of(h.get("stage")):
            err("lead %s has stage %r but is in stage sets %r" % (lid, h.get("stage"),
                                                                 member.get(lid)))
    # A stage set's score is the entry time (mql: the exit time, not checked here).
    for which, snap in (("", got), ("the clean REFERENCE run: ", ref)):
        for s in STAGES:
            if s == "mql":
                continue
            for lid, sc in snap["stages"][s].items():
                h = snap["leads"].get(lid)
                if h and h.get("stage") == s and not _num_eq(sc, h.get("stage_at")):
                    err("%slf:stage:%s score of %s is %r but its hash says stage_at %r"
                        % (which, s, lid, sc, h.get("stage_at")))
    extra = set(member) - set(gl)
    if extra:
        err("stage-set members without a lead hash: %s" % sorted(extra)[:5])
    gt, rt = got["top"], ref["top"]
    known = {lid for lid, h in gl.items() if h.get("stage") != "visitor"}
    if set(gt) != known:
        err("lf:top members != known leads (%d vs %d)" % (len(gt), len(known)))
    for lid in set(gt) | set(rt):
        if lid in absorbed:
            continue
        if lid not in gt or lid not in rt or not _num_eq(gt[lid], rt[lid]):
            err("lf:top score of %s: %r, reference %r" % (lid, gt.get(lid), rt.get(lid)))
    # Outboxes drained.
    left = {k: n for k, n in got["outbox"].items() if n}
    if left:
        err("transitions left in the outbox (never published): %s" % left)
    # Transitions.
    tr = got["transitions"]
    ids = [t[0] for t in tr]
    per = {}
    for tid, lid, seq, key in tr:
        if tid != "%s:%d" % (lid, seq):
            err("transition_id %r does not name lead %r seq %d" % (tid, lid, seq))
        if key != lid:
            err("transition %s keyed %r" % (tid, key))
        per.setdefault(lid, set()).add(seq)
    for lid, h in gl.items():
        n = int(h.get("seq", 0))
        seqs = per.get(lid, set())
        if seqs != set(range(1, n + 1)):
            missing = sorted(set(range(1, n + 1)) - seqs)
            extra_s = sorted(seqs - set(range(1, n + 1)))
            err("lead %s: transition seqs on the topic missing %s, beyond seq %d: %s"
                % (lid, missing[:10], n, extra_s[:10]))
    stray = set(per) - set(gl)
    if stray:
        err("transitions of ids without a lead hash: %s" % sorted(stray)[:5])
    single_got = {t for t in ids if t.rsplit(":", 1)[0] not in absorbed}
    single_ref = {t[0] for t in ref["transitions"] if t[1] not in absorbed}
    if single_got != single_ref:
        err("transition ids of single-partition leads differ: %d only here %s, %d only in the "
            "reference %s" % (len(single_got - single_ref), sorted(single_got - single_ref)[:5],
                              len(single_ref - single_got), sorted(single_ref - single_got)[:5]))
    total_seq = sum(int(h.get("seq", 0)) for h in gl.values())
    if got["progress"]["transitions"] != total_seq:
        err("progress transitions counter %d != sum of the leads' seq %d"
            % (got["progress"]["transitions"], total_seq))
    dup = len(ids) - len(set(ids))
    summary = {"leads": len(gl), "absorbed": len(absorbed & set(gl)),
               "absorbed_order_dependent_diff": order_diff, "transitions": len(set(ids)),
               "duplicate_transition_msgs": dup}
    log("%scompared %d leads (%d absorbed a visitor; %d of those differ in order-dependent "
        "fields eng/t/stage/seq/cap: allowed), %d transition ids, %d repeated messages"
        % (label, summary["leads"], summary["absorbed"], order_diff, summary["transitions"],
           dup))
    if errs and os.environ.get("LF_DUMP_DIR"):
        d = os.environ["LF_DUMP_DIR"]
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "got.json"), "w") as f:
            json.dump(got, f)
        with open(os.path.join(d, "ref.json"), "w") as f:
            json.dump(ref, f)
    if errs:
        raise TestFailure("%s%d difference(s) from the reference run:\n  %s%s"
                          % (label, len(errs), "\n  ".join(errs[:15]),
                             "\n  ..." if len(errs) > 15 else ""))
    return summary


_HEX = set("0123456789abcdef")


def _dd_set(s):
    """The recent messageId hashes: 16 hex digits each (older builds) or 8 base64url
    characters each."""
    w = 16 if len(s) % 16 == 0 and set(s) <= _HEX else 8
    return {s[i:i + w] for i in range(0, len(s), w)}


def final_check(env, ref, st, procs, label=""):
    """Wait for the end of the input, settle, stop the processors cleanly, compare."""
    wait_all_consumed(env, st["events"], procs)
    settle(env, procs)
    stop_runs(procs)
    got = snapshot(env)
    return compare(got, ref, st, label)


#---- Runner ---------------------------------------------------------------------------------------

def tail_logs(env, lines=40):
    out = []
    for p in env.procs:
        text = p.log_text().rstrip("\n").split("\n")
        if p.name.startswith("run-"):
            n = lines
        elif p.name == "gen":
            n = 10
        else:
            n = 15
        t = text[-n:]
        out.append("---- %s (pid %d, exit %s, %s) last %d line(s):\n%s"
                   % (p.name, p.pid, p.p.returncode, os.path.basename(p.log_path), len(t),
                      "\n".join(t)))
    return "\n".join(out)


def _checking_json_logs(fn):
    def test():
        del _JSON_PROBLEMS[:]
        fn()
        check_json_logs(H._CURRENT_ENVS)
    test.__name__ = fn.__name__
    return test


def main(tests):
    """The harness's runner, with the fault suite's longer log tails on failure; each test
    also checks that its processors' logs are JSON lines."""
    H.main([_checking_json_logs(t) for t in tests], env_logs=tail_logs)
