"""Least privilege on a real redis-server: the README's exact `ACL SETUSER` line creates a user
limited to leadflow's keys and commands; `run`, `stats`, `top`, `inspect`, `reload` and
`replay` (back-test and switch) work under it with nothing refused (`ACL LOG` stays empty),
the password read from a file (`${file:...}`); a command or key outside the grant is refused.
Run: LF_BIN=build/leadflow python3 tests/integration/test_acl.py"""
import os
import re
import shlex
import sys

import redis as redislib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
PASSWORD = "aclSecret8e21"


def readme_acl_line():
    with open(README) as f:
        lines = [ln.strip() for ln in f if ln.startswith("ACL SETUSER leadflow ")]
    check_eq(len(lines), 1, "one ACL SETUSER line in the README")
    check(">CHANGE-ME" in lines[0], "the README's line has the password placeholder")
    return lines[0].replace(">CHANGE-ME", ">" + PASSWORD)


def with_user(env, path, version=None, name=None):
    """The rules file with redis.user leadflow and the password from pw.txt (relative to the
    rules file: the file's folder)."""
    with open(env.path("pw.txt"), "w") as f:
        f.write(PASSWORD + "\n")
    with open(path) as f:
        text = f.read()
    if "\n  user: leadflow\n" not in text:
        text = text.replace("\nredis:\n",
                            "\nredis:\n  user: leadflow\n  password: ${file:pw.txt}\n", 1)
    if version:
        text = re.sub(r'(?m)^version: .*$', 'version: "%s"' % version, text, count=1)
    return env.write_rules(text, name=name or os.path.basename(path))


def acl_log(env):
    return env.r.execute_command("ACL", "LOG")


def as_user(env, password=PASSWORD):
    return redislib.Redis(host="127.0.0.1", port=env.redis_port, username="leadflow",
                          password=password, socket_timeout=5, decode_responses=True)


