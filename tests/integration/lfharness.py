"""Shared harness of leadflow's integration tests.

Starts private services (redis-server, `leadflow devbroker`, `leadflow run`) on free loopback
ports in a temporary directory, produces and consumes Kafka messages, reads Redis, and runs
test functions with a tiny runner whose last line is "N passed, N failed".

Everything started is stopped (SIGTERM, then SIGKILL after 5 s) when a test ends, passed or
failed, and at interpreter exit; temporary directories are removed.

Environment: LF_BIN = the leadflow binary (default build/leadflow); LF_KEEP_TMP=1 keeps the
temporary directories; LF_VERBOSE=1 prints process logs even for passing tests;
LF_ONLY=name runs one test of a file; LF_TEST_KAFKA_DEBUG=consumer,fetch,cgrp puts librdkafka's
debug log into every run's log.

Needs Debian's python3-confluent-kafka and python3-redis. MessagePack is encoded and decoded
by the small codec below (python3-msgpack is not required).
"""
import os
import sys

# The Debian packages live in /usr/bin/python3's dist-packages; a python3 from pyenv or a
# venv earlier in PATH does not see them: run the test again with the system interpreter.
try:
    import confluent_kafka  # noqa: F401
    import redis as _redis_mod  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3") and not os.environ.get("LF_REEXEC"):
        os.environ["LF_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import atexit
import json
import math
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import traceback

from confluent_kafka import Consumer, Producer, TopicPartition
import redis as redislib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LF_BIN = os.environ.get("LF_BIN") or os.path.join(ROOT, "build", "leadflow")
DEPLOY_RULES = os.path.join(ROOT, "deploy", "leadflow.yaml")

EVENTS_TOPIC = "leadflow.events"
TRANSITIONS_TOPIC = "leadflow.stage-transitions"
DEAD_TOPIC = "leadflow.dead-letter"
DAY_MS = 86400000
HOUR_MS = 3600000

# Settings that make the mock cluster reliable (shared/MOCK-BROKER.md).
KAFKA_TEST_PROPS = {
    "session.timeout.ms": "3000",
    "heartbeat.interval.ms": "500",
    "reconnect.backoff.max.ms": "1000",
}
if os.environ.get("LF_TEST_KAFKA_DEBUG"):
    KAFKA_TEST_PROPS["debug"] = os.environ["LF_TEST_KAFKA_DEBUG"]


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def close_rel(a, b, rel=1e-9, abs_tol=1e-9):
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_tol)


def check_close(got, want, what, rel=1e-9):
    if not close_rel(got, want, rel):
        raise TestFailure("%s: got %r, want %r (relative tolerance %g)" % (what, got, want, rel))


def wait_until(cond, timeout, what, interval=0.1):
    """Poll cond() until it returns a true value; raise after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
        except (redislib.exceptions.ConnectionError, redislib.exceptions.TimeoutError) as e:
            last = None
            err = e
        if last:
            return last
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def http_get(port, path):
    """GET http://127.0.0.1:port/path: (status, body); (0, why) when nothing answers."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:  # not listening (yet), or no answer
        return 0, str(e)


