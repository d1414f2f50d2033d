"""The metrics endpoint (metrics.listen) on redis-server and the embedded broker: /metrics
passes `promtool check metrics` and its counters agree with the progress in Redis (the
`lf:ops`/`lf:wm` counters); /readyz fails while Redis is away; /healthz fails while the
processing thread is blocked (a Redis that does not answer within metrics.stuck_after).
Run: LF_BIN=build/leadflow python3 tests/integration/test_metrics.py"""
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402


get = H.http_get


def samples(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def family_sum(s, name):
    return sum(v for k, v in s.items() if k == name or k.startswith(name + "{"))


def metrics_rules(env, port, extra_redis=""):
    path = H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW)
    with open(path) as f:
        text = f.read()
    text += "metrics:\n  listen: 127.0.0.1:%d\n  stuck_after: 2s\n" % port
    for line in extra_redis.splitlines():  # replace the key's line
        key = line.split(":")[0]
        text = re.sub(r"(?m)^%s:.*$" % re.escape(key), line, text, count=1)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_metrics_agree_with_the_progress_and_promtool_accepts_them():
    env = H.started_env("metrics", partitions=2)
    port = H.free_port()
    rules = metrics_rules(env, port)
    run = env.start_run(rules=rules)
    n = env.generate(300, 3000, 9)
    env.wait_consumed(n, proc=run)
    env.settle(run)
    H.wait_until(lambda: samples(get(port, "/metrics")[1]).get("leadflow_events_in_total") == n,
                 10, "the scrape caught up")
    status, text = get(port, "/metrics")
    check_eq(status, 200, "/metrics status")
    promtool = shutil.which("promtool")
    check(promtool, "promtool (Debian's prometheus package, `make deps`) is installed")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True)
    check_eq(r.returncode, 0, "promtool check metrics:\n%s%s" % (r.stdout.decode(),
                                                                   r.stderr.decode()))
    s = samples(text)
    p = env.progress()
    check_eq(s["leadflow_events_in_total"], p["consumed"], "events in")
    check_eq(s["leadflow_events_applied_total"], p["applied"], "applied")
    check_eq(s["leadflow_events_duplicate_total"], p["duplicates"], "duplicates")
    check_eq(family_sum(s, "leadflow_events_dead_lettered_total"), p["dead"], "dead-lettered")
    check(p["dead"] > 0, "the stream has bad events")
    check_eq(family_sum(s, "leadflow_transitions_total"), p["transitions"], "transitions")
    check(s['leadflow_transitions_total{from="visitor",to="lead"}'] > 0, "visitor->lead pairs")
    check(s["leadflow_batch_events_count"] > 0 and s["leadflow_redis_roundtrip_seconds_count"] > 0,
          "histograms observed")
    check(s["leadflow_process_resident_memory_bytes"] > 1e6, "RSS")
    check(any(k.startswith("leadflow_info{") and 'rules_version="2026-11-b2b-1"' in k for k in s),
          "info with the rules version")
    check_eq(get(port, "/healthz")[0], 200, "/healthz")
    check_eq(get(port, "/readyz")[0], 200, "/readyz")
    check_eq(get(port, "/nosuch")[0], 404, "unknown path")
    check_eq(run.stop(), 0, "exit status")


def test_readyz_and_healthz_follow_redis():
    env = H.started_env("metrics-health", partitions=1)
    port = H.free_port()
    rules = metrics_rules(env, port, extra_redis="  timeout_ms: 20000\n")
    run = env.start_run(rules=rules)
    H.wait_until(lambda: get(port, "/readyz")[0] == 200, 30, "ready once assigned")
    # A Redis that does not answer (SIGSTOP): the processing thread waits in a call (its
    # timeout is 20 s), so /healthz says stuck after metrics.stuck_after (2 s).
    env.redis_proc.signal(signal.SIGSTOP)
    try:
        st, body = H.wait_until(
            lambda: (lambda r: r if r[0] == 503 else None)(get(port, "/healthz")), 15,
            "/healthz 503 while the thread is blocked")
        check("stuck" in body, "/healthz says why: %r" % body)
    finally:
        env.redis_proc.signal(signal.SIGCONT)
    H.wait_until(lambda: get(port, "/healthz")[0] == 200, 30, "/healthz back to 200")
    # Redis gone: the thread is alive (it backs off and retries), but not ready.
    env.redis_proc.stop()
    st, body = H.wait_until(lambda: (lambda r: r if r[0] == 503 else None)(get(port, "/readyz")),
                            20, "/readyz 503 with Redis down")
    check("Redis" in body or "redis" in body, "/readyz says why: %r" % body)
    check_eq(get(port, "/healthz")[0], 200, "/healthz stays 200 while it retries")
    check(run.alive(), "still running")
    check_eq(run.stop(), 0, "exit status")


def free_port_pair():
    """Two consecutive free ports (worker k of --workers serves on PORT+k-1)."""
    import socket
    for _ in range(50):
        p = H.free_port()
        if p >= 65535:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise H.TestFailure("no two consecutive free ports")


def test_workers_serve_one_port_each_and_replay_beside_them_serves_none():
    """`--workers 2` with metrics.listen PORT: worker 1 on PORT, worker 2 on PORT+1 (they used
    to share PORT, and the second failed to start); their counters add up to the progress.
    A replay on the same host reads the same rules file and opens no endpoint."""
    env = H.started_env("metrics-workers", partitions=2)
    port = free_port_pair()
    rules = metrics_rules(env, port)
    run = env.start_run(rules=rules, extra=["--workers", "2"])
    n = env.generate(300, 3000, 19)
    env.wait_consumed(n, proc=run)
    env.settle(run)

    def both():
        a, b = samples(get(port, "/metrics")[1]), samples(get(port + 1, "/metrics")[1])
        total = a.get("leadflow_events_in_total", 0) + b.get("leadflow_events_in_total", 0)
        return (a, b) if total == n else None
    a, b = H.wait_until(both, 15, "both workers' endpoints count every event")
    check(a["leadflow_events_in_total"] > 0 and b["leadflow_events_in_total"] > 0,
          "each worker consumed a partition")
    check_eq(sum(family_sum(x, "leadflow_transitions_total") for x in (a, b)),
             env.progress()["transitions"], "transitions of both workers")
    ids = {k for x in (a, b) for k in x if k.startswith("leadflow_info{")}
    check_eq(len(ids), 2, "one leadflow_info per worker: %r" % ids)
    for p in (port, port + 1):
        check_eq(get(p, "/healthz")[0], 200, "/healthz on %d" % p)
    rc, out, err = env.run_cli(["replay", "-c", rules, "--rules", rules, "--prefix",
                                "lf:metrics-replay:"], timeout=180)
    check_eq(rc, 0, "replay beside the workers\n" + err[-1500:])
    check("metrics on http" not in err, "the replay opened no endpoint:\n" + err[-800:])
    check_eq(run.stop(), 0, "exit status")
    check("cannot listen" not in run.log_text(), "no worker failed to listen")


if __name__ == "__main__":
    H.main([test_metrics_agree_with_the_progress_and_promtool_accepts_them,
            test_readyz_and_healthz_follow_redis,
            test_workers_serve_one_port_each_and_replay_beside_them_serves_none])
