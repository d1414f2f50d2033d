"""The decay sweep's clock (docs/contract.md "Semantics", "The clock of time-driven changes"): once every
partition an instance owns is caught up, it follows the wall clock minus the allowed
lateness, so an MQL left alone with no input at all is still demoted, at its crossing time,
within the documented delay (allowed_lateness + the 1 s sweep interval); a partition that
never delivered anything but is empty does not hold it back; with `idle_clock: event` a
quiet stream demotes nothing.
Run: LF_BIN=build/leadflow python3 tests/integration/test_clock.py"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402
from test_pipeline import transitions_of  # noqa: E402

HALF_LIFE_S = 10
LATENESS_S = 2
POINTS, ENTER, EXIT = 70.0, 60, 45


def rules(env, idle_clock):
    return env.write_rules(
        'version: "clock-1"\n' + env.connections() +
        "processing:\n  batch_max_ms: 20\n  allowed_lateness: %ds\n  idle_clock: %s\n"
        % (LATENESS_S, idle_clock) +
        "model:\n  decay:\n    half_life: %ds\n  stages:\n    mql:\n      enter: %d\n"
        "      exit: %d\n  engagement:\n    - name: forms\n      kind: form_submit\n"
        "      points: %d\n" % (HALF_LIFE_S, ENTER, EXIT, int(POINTS)))


def crossing_ms(t_event_ms):
    """When POINTS decayed with the half-life reaches the exit threshold."""
    return t_event_ms + HALF_LIFE_S * 1000.0 * math.log2(POINTS / EXIT)


def quiet_env(name, idle_clock):
    env = H.new_env(name)
    env.start_redis()
    env.start_broker(2)  # the second partition stays empty: it must not hold the clock
    rules(env, idle_clock)
    run = env.start_run()
    H.wait_until(lambda: "assigned" in run.log_text(), 30, "partitions assigned")
    t_ev = int(time.time() * 1000)
    env.produce_events([(H.event("track", "q-1", t_ev, user="u-quiet", event="form_submit"),
                         "json")])
    env.wait_consumed(1, proc=run)
    check_eq(env.lead("u-quiet").get("stage"), "mql", "stage after the event")
    return env, run, t_ev


def test_a_quiet_mql_is_demoted_by_the_wall_clock():
    env, run, t_ev = quiet_env("quiet", "wall")
    cross = crossing_ms(t_ev)
    due = cross + LATENESS_S * 1000
    seen = H.wait_until(lambda: env.lead("u-quiet").get("stage") == "nurture" and time.time(),
                        HALF_LIFE_S * 3 + 30, "the quiet MQL demoted", interval=0.05)
    seen_ms = seen * 1000
    print("# crossing at +%.1f s, demoted (seen) at +%.1f s after the event; due at +%.1f s"
          % ((cross - t_ev) / 1000, (seen_ms - t_ev) / 1000, (due - t_ev) / 1000), flush=True)
    # Never before its crossing time plus the allowed lateness (the clock does not run
    # ahead), and within the sweep interval after it (generous for a loaded machine).
    check(seen_ms >= due - 50, "demoted %.0f ms before crossing + lateness" % (due - seen_ms))
    check(seen_ms <= due + 6000, "demoted %.1f s after crossing + lateness (documented: "
          "within about 1 s)" % ((seen_ms - due) / 1000))
    tr = [t for t in transitions_of(env, 3) if t["lead_id"] == "u-quiet"]
    last = max(tr, key=lambda t: int(t["seq"]))
    check_eq((last["from"], last["to"], last["reason"]), ("mql", "nurture", "score_decay"),
             "the demotion")
    # The transition carries the time the score crossed, not the time of the sweep.
    check(abs(int(last["at"]) - cross) <= 2, "at = %s, crossing %.0f" % (last["at"], cross))
    check_eq(run.stop(), 0, "exit status")
    # A clean stop says so in the last heartbeat, and `stats` no longer counts it as live.
    check_eq(env.r.hget("lf:ops:instance:lf-test", "state"), "stopped", "heartbeat state")
    rc, out, err = env.run_cli(["stats", "-c", env.rules_path])
    check_eq(rc, 3, "stats exit status with no instance running")


def test_idle_clock_event_keeps_a_quiet_mql():
    env, run, t_ev = quiet_env("quiet-ev", "event")
    due = crossing_ms(t_ev) + LATENESS_S * 1000
    while time.time() * 1000 < due + 3000:  # well past when the wall clock would demote
        check(run.alive(), "leadflow run exited")
        time.sleep(0.2)
    check_eq(env.lead("u-quiet").get("stage"), "mql", "stage with idle_clock: event")
    check_eq(run.stop(), 0, "exit status")


if __name__ == "__main__":
    H.main([test_a_quiet_mql_is_demoted_by_the_wall_clock, test_idle_clock_event_keeps_a_quiet_mql])