def unit_file_sections(path):
    """A systemd unit file: {section: {key: [values in order]}} (comments dropped)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            if section is not None and "=" in line:
                k, v = line.split("=", 1)
                section.setdefault(k.strip(), []).append(v.strip())
    return out


def free_port_pair_bus():
    """A free port p below 55536 whose cluster bus port p + 10000 is free too."""
    import random
    for _ in range(200):
        p = random.randint(20000, 55000)
        socks = []
        try:
            for q in (p, p + 10000):
                s = socket.socket()
                s.bind(("127.0.0.1", q))
                socks.append(s)
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise TestFailure("no free port pair for a cluster node")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


#---- MessagePack (the subset events and transitions use) ------------------------------------

def mp_pack(o):
    out = bytearray()
    _mp_pack(o, out)
    return bytes(out)


def _mp_pack(o, out):
    if o is None:
        out.append(0xc0)
    elif o is True:
        out.append(0xc3)
    elif o is False:
        out.append(0xc2)
    elif isinstance(o, int):
        if 0 <= o < 128:
            out.append(o)
        elif -32 <= o < 0:
            out.append(o & 0xff)
        elif 0 <= o < 2 ** 64:
            if o < 2 ** 8:
                out += b"\xcc" + struct.pack(">B", o)
            elif o < 2 ** 16:
                out += b"\xcd" + struct.pack(">H", o)
            elif o < 2 ** 32:
                out += b"\xce" + struct.pack(">I", o)
            else:
                out += b"\xcf" + struct.pack(">Q", o)
        else:
            out += b"\xd3" + struct.pack(">q", o)
    elif isinstance(o, float):
        out += b"\xcb" + struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(0xa0 | n)
        elif n < 256:
            out += b"\xd9" + struct.pack(">B", n)
        elif n < 65536:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += b
    elif isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            out += b"\xc4" + struct.pack(">B", n)
        elif n < 65536:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += o
    elif isinstance(o, (list, tuple)):
        n = len(o)
        if n < 16:
            out.append(0x90 | n)
        elif n < 65536:
            out += b"\xdc" + struct.pack(">H", n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for x in o:
            _mp_pack(x, out)
    elif isinstance(o, dict):
        n = len(o)
        if n < 16:
            out.append(0x80 | n)
        elif n < 65536:
            out += b"\xde" + struct.pack(">H", n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for k, v in o.items():
            _mp_pack(k, out)
            _mp_pack(v, out)
    else:
        raise TypeError("cannot pack %r" % (o,))


def mp_unpack(b):
    v, i = _mp_unpack(b, 0)
    if i != len(b):
        raise ValueError("%d trailing bytes after the MessagePack value" % (len(b) - i))
    return v


def _mp_unpack(b, i):
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xe0:
        return c - 256, i
    if 0x80 <= c <= 0x8f:
        return _mp_map(b, i, c & 0x0f)
    if 0x90 <= c <= 0x9f:
        return _mp_arr(b, i, c & 0x0f)
    if 0xa0 <= c <= 0xbf:
        n = c & 0x1f
        return b[i:i + n].decode("utf-8"), i + n
    fixed = {
        0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
        0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q",
        0xca: ">f", 0xcb: ">d",
    }
    if c == 0xc0:
        return None, i
    if c == 0xc2:
        return False, i
    if c == 0xc3:
        return True, i
    if c in fixed:
        fmt = fixed[c]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, b[i:i + n])[0], i + n
    lens = {0xd9: ">B", 0xda: ">H", 0xdb: ">I", 0xc4: ">B", 0xc5: ">H", 0xc6: ">I",
            0xdc: ">H", 0xdd: ">I", 0xde: ">H", 0xdf: ">I"}
    if c in lens:
        fmt = lens[c]
        k = struct.calcsize(fmt)
        n = struct.unpack(fmt, b[i:i + k])[0]
        i += k
        if c in (0xd9, 0xda, 0xdb):
            return b[i:i + n].decode("utf-8"), i + n
        if c in (0xc4, 0xc5, 0xc6):
            return bytes(b[i:i + n]), i + n
        if c in (0xdc, 0xdd):
            return _mp_arr(b, i, n)
        return _mp_map(b, i, n)
    raise ValueError("unsupported MessagePack byte 0x%02x" % c)


def _mp_map(b, i, n):
    d = {}
    for _ in range(n):
        k, i = _mp_unpack(b, i)
        v, i = _mp_unpack(b, i)
        d[k] = v
    return d, i


def _mp_arr(b, i, n):
    a = []
    for _ in range(n):
        v, i = _mp_unpack(b, i)
        a.append(v)
    return a, i


def decode_transition(value):
    if value[:1] == b"{":
        return json.loads(value)
    return mp_unpack(value)


#---- Events ---------------------------------------------------------------------------------

def history(lead_hash):
    """A lead's stage history from its record (lfrecord.record, or a hash of the layout
    before): the values of fields h0..h7, "seq|from|to|reason|at|score", oldest first."""
    hs = [v for k, v in lead_hash.items() if re.fullmatch(r"h[0-7]", k)]
    return sorted(hs, key=lambda x: int(x.split("|")[0]))


def iso(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ms % 1000)


def event(type_, mid, ts_ms, user=None, anon=None, event=None, url=None, traits=None,
          properties=None, campaign=None, ts_format="iso", **extra):
    """A Segment-style event as a dict."""
    e = {"messageId": mid, "type": type_}
    if event is not None:
        e["event"] = event
    if user is not None:
        e["userId"] = user
    if anon is not None:
        e["anonymousId"] = anon
    e["timestamp"] = iso(ts_ms) if ts_format == "iso" else ts_ms
    ctx = {}
    if url is not None:
        ctx["page"] = {"url": url}
    if campaign is not None:
        ctx["campaign"] = campaign
    if ctx:
        e["context"] = ctx
    if traits is not None:
        e["traits"] = traits
    if properties is not None:
        e["properties"] = properties
    e.update(extra)
    return e


def encode(e, fmt):
    if fmt == "json":
        return json.dumps(e, separators=(",", ":")).encode()
    return mp_pack(e)


def event_key(e):
    return e.get("userId") or e.get("anonymousId")


#---- Processes --------------------------------------------------------------------------------

_LIVE = []  # every Proc not yet stopped, for atexit


class Proc:
    def __init__(self, name, argv, log_path, env=None, stdout=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=stdout if stdout is not None else self.log,
                                  stderr=self.log, stdin=subprocess.DEVNULL, env=env,
                                  start_new_session=True)
        _LIVE.append(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.alive():
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        if self in _LIVE:
            _LIVE.remove(self)
        try:
            self.log.close()
        except Exception:
            pass
        return self.p.returncode

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait(10)
        return self.stop()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _stop_all():
    for p in list(_LIVE):
        try:
            p.stop()
        except Exception:
            pass


atexit.register(_stop_all)


def _on_term(sig, frame):
    _stop_all()
    sys.exit(1)


signal.signal(signal.SIGTERM, _on_term)


#---- An environment: tmp dir + redis + broker + processors ----------------------------------

class Env:
    """One test's private world. Use as a context manager."""

    def __init__(self, name="t"):
        self.tmp = tempfile.mkdtemp(prefix="lf-%s-" % name)
        self.procs = []
        self.redis_port = None
        self.redis_proc = None
        self.brokers = None
        self.broker_proc = None
        self.group = "lf-test-%s-%d" % (name, os.getpid())
        self.rules_path = None
        self._r = None
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def path(self, name):
        return os.path.join(self.tmp, name)

    def _proc(self, name, argv, **kw):
        self._n += 1
        p = Proc(name, argv, self.path("%02d-%s.log" % (self._n, name)), **kw)
        self.procs.append(p)
        return p

    def logs(self):
        out = []
        for p in self.procs:
            text = p.log_text()
            if len(text) > 6000:
                text = "...\n" + text[-6000:]
            out.append("---- %s (%s) exit=%s\n%s" % (p.name, " ".join(p.argv[:3]),
                                                     p.p.returncode, text))
        return "\n".join(out)

    def close(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:
                pass
        if self._r is not None:
            try:
                self._r.close()
            except Exception:
                pass
        if not os.environ.get("LF_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- redis
    def start_redis(self, port=None):
        """Start redis-server (on `port`, else a free one) and wait until it answers PING."""
        for attempt in range(5):
            p = port or free_port()
            d = self.path("redis-%d" % p)
            os.makedirs(d, exist_ok=True)
            proc = self._proc("redis", ["redis-server", "--port", str(p), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", d])
            try:
                wait_until(lambda: self._ping(p), 10, "redis-server on port %d" % p)
            except TestFailure:
                proc.stop()
                if port:
                    raise
                continue
            self.redis_port = p
            self.redis_proc = proc
            self._r = None
            return p
        raise TestFailure("could not start redis-server")

    def start_cluster(self, masters=3, replicas=0, timeout=30):
        """A local Redis Cluster: masters * (1 + replicas) redis-server --cluster-enabled yes on
        free loopback ports (each with its bus port, +10000, free too), joined by
        `redis-cli --cluster create`; returns the ports once every node says cluster_state:ok."""
        ports, procs = [], []
        while len(ports) < masters * (1 + replicas):
            p = free_port_pair_bus()
            d = self.path("cluster-%d" % p)
            os.makedirs(d, exist_ok=True)
            procs.append(self._proc("redis-cluster-%d" % p, [
                "redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled",
                "yes", "--cluster-config-file", os.path.join(d, "nodes.conf"),
                "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--dir",
                d]))
            ports.append(p)
        for p in ports:
            wait_until(lambda p=p: self._ping(p), 10, "cluster node on port %d" % p)
        r = subprocess.run(["redis-cli", "--cluster", "create"] +
                           ["127.0.0.1:%d" % p for p in ports] +
                           ["--cluster-replicas", str(replicas), "--cluster-yes"],
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        check_eq(r.returncode, 0, "redis-cli --cluster create:\n" + r.stdout.decode()[-1500:] +
                 r.stderr.decode()[-500:])

        def ok(p):
            c = redislib.Redis(host="127.0.0.1", port=p, socket_timeout=2)
            try:
                return b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
            finally:
                c.close()
        for p in ports:
            wait_until(lambda p=p: ok(p), timeout, "cluster_state:ok on %d" % p)
        self.cluster_ports = ports
        return ports

    def _ping(self, port):
        try:
            c = redislib.Redis(host="127.0.0.1", port=port, socket_timeout=1)
            ok = c.ping()
            c.close()
            return ok
        except redislib.exceptions.RedisError:
            return False

    @property
    def r(self):
        if self._r is None:
            self._r = redislib.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=10,
                                     decode_responses=True)
        return self._r

    @property
    def rb(self):
        """The same Redis, replies as bytes (packed records are binary)."""
        if getattr(self, "_rb", None) is None:
            self._rb = redislib.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=10)
        return self._rb

    # -- broker
    def start_broker(self, partitions=2):
        """`leadflow devbroker --port 0`: wait for its bootstrap.servers line."""
        out_path = self.path("devbroker-%d.out" % (self._n + 1))
        out = open(out_path, "wb")
        proc = self._proc("devbroker", [LF_BIN, "devbroker", "--port", "0", "--partitions",
                                        str(partitions)], stdout=out)
        out.close()

        def ready():
            check(proc.alive(), "devbroker exited (status %s)" % proc.p.returncode)
            with open(out_path) as f:
                m = re.search(r"^bootstrap\.servers=(\S+)$", f.read(), re.M)
            return m.group(1) if m else None

        self.brokers = wait_until(ready, 20, "devbroker's bootstrap.servers line")
        self.broker_proc = proc
        return self.brokers

    # -- rules
    def write_rules(self, text, name="leadflow.yaml"):
        self.rules_path = self.path(name)
        with open(self.rules_path, "w") as f:
            f.write(text)
        return self.rules_path

    def connections(self, props=None, redis_extra=""):
        """The kafka: and redis: sections of a rules file for this env (redis_extra: more
        redis: lines, indented)."""
        return (kafka_block(self.brokers, self.group, props) +
                "redis:\n  host: 127.0.0.1\n  port: %d\n%s" % (self.redis_port, redis_extra))

    def deploy_rules(self, batch_max_ms=20, batch_max_events=None, extra_processing=None):
        """deploy/leadflow.yaml with this env's broker, Redis, group and test properties."""
        with open(DEPLOY_RULES) as f:
            text = f.read()
        return self.write_rules(adapt_rules(text, self.brokers, self.redis_port, self.group,
                                            batch_max_ms, batch_max_events))

    # -- processor
    def start_run(self, instance="lf-test", rules=None, extra=()):
        return self._proc("run-" + instance, [LF_BIN, "run", "-c", rules or self.rules_path,
                                              "--instance", instance] + list(extra))

    def run_cli(self, args, timeout=30):
        r = subprocess.run([LF_BIN] + list(args), capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8",
                                                                                  "replace")

    def generate(self, leads, events, seed, extra=(), timeout=120):
        """`leadflow gen` into the events topic (its exit status checked); returns the topic's
        high watermarks."""
        gen = self._proc("gen", [LF_BIN, "gen", "--leads", str(leads), "--events", str(events),
                                 "--seed", str(seed), "--brokers", self.brokers, "--topic",
                                 EVENTS_TOPIC, "--quiet"] + list(extra))
        check_eq(gen.p.wait(timeout), 0, "leadflow gen exit status")
        return self.high_watermarks(EVENTS_TOPIC)

    # -- progress
    def wm_key(self, prefix="lf:", topic=EVENTS_TOPIC):
        return "%swm:%s:%s" % (prefix, self.group, topic)

    def progress(self, prefix="lf:"):
        """Sums of the per-partition counters of the progress hash."""
        h = self.r.hgetall(self.wm_key(prefix))
        tot = {k: 0 for k in ("consumed", "applied", "duplicates", "dead", "filtered",
                              "transitions")}
        for k, v in h.items():
            if "." in k and k.split(".", 1)[1] in tot:  # not "<p>.ts", an event time
                c = k.split(".", 1)[1]
                tot[c] += int(v)
        return tot

    def wait_consumed(self, n, timeout=60, proc=None):
        """Until the progress hash says n events were consumed; fails early when the
        processor died."""
        def cond():
            if proc is not None:
                check(proc.alive(), "leadflow run exited (status %s)" % proc.p.returncode)
            p = self.progress()
            check(p["consumed"] <= n, "consumed %d > %d events produced" % (p["consumed"], n))
            return p if p["consumed"] == n else None
        try:
            return wait_until(cond, timeout, "progress consumed == %d" % n, interval=0.2)
        except TestFailure as e:
            # Tell "the input never arrived" apart from "the processor stopped taking it".
            try:
                marks = self.high_watermarks(EVENTS_TOPIC)
            except Exception as w:  # noqa: BLE001 (a diagnostic must not hide the failure)
                marks = "unknown (%s)" % w
            raise TestFailure("%s; progress %s; input topic high watermarks %s"
                              % (e, self.progress(), marks))

    def settle(self, proc=None, quiet_s=3.0, timeout=60):
        """After the input is consumed the processor may still write (the decay sweep moves
        MQLs to nurture when the stream's event time passes their exit time): wait until the
        transitions counter and the stage set sizes stay unchanged for quiet_s seconds."""
        def snap():
            pipe = self.r.pipeline(transaction=False)
            for s in STAGES:
                pipe.zcard("lf:stage:" + s)
            return (self.progress()["transitions"], tuple(pipe.execute()))
        last, since = snap(), time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() - since < quiet_s:
            if proc is not None:
                check(proc.alive(), "leadflow run exited (status %s)" % proc.p.returncode)
            check(time.monotonic() < deadline, "the state kept changing for %.0f s" % timeout)
            time.sleep(0.25)
            cur = snap()
            if cur != last:
                last, since = cur, time.monotonic()
        return last

    # -- kafka clients
    def producer(self, **conf):
        c = {"bootstrap.servers": self.brokers, "linger.ms": 50,
             "reconnect.backoff.max.ms": 1000, "enable.idempotence": True}
        c.update(conf)
        return Producer(c)

    def produce(self, records, topic=EVENTS_TOPIC, producer_conf=None):
        """records: (key, value) pairs, or (key, value, partition) triples, in order. Returns
        [(partition, offset)] per record."""
        p = self.producer(**(producer_conf or {}))
        where = [None] * len(records)
        errors = []

        def cb(i):
            def f(err, msg):
                if err is not None:
                    errors.append(err)
                else:
                    where[i] = (msg.partition(), msg.offset())
            return f

        for i, rec in enumerate(records):
            k, v = rec[0], rec[1]
            part = {"partition": rec[2]} if len(rec) > 2 else {}
            while True:
                try:
                    p.produce(topic, key=k, value=v, on_delivery=cb(i), **part)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(60)
        check(left == 0 and not errors, "produce: %d undelivered, errors %s" % (left, errors[:3]))
        return where

    def produce_events(self, evs, topic=EVENTS_TOPIC):
        """evs: (event dict, "json"|"msgpack") pairs; key = userId else anonymousId."""
        return self.produce([(event_key(e), encode(e, fmt)) for e, fmt in evs], topic)

    def consume(self, topic, until, timeout=30, idle_after=None):
        """Read `topic` from the beginning with a fresh group until until(msgs) is true (or,
        with idle_after, also until no message arrived for idle_after seconds after it is).
        Returns the list of messages (confluent_kafka.Message)."""
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "lf-reader-%d-%f" % (os.getpid(), time.time()),
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                      "reconnect.backoff.max.ms": 1000, "enable.partition.eof": False})
        msgs = []
        try:
            # Explicit assignment of every partition: no group join to wait for.
            md = c.list_topics(topic, timeout=10)
            check(topic in md.topics and md.topics[topic].error is None,
                  "topic %s not found" % topic)
            parts = sorted(md.topics[topic].partitions)
            c.assign([TopicPartition(topic, p, 0) for p in parts])
            deadline = time.monotonic() + timeout
            done_at = None
            while True:
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    msgs.append(m)
                    done_at = None
                if done_at is None and until(msgs):
                    done_at = time.monotonic()
                    if not idle_after:
                        return msgs
                if done_at is not None and time.monotonic() - done_at >= idle_after:
                    return msgs
                if time.monotonic() > deadline:
                    if done_at is not None:
                        return msgs
                    raise TestFailure("timed out after %.0f s reading %s (%d message(s) read)"
                                      % (timeout, topic, len(msgs)))
        finally:
            c.close()

    def high_watermarks(self, topic):
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": "lf-wm-%d" % os.getpid()})
        try:
            md = c.list_topics(topic, timeout=10)
            total = 0
            for p in md.topics[topic].partitions:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += hi
            return total
        finally:
            c.close()

    # -- redis reading
    def lead(self, lead_id, prefix="lf:"):
        """A known lead's record, or else a visitor's, decoded (lfrecord.record): {} if
        neither is stored."""
        import lfrecord
        h = self.rb.hgetall("%slead:{%s}" % (prefix, lead_id))
        if not h:
            v = self.rb.get("%sv:{%s}" % (prefix, lead_id))
            h = {b"p": v} if v is not None else {}
        return lfrecord.record(h)

    def lead_keys(self, prefix="lf:"):
        """Every record's key: known leads' hashes and visitors' strings."""
        return [k for pat in ("lead:*", "v:*")
                for k in self.r.scan_iter(match=prefix + pat, count=1000)]

    def all_leads(self, prefix="lf:"):
        import lfrecord
        out = {}
        keys = self.lead_keys(prefix)
        pipe = self.rb.pipeline(transaction=False)
        for k in keys:
            if k.startswith(prefix + "v:"):
                pipe.get(k)
            else:
                pipe.hgetall(k)
        for k, h in zip(keys, pipe.execute()):
            m = re.match(r"^" + re.escape(prefix) + r"(?:lead|v):\{(.*)\}$", k)
            rec = lfrecord.record(h if isinstance(h, dict) else {b"p": h})
            out[m.group(1) if m else k] = rec
        return out

    # -- Redis Cluster (start_cluster above): rules, topology, a node killed, slots migrated
    def deploy_cluster_rules(self, wait_replicas=1, seeds=None, **kw):
        """deploy_rules(**kw) plus a redis.cluster section: the seed nodes (default: every
        node start_cluster started) and wait_replicas. redis.port names the first node."""
        seeds = seeds or self.cluster_ports
        if self.redis_port is None:
            self.redis_port = seeds[0]
        path = self.deploy_rules(**kw)
        with open(path) as f:
            text = f.read()
        check("\nredis:\n" in text, "the rules have a redis: section")
        section = ("redis:\n  cluster:\n    nodes: \"%s\"\n    wait_replicas: %d\n"
                   % (",".join("127.0.0.1:%d" % p for p in seeds), wait_replicas))
        return self.write_rules(text.replace("\nredis:\n", "\n" + section, 1))

    def cluster_node_proc(self, port):
        """The redis-server Proc start_cluster (or restart_cluster_node) started on port."""
        for p in reversed(self.procs):
            if p.name == "redis-cluster-%d" % port:
                return p
        raise TestFailure("no cluster node on port %d" % port)

    def cluster_conn(self, port, decode=False, timeout=5):
        return redislib.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                              decode_responses=decode)

    def cluster_nodes(self, port=None):
        """CLUSTER NODES as the node on `port` (else the first live node that answers) sees
        it: [{id, port, flags (set), master (id or None), slots [(lo, hi)], migrating
        {slot: id}, importing {slot: id}}]."""
        for p in ([port] if port else self.cluster_ports):
            if not self.cluster_node_proc(p).alive():
                continue
            c = self.cluster_conn(p, decode=True)
            try:
                text = c.execute_command("CLUSTER", "NODES")
            except redislib.exceptions.RedisError:
                continue
            finally:
                c.close()
            return parse_cluster_nodes(text)
        raise TestFailure("no cluster node answers CLUSTER NODES")

    def cluster_masters(self):
        """Ports of the live masters that serve slots, in CLUSTER NODES order."""
        return [n["port"] for n in self.cluster_nodes()
                if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]]

    def cluster_slot_owner(self, slot):
        """The port of the master serving `slot`."""
        for n in self.cluster_nodes():
            if "master" in n["flags"] and "fail" not in n["flags"] and \
                    any(lo <= slot <= hi for lo, hi in n["slots"]):
                return n["port"]
        raise TestFailure("no master serves slot %d" % slot)

    def cluster_kill(self, port):
        """SIGKILL the node on port (no save: its data is gone with it)."""
        self.cluster_node_proc(port).kill()

    def cluster_state_ok(self, port):
        c = self.cluster_conn(port, timeout=2)
        try:
            return b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
        finally:
            c.close()

    def cluster_replicas_of(self, port):
        """Ports of the replicas of the master on port."""
        nodes = self.cluster_nodes()
        mid = [n["id"] for n in nodes if n["port"] == port]
        check(mid, "node %d is in CLUSTER NODES" % port)
        return [n["port"] for n in nodes if n["master"] == mid[0]]

    def wait_failover(self, dead_port, replicas, timeout=60):
        """After the master on dead_port died: until one of its replicas (ports, as
        cluster_replicas_of said before) is a master serving slots, seen so by every live
        node, each saying cluster_state:ok. Returns the promoted node's port."""
        live = [p for p in self.cluster_ports if p != dead_port and
                self.cluster_node_proc(p).alive()]

        def promoted():
            seen = set()
            for p in live:
                if not self.cluster_state_ok(p):
                    return None
                for n in self.cluster_nodes(p):
                    if n["port"] in replicas and "master" in n["flags"] and n["slots"]:
                        seen.add((p, n["port"]))
            new = {q for _, q in seen}
            return new.pop() if len(seen) == len(live) and len(new) == 1 else None
        return wait_until(promoted, timeout, "a replica of node %d promoted" % dead_port,
                          interval=0.25)

    def cluster_keys_in_slot(self, port, slot, count=1000):
        c = self.cluster_conn(port)
        try:
            return c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, count)
        finally:
            c.close()

    def migrate_begin(self, slots, src, dst):
        """The first half of a slot migration by hand (the cluster spec's resharding steps):
        dst IMPORTING and src MIGRATING each slot. Keys then move with migrate_keys; until
        migrate_end, a command for a key already moved gets ASK from src."""
        ids = {n["port"]: n["id"] for n in self.cluster_nodes()}
        cs, cd = self.cluster_conn(src), self.cluster_conn(dst)
        try:
            for s in slots:
                cd.execute_command("CLUSTER", "SETSLOT", s, "IMPORTING", ids[src])
                cs.execute_command("CLUSTER", "SETSLOT", s, "MIGRATING", ids[dst])
        finally:
            cs.close()
            cd.close()

    def migrate_keys(self, slots, src, dst, share=1.0):
        """MIGRATE a share (0..1] of the keys each slot still has on src to dst; returns how
        many moved."""
        moved = 0
        cs = self.cluster_conn(src, timeout=30)
        try:
            for s in slots:
                keys = cs.execute_command("CLUSTER", "GETKEYSINSLOT", s, 100000)
                keys = keys[:max(1, int(len(keys) * share))] if keys else []
                for i in range(0, len(keys), 100):
                    cs.execute_command("MIGRATE", "127.0.0.1", dst, "", 0, 10000, "REPLACE",
                                       "KEYS", *keys[i:i + 100])
                moved += len(keys)
        finally:
            cs.close()
        return moved

    def migrate_end(self, slots, src, dst):
        """The last step: every key left moved, then SETSLOT NODE dst on dst, src and every
        other master (MOVED from then on)."""
        self.migrate_keys(slots, src, dst, 1.0)
        ids = {n["port"]: n["id"] for n in self.cluster_nodes()}
        order = [dst, src] + [p for p in self.cluster_masters() if p not in (src, dst)]
        for p in order:
            c = self.cluster_conn(p)
            try:
                for s in slots:
                    c.execute_command("CLUSTER", "SETSLOT", s, "NODE", ids[dst])
            finally:
                c.close()
        for p in self.cluster_ports:
            if self.cluster_node_proc(p).alive():
                wait_until(lambda p=p: all(self.cluster_slot_owner_seen(p, s) == dst
                                           for s in slots), 30,
                           "node %d sees the migrated slots on %d" % (p, dst), interval=0.25)

    def wait_cluster_synced(self, timeout=60):
        """Until every live replica has finished its sync with its master (master_link_status
        up, no sync in progress) and every master lists its replicas online: a replica still
        in its first (diskless, delayed) sync cannot take over when its master dies."""
        def synced():
            live = [p for p in self.cluster_ports if self.cluster_node_proc(p).alive()]
            want = len(live) - len(self.cluster_masters())
            replicas = online = 0
            for p in live:
                info = self.info_text(p, "replication")
                if "role:slave" in info:
                    replicas += 1
                    if "master_link_status:up" not in info or \
                            "master_sync_in_progress:0" not in info:
                        return False
                else:
                    links = re.findall(r"(?m)^slave\d+:.*state=(\w+)", info)
                    if any(x != "online" for x in links):
                        return False
                    online += len(links)
            return replicas == want and online == want
        wait_until(synced, timeout, "every cluster replica in sync", interval=0.25)

    def info_text(self, port, section):
        """INFO <section> of the node on port as the text Redis sends (redis-py parses it)."""
        c = self.cluster_conn(port)
        conn = c.connection_pool.get_connection("INFO")
        try:
            conn.send_command("INFO", section)
            return conn.read_response().decode()
        finally:
            c.connection_pool.release(conn)
            c.close()

    def cluster_slot_owner_seen(self, port, slot):
        """The master serving slot as the node on port sees it (None: none)."""
        for n in self.cluster_nodes(port):
            if "master" in n["flags"] and any(lo <= slot <= hi for lo, hi in n["slots"]):
                return n["port"]
        return None