def test_leadflow_works_under_the_readme_grant_and_nothing_else():
    env = H.started_env("acl", partitions=2)
    env.r.execute_command(*shlex.split(readme_acl_line()))
    live = with_user(env, H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW))
    b = with_user(env, live, version="acl-b", name="rules-b.yaml")
    env.r.execute_command("ACL", "LOG", "RESET")

    n = env.generate(300, 3000, 31)
    run = env.start_run(rules=live)
    env.wait_consumed(n, timeout=120, proc=run)
    env.settle(run)
    p = env.progress()
    check_eq(p["consumed"], n, "every event consumed under the ACL user")
    check(p["applied"] > 0 and p["transitions"] > 0, "events applied, transitions made: %r" % p)
    check_eq(acl_log(env), [], "nothing refused by the run")
    users = {c.get("user") for c in env.r.client_list() if c.get("name") != "harness"}
    check("leadflow" in users, "leadflow is connected as the ACL user: %r" % users)

    lead = next(k for k in env.all_leads() if env.all_leads()[k]["stage"] != "visitor")
    for args, want in ((["stats"], 0), (["stats", "--json"], 0), (["top"], 0),
                       (["top", "--json"], 0), (["inspect", lead], 0),
                       (["inspect", lead, "--json"], 0), (["reload", "--wait", "10s"], 0)):
        rc, out, err = env.run_cli(args + ["-c", live], timeout=60)
        check_eq(rc, want, "leadflow %s under the ACL user:\n%s%s" % (" ".join(args), out[-600:],
                                                                       err[-600:]))
    check_eq(acl_log(env), [], "nothing refused by stats, top, inspect, reload")

    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b], timeout=300)
    check_eq(rc, 0, "replay under the ACL user\n" + err[-2000:])
    rc, out, err = env.run_cli(["replay", "-c", live, "--rules", b, "--switch"], timeout=300)
    check_eq(rc, 0, "replay --switch under the ACL user\n" + err[-2000:])
    check_eq(env.r.get("lf:active"), "lf:replay:", "switched")
    H.wait_until(lambda: "switched to lf:replay:" in run.log_text(), 30, "instance restarted")
    H.wait_until(lambda: env.r.hget("lf:replay:ops:instance:lf-test", "state") == "ok", 30,
                 "the instance runs on the new prefix")
    check_eq(acl_log(env), [], "nothing refused by replay and the switch")
    check_eq(run.stop(), 0, "run exit status")
    check_eq(acl_log(env), [], "nothing refused at shutdown")
    check(PASSWORD not in run.log_text(), "the password is not logged")

    # Outside the grant: refused, and Redis logs it (so the empty log above means something).
    c = as_user(env)
    check_eq(c.get("lf:active"), "lf:replay:", "the user reads its own keys")
    for what, call in (("FLUSHALL", lambda: c.flushall()),
                       ("CONFIG SET", lambda: c.config_set("maxmemory-policy", "allkeys-lru")),
                       ("GET outside lf:", lambda: c.get("billing:customers")),
                       ("SET outside lf:", lambda: c.set("other:x", "1")),
                       ("KEYS", lambda: c.keys("*")),
                       ("SHUTDOWN", lambda: c.execute_command("SHUTDOWN", "NOSAVE"))):
        try:
            call()
            check(False, "%s was allowed" % what)
        except redislib.exceptions.NoPermissionError:
            pass
        except redislib.exceptions.ResponseError as e:
            check("NOPERM" in str(e) or "permission" in str(e), "%s: %s" % (what, e))
    check(len(acl_log(env)) >= 5, "the refusals are in ACL LOG")
    check(env.r.ping(), "the server still runs")
    # A wrong password: leadflow exits 2 and says Redis refused it, without echoing it.
    with open(env.path("pw.txt"), "w") as f:
        f.write("not-the-password\n")
    rc, out, err = env.run_cli(["stats", "-c", live])
    check_eq(rc, 2, "stats with a wrong password")
    check("not-the-password" not in out + err and PASSWORD not in out + err,
          "no password in the output: " + err[-300:])


def test_a_refused_command_is_an_error_that_says_so_and_nothing_is_lost():
    """A grant without GETEX (an alias read): Redis answers NOPERM. That is an outage with
    Redis's words in the log and in stats, never "no alias" (a visitor's history would be
    split off its lead) nor a write conflict; once the grant is fixed every event counts."""
    env = H.started_env("acl-refused", partitions=1)
    env.r.execute_command(*shlex.split(readme_acl_line().replace(" +getex", "")))
    live = with_user(env, H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW))
    n = env.generate(200, 1500, 32)
    run = env.start_run(rules=live)
    H.wait_until(lambda: "NOPERM" in run.log_text(), 30, "the refusal logged")
    log = run.log_text()
    check("GETEX" in log and "keep changing" not in log, "the log names the command:\n" +
          log[-1500:])
    H.wait_until(lambda: env.r.hget("lf:ops:instance:lf-test", "state") == "degraded", 30,
                 "the instance degraded")
    rc, out, err = env.run_cli(["stats", "-c", live])
    check_eq(rc, 4, "stats exits 4 (degraded)\n" + out + err)
    check("NOPERM" in out, "stats says why:\n" + out)
    env.r.execute_command("ACL", "SETUSER", "leadflow", "+getex")
    env.wait_consumed(n, timeout=120, proc=run)
    env.settle(run)
    p = env.progress()
    check_eq(p["consumed"], n, "every event consumed once the grant is fixed")
    check_eq(p["applied"] + p["duplicates"] + p["dead"] + p["filtered"], n, "conservation")
    check_eq(run.stop(), 0, "run exit status")


if __name__ == "__main__":
    H.main([test_leadflow_works_under_the_readme_grant_and_nothing_else,
            test_a_refused_command_is_an_error_that_says_so_and_nothing_is_lost])
