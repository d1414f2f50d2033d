"""SIGTERM ends `leadflow run` within a bound in every state (issue 14 part 2, docs/contract.md "Guarantees"
"Back-pressure"), and the heartbeat keeps being written while a batch is stuck (part 6).

After the first SIGTERM the batch in flight gets 10 s to finish, then every wait gives up;
leaving the group and flushing take at most ~4 s more: the process must exit within 16 s of
the first SIGTERM (15 s designed, 1 s of slack), with status 0. A second SIGTERM makes it give
up at once: exit within 6 s of the second. States, each while `leadflow gen` produces the
generated stream at a rate:

- Redis SIGSTOPped (commands time out) with input pending; afterwards Redis is resumed, a
  second instance finishes the input and the counters equal the generator's (nothing the
  abandoned batch held was lost or counted twice);
- redis-server killed (connections refused), stopped with two SIGTERMs;
- Kafka down (`broker-down 1`) while the batch's transitions are undelivered, one SIGTERM and
  two; the heartbeat keeps advancing (state degraded, reason "Kafka: ...") meanwhile;
- a stuck produce: every Produce request fails with a retriable error (librdkafka retries
  it for ever, message.timeout.ms=0): heartbeat advancing, degraded, then SIGTERM;
- a 4.8 MB event's truncated dead letter that Kafka keeps refusing (the largest event the
  mock broker stores: it drops a message set over ~5 MiB at once, so no 20 MB input event
  can exist on the devbroker), with a retriable error (stuck inside librdkafka) and with a
  non-retriable one (MSG_SIZE_TOO_LARGE: refused, leadflow's own retry): heartbeat, then
  SIGTERM.

Every measured stop time is printed ("# stop: ...").
Default: 30,000 events at 2,000/s, 2 partitions.
"""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

H = F.H
EVENTS = int(os.environ.get("LF_EVENTS", 30000))
LEADS = EVENTS // 10
PARTITIONS = 2
RATE = 2000
FIRST_LIMIT_S = 16.0   # 10 s grace + ~4 s close and flush, + 1 s slack + process exit
SECOND_LIMIT_S = 6.0
T0 = 1772409600000     # 2026-03-02T00:00:00Z


def degraded_lines(run):
    return run.log_text().count(" degraded: ")


def start(name, instance):
    """Redis, devbroker, rules, gen at RATE, and one `leadflow run` that is making progress."""
    env = F.new_env(name)
    F.start_redis(env)
    F.start_broker(env, PARTITIONS)
    F.write_rules(env, batch_max_events=500)
    gen, stats_path = F.generate(env, F.gen_args(EVENTS, LEADS), rate=RATE, wait=False)
    run = F.start_run(env, instance)
    F.wait_assigned_and_progress(env, run, 1000, timeout=90)
    return env, run, gen, stats_path


def sigterm_timed(run, state, second_after=None, limit=30):
    """SIGTERM (and, second_after seconds later, another); wait for the exit. Returns
    (exit status, seconds from the first SIGTERM, seconds from the second or None)."""
    F.check(run.alive(), "leadflow run exited before the SIGTERM (status %s)"
            % run.p.returncode)
    t0 = time.monotonic()
    run.p.send_signal(signal.SIGTERM)
    t1 = None
    if second_after is not None:
        while time.monotonic() - t0 < second_after and run.alive():
            time.sleep(0.05)
        F.check(run.alive(), "%s: leadflow run exited %.1f s after the first SIGTERM, before "
                "the second: the state did not hold it (nothing to give up)"
                % (state, time.monotonic() - t0))
        t1 = time.monotonic()
        run.p.send_signal(signal.SIGTERM)
    try:
        rc = run.p.wait(limit)
    except subprocess.TimeoutExpired:
        run.kill()
        raise F.TestFailure("%s: leadflow run still running %d s after the first SIGTERM "
                            "(killed)" % (state, limit))
    end = time.monotonic()
    first, second = end - t0, (end - t1 if t1 is not None else None)
    F.log("stop: %s: exit %s %.2f s after the first SIGTERM%s" % (
        state, rc, first, "" if second is None else ", %.2f s after the second" % second))
    return rc, first, second


def check_stop(rc, first, second, state):
    F.check(first <= FIRST_LIMIT_S, "%s: exit %.1f s after the first SIGTERM (limit %.0f s)"
            % (state, first, FIRST_LIMIT_S))
    if second is not None:
        F.check(second <= SECOND_LIMIT_S, "%s: exit %.1f s after the second SIGTERM (limit "
                "%.0f s)" % (state, second, SECOND_LIMIT_S))
    F.check_eq(rc, 0, "%s: exit status after SIGTERM" % state)


def heartbeat(env, instance):
    try:
        return env.r.hgetall("lf:ops:instance:" + instance)
    except (H.redislib.exceptions.ConnectionError, H.redislib.exceptions.TimeoutError):
        return {}