STAGES = ["visitor", "lead", "mql", "sal", "sql", "opportunity", "customer", "nurture",
          "disqualified"]
# The stages with an lf:stage:<stage> set (docs/contract.md "Redis keys"): the sales-active ones.
ACTIVE_STAGES = ["mql", "sal", "sql", "opportunity"]


def stage_sets_of(stage):
    """The lf:stage:* sets a lead in `stage` is a member of."""
    return [stage] if stage in ACTIVE_STAGES else None


def funnel_of(r, now_s=None):
    """lf:funnel as {stage: n}, visitors summed over the buckets still ahead of now."""
    now_s = time.time() if now_s is None else now_s
    out = {}
    for f, v in r.hgetall("lf:funnel").items():
        if f.startswith("visitor:"):
            if int(f[8:]) > now_s:
                out["visitor"] = out.get("visitor", 0) + int(v)
        elif int(v):
            out[f] = int(v)
    return {k: v for k, v in out.items() if v}


def funnel_from_records(leads):
    """What lf:funnel must say about these records (env.all_leads())."""
    out = {}
    for h in leads.values():
        out[h["stage"]] = out.get(h["stage"], 0) + 1
    return out


def adapt_rules(text, brokers, redis_port, group, batch_max_ms=20, batch_max_events=None,
                props=None):
    """A rules file's text with the connections replaced and the test Kafka properties."""
    text = re.sub(r"(?m)^(  bootstrap_servers:).*$", r"\1 %s" % brokers, text, count=1)
    text = re.sub(r"(?m)^(  group_id:).*$", r"\1 %s" % group, text, count=1)
    # redis.port: the first "  port:" line after "redis:".
    i = text.index("\nredis:")
    head, tail = text[:i], text[i:]
    tail = re.sub(r"(?m)^(  port:).*$", r"\1 %d" % redis_port, tail, count=1)
    text = head + tail
    # kafka.properties: replace the block's entries.
    p = dict(KAFKA_TEST_PROPS)
    if props:
        p.update(props)
    block = "  properties:\n" + "".join("    %s: %s\n" % kv for kv in p.items())
    text = re.sub(r"(?m)^  properties:.*\n(?:(?:    .*|\s*#.*|\s*)\n)*", block, text, count=1)
    text = re.sub(r"(?m)^(  batch_max_ms:).*$", r"\1 %d" % batch_max_ms, text, count=1)
    if batch_max_events:
        text = re.sub(r"(?m)^(  batch_max_events:).*$", r"\1 %d" % batch_max_events, text,
                      count=1)
    return text


