"""log.format: json — every line leadflow run writes is one JSON object (ts, level, msg), its
own and librdkafka's (routed through the same logger: no raw "%3|...|FAIL|" lines), under a
broker that is away and a Redis that goes away; the periodic progress line; no planted
secret in any line.
Run: LF_BIN=build/leadflow python3 tests/integration/test_logs.py"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

SECRET = "s3cr3t-planted-7f2a"


def lines_of(proc):
    return [ln for ln in proc.log_text().splitlines() if ln.strip()]


def test_every_line_is_json_under_faults():
    env = H.started_env("logs", partitions=1)
    path = env.deploy_rules()
    with open(path) as f:
        text = f.read()
    text += "log:\n  format: json\n  level: info\n  progress_every: 1s\n"
    text = re.sub(r"(?m)^(  properties:\n)", r"\1    sasl.password: %s\n" % SECRET, text, count=1)
    with open(path, "w") as f:
        f.write(text)
    # A broker nobody listens on first: librdkafka logs its connection failures.
    dead = "127.0.0.1:%d" % H.free_port()
    run = env.start_run(instance="away", rules=path, extra=["--brokers", dead])
    H.wait_until(lambda: "librdkafka" in run.log_text(), 20, "a librdkafka line")
    run.p.send_signal(signal.SIGTERM)
    run.p.wait(30)
    first_log = run.log_text()
    run = env.start_run(rules=path)
    env.produce_events([(H.event("track", "e-%d" % i, 1769904000000 + i, user="u-%d" % i,
                                 event="form_submit"), "json") for i in range(20)] +
                       [({"not": "an event"}, "json")])
    env.wait_consumed(21, proc=run)
    env.redis_proc.stop()
    time.sleep(3)
    env.start_redis(port=env.redis_port)
    H.wait_until(lambda: "back to normal" in run.log_text(), 30, "recovered")
    time.sleep(1.5)
    run.p.send_signal(signal.SIGTERM)
    check_eq(run.p.wait(30), 0, "exit status")
    every = []
    log = first_log + run.log_text()
    check(log, "the runs' logs are there")
    for ln in log.splitlines():
        if not ln.strip():
            continue
        try:
            o = json.loads(ln)
        except ValueError:
            raise H.TestFailure("not JSON: %r" % ln[:300])
        check(isinstance(o, dict) and {"ts", "level", "msg"} <= set(o), "keys of %r" % ln[:200])
        check(o["level"] in ("debug", "info", "warn", "error"), "level of %r" % ln[:200])
        every.append(o)
    check(not re.search(r"%\d\|", log), "no raw librdkafka line")
    check(any(o.get("component") == "librdkafka" and o.get("facility") for o in every),
          "librdkafka's lines carry component and facility")
    check(any(o["msg"].startswith("progress:") and "lag" in o for o in every),
          "a progress line with its fields")
    check(any(o["level"] == "warn" and "Redis" in o["msg"] for o in every),
          "the Redis outage is logged")
    check(SECRET not in log, "the planted secret is in no line")


if __name__ == "__main__":
    H.main([test_every_line_is_json_under_faults])