def check_heartbeat_while_stuck(env, run, instance, reason_prefix=None, observe_s=3.5,
                                degraded_within=25):
    """The batch is stuck: state degraded (with a reason) within degraded_within seconds;
    then for observe_s seconds the consumed counter does not move while heartbeat_ms keeps
    advancing about every second (wall clock). Returns the last heartbeat."""
    def degraded():
        F.check(run.alive(), "leadflow run exited (status %s)" % run.p.returncode)
        h = heartbeat(env, instance)
        if h.get("state") != "degraded" or not h.get("reason"):
            return None
        if reason_prefix and not h["reason"].startswith(reason_prefix):
            return None
        return h
    try:
        F.wait_until(degraded, degraded_within, "heartbeat state degraded%s" % (
            " with reason %r..." % reason_prefix if reason_prefix else ""), 0.2)
    except F.TestFailure as e:
        raise F.TestFailure("%s; it says %r" % (e, heartbeat(env, instance)))
    c0 = F.consumed(env)
    beats = []
    t_end = time.monotonic() + observe_s
    while time.monotonic() < t_end:
        F.check(run.alive(), "leadflow run exited (status %s)" % run.p.returncode)
        h = heartbeat(env, instance)
        F.check_eq(h.get("state"), "degraded", "heartbeat state while stuck (reason %r)"
                   % h.get("reason"))
        ms = int(h.get("heartbeat_ms") or 0)
        if not beats or ms != beats[-1]:
            beats.append(ms)
        time.sleep(0.1)
    F.check_eq(F.consumed(env), c0, "consumed counter while the batch is stuck")
    F.check(all(b > a for a, b in zip(beats, beats[1:])), "heartbeat_ms went back: %s" % beats)
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    F.check(len(beats) >= max(2, int(observe_s)), "only %d distinct heartbeat_ms values in "
            "%.1f s while stuck: %s" % (len(beats), observe_s, beats))
    F.check(max(gaps) <= 2500, "heartbeat gap of %d ms while stuck: %s" % (max(gaps), beats))
    F.check(abs(int(time.time() * 1000) - beats[-1]) < 5000, "heartbeat_ms %d is not the wall "
            "clock" % beats[-1])
    F.log("%s stuck at consumed %d: %d heartbeats in %.1f s (gaps %s ms), state degraded, "
          "reason %r" % (instance, c0, len(beats), observe_s, gaps, h.get("reason")))
    return h


#---- Redis --------------------------------------------------------------------------------

def test_stop_with_redis_sigstopped_and_input_pending():
    env, run, gen, stats_path = start("stop-redis", "sr1")
    redis_pid = env.redis_proc.pid
    n = degraded_lines(run)
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        # leadflow notices (a command times out after redis.timeout_ms) and says so.
        F.wait_until(lambda: degraded_lines(run) > n or not run.alive(), 30,
                     "`degraded` in the run's log while Redis is stopped")
        F.check(run.alive(), "leadflow run exited while Redis was stopped (status %s)"
                % run.p.returncode)
        rc, first, _ = sigterm_timed(run, "Redis SIGSTOPped")
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    check_stop(rc, first, None, "Redis SIGSTOPped")
    # Nothing the abandoned batch held is lost or counted twice.
    st = F.finish_gen(env, gen, stats_path)
    F.check(F.consumed(env) < st["events"], "the input was all consumed before the stop")
    run2 = F.start_run(env, "sr2")
    F.wait_all_consumed(env, st["events"], [run2], timeout=120)
    F.settle(env, [run2])
    F.stop_runs([run2])
    F.check_progress(env.progress(), st, "after the stop and a second run: ")


def test_second_sigterm_with_redis_killed():
    env, run, gen, stats_path = start("stop-redis2", "sr3")
    n = degraded_lines(run)
    F.kill9(env.redis_proc)
    F.wait_until(lambda: degraded_lines(run) > n or not run.alive(), 30,
                 "`degraded` in the run's log while Redis is down")
    rc, first, second = sigterm_timed(run, "Redis killed, two SIGTERMs", second_after=2.0)
    check_stop(rc, first, second, "Redis killed, two SIGTERMs")


#---- Kafka --------------------------------------------------------------------------------

def kafka_down_stuck(name, instance, observe_s=3.5):
    env, run, gen, stats_path = start(name, instance)
    F.control(env, "broker-down 1")
    h = check_heartbeat_while_stuck(env, run, instance, reason_prefix="Kafka: ",
                                    observe_s=observe_s)
    return env, run, h


def test_stop_with_kafka_down():
    env, run, h = kafka_down_stuck("stop-kafka", "sk1")
    rc, first, _ = sigterm_timed(run, "Kafka down")
    check_stop(rc, first, None, "Kafka down")