def set_processing(path, **settings):
    """Set `processing.<key>: <value>` in a rules file (replacing the key's line, else adding
    it at the top of the processing block)."""
    with open(path) as f:
        text = f.read()
    for k, v in settings.items():
        text, n = re.subn(r"(?m)^  %s:.*$" % re.escape(k), "  %s: %s" % (k, v), text, count=1)
        if not n:
            text = text.replace("\nprocessing:\n", "\nprocessing:\n  %s: %s\n" % (k, v), 1)
    with open(path, "w") as f:
        f.write(text)
    return path


# `leadflow gen` spreads its events over 30 days; a visitor's events reach its lead through
# the alias late when the lead's partition ran ahead, so a repeat can come more than the
# default day after the lead's latest event: the tests that compare with gen's duplicate
# count remember messageIds for the whole span.
GEN_DEDUP_WINDOW = "30d"


def kafka_block(brokers, group, props=None):
    p = dict(KAFKA_TEST_PROPS)
    if props:
        p.update(props)
    return ("kafka:\n  bootstrap_servers: %s\n  group_id: %s\n  properties:\n" % (brokers, group)
            + "".join("    %s: %s\n" % kv for kv in p.items()))


#---- Runner -----------------------------------------------------------------------------------

_CURRENT_ENVS = []


def new_env(name):
    e = Env(name)
    _CURRENT_ENVS.append(e)
    return e


def started_env(name, partitions=1):
    """A new env with its redis-server and embedded broker running."""
    e = new_env(name)
    e.start_redis()
    e.start_broker(partitions)
    return e


def main(tests, env_logs=None):
    """Run test functions; print ok / not ok lines and "N passed, N failed" last.
    env_logs(env) renders an environment's logs for a failure (default: env.logs())."""
    env_logs = env_logs or (lambda env: env.logs())
    only = os.environ.get("LF_ONLY")
    passed = failed = 0
    for fn in tests:
        name = fn.__name__
        if only and only not in name:
            continue
        t0 = time.monotonic()
        del _CURRENT_ENVS[:]
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("not ok %s (%.1f s): %s" % (name, time.monotonic() - t0, e), flush=True)
            if not isinstance(e, TestFailure):
                traceback.print_exc(file=sys.stdout)
            for env in _CURRENT_ENVS:
                print(env_logs(env), flush=True)
        else:
            passed += 1
            print("ok %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            if os.environ.get("LF_VERBOSE"):
                for env in _CURRENT_ENVS:
                    print(env_logs(env), flush=True)
        finally:
            for env in _CURRENT_ENVS:
                env.close()
            del _CURRENT_ENVS[:]
    _stop_all()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


#---- Redis Cluster helpers --------------------------------------------------------------------

def parse_cluster_nodes(text):
    """CLUSTER NODES text: a dict per node (see Env.cluster_nodes)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        n = {"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]),
             "flags": set(f[2].split(",")), "master": None if f[3] == "-" else f[3],
             "slots": [], "migrating": {}, "importing": {}}
        n["flags"].discard("myself")
        for s in f[8:]:
            if s.startswith("["):
                m = re.match(r"\[(\d+)-([<>])-(\w+)\]", s)
                if m:
                    d = n["migrating"] if m.group(2) == ">" else n["importing"]
                    d[int(m.group(1))] = m.group(3)
            elif "-" in s:
                lo, hi = s.split("-")
                n["slots"].append((int(lo), int(hi)))
            else:
                n["slots"].append((int(s), int(s)))
        out.append(n)
    return out


def _crc16_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xffff)
    return t


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16-XMODEM (Redis Cluster's key hash) of bytes or str."""
    if isinstance(data, str):
        data = data.encode()
    c = 0
    for b in data:
        c = ((c << 8) & 0xffff) ^ _CRC16[((c >> 8) ^ b) & 0xff]
    return c


def key_slot(key):
    """A key's Redis Cluster hash slot (CRC16-XMODEM of its hash tag, else the whole key)."""
    if isinstance(key, str):
        key = key.encode()
    i = key.find(b"{")
    if i >= 0:
        j = key.find(b"}", i + 1)
        if j > i + 1:
            key = key[i + 1:j]
    return crc16(key) % 16384


_SLOT_TAGS = []


def slot_tags():
    """Each slot's hash tag as lf_cluster_tags_build makes it: the shortest string of
    [0-9a-z], by length then in order, whose slot is k (computed once)."""
    if not _SLOT_TAGS:
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        tags, left, words = [None] * 16384, 16384, [""]
        while left:
            words = [w + c for w in words for c in alphabet]
            for w in words:
                k = crc16(w) % 16384
                if tags[k] is None:
                    tags[k] = w
                    left -= 1
                    if not left:
                        break
        _SLOT_TAGS.extend(tags)
    return _SLOT_TAGS