def test_second_sigterm_with_kafka_down():
    """Something must be left to give up: with the broker merely down, the batch in flight
    may have delivered everything just before (then the first SIGTERM stops at once, rightly).
    So its Produce requests fail first (retriable: the transitions stay pending), then the
    broker goes down."""
    env, run, gen, stats_path = start("stop-kafka2", "sk2")
    F.control(env, "request-errors Produce NOT_ENOUGH_REPLICAS 100000")
    check_heartbeat_while_stuck(env, run, "sk2", observe_s=2.0)
    F.control(env, "broker-down 1")
    time.sleep(1.0)
    F.check(run.alive(), "leadflow run exited when the broker went down")
    rc, first, second = sigterm_timed(run, "Kafka down, two SIGTERMs", second_after=2.0)
    check_stop(rc, first, second, "Kafka down, two SIGTERMs")


def test_stop_with_a_stuck_produce():
    """Every Produce request fails with NOT_ENOUGH_REPLICAS (retriable: librdkafka retries it
    itself, for ever): the batch waits for its transitions' delivery reports."""
    env, run, gen, stats_path = start("stop-produce", "sp1")
    F.control(env, "request-errors Produce NOT_ENOUGH_REPLICAS 100000")
    check_heartbeat_while_stuck(env, run, "sp1")
    rc, first, _ = sigterm_timed(run, "stuck produce (retriable errors)")
    check_stop(rc, first, None, "stuck produce (retriable errors)")


#---- A big event's dead letter -----------------------------------------------------------------

def big_event(size):
    rng = random.Random(size)
    head = ('{"messageId":"big","type":"track","event":"form_submit","userId":"u-big",'
            '"timestamp":%d,"properties":{"blob":"' % T0).encode()
    tail = b'"}}'
    return head + bytes(97 + b % 26 for b in rng.randbytes(size - len(head) - len(tail))) + tail


def big_dead_letter_stuck(name, instance, error):
    """Preloaded: anonymous page views (no transitions), a 4.8 MB event, more page views; the
    Produce errors are injected before leadflow starts, so its first Produce request is the
    big event's (truncated) dead letter."""
    env = F.new_env(name)
    F.start_redis(env)
    F.start_broker(env, 1)
    F.write_rules(env, batch_max_events=500)
    recs = []
    for i in range(200):
        e = H.event("page", "pv-%d" % i, T0 + i * 60000, anon="anon-%d" % (i % 7),
                    url="https://ex.com/p%d" % i)
        recs.append(("anon-%d" % (i % 7), H.encode(e, "json")))
        if i == 100:
            recs.append(("u-big", big_event(4800000)))
    p = env.producer(**{"message.max.bytes": 8000000})
    for k, v in recs:
        p.produce(F.EVENTS_TOPIC, key=k, value=v, partition=0)
        p.poll(0)
    F.check_eq(p.flush(60), 0, "undelivered input")
    F.check_eq(F.watermarks(env)[0], (0, len(recs)), "watermarks of the input partition")
    F.control(env, "request-errors Produce %s 100000" % error)
    run = F.start_run(env, instance)
    F.wait_until(lambda: "assigned" in run.log_text() or not run.alive(), 60,
                 "%s assigned" % instance)
    h = check_heartbeat_while_stuck(env, run, instance)
    F.check(F.consumed(env) < len(recs), "the input was all consumed: nothing was stuck")
    return env, run, h


def test_stop_during_a_big_dead_letter_kafka_keeps_retrying():
    env, run, h = big_dead_letter_stuck("stop-bigdl", "bd1", "NOT_ENOUGH_REPLICAS")
    rc, first, second = sigterm_timed(run, "4.8 MB dead letter, retriable errors")
    check_stop(rc, first, second, "4.8 MB dead letter, retriable errors")


def test_stop_during_a_big_dead_letter_kafka_refuses():
    env, run, h = big_dead_letter_stuck("stop-bigdl2", "bd2", "MSG_SIZE_TOO_LARGE")
    n = run.log_text().count("delivery failed")
    F.log("dead letter refused: %d `delivery failed` lines in the log so far" % n)
    rc, first, second = sigterm_timed(run, "4.8 MB dead letter, refused (MSG_SIZE_TOO_LARGE)",
                                      second_after=2.0)
    check_stop(rc, first, second, "4.8 MB dead letter, refused (MSG_SIZE_TOO_LARGE)")


if __name__ == "__main__":
    F.main([
        test_stop_with_redis_sigstopped_and_input_pending,
        test_second_sigterm_with_redis_killed,
        test_stop_with_kafka_down,
        test_second_sigterm_with_kafka_down,
        test_stop_with_a_stuck_produce,
        test_stop_during_a_big_dead_letter_kafka_keeps_retrying,
        test_stop_during_a_big_dead_letter_kafka_refuses,
    ])
