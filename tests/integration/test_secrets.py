"""No command ever prints a secret: a Redis password (in the rules file, or in a --redis URL on
the command line), kafka.properties such as sasl.password and ssl.key.password, and an inline
PEM private key (ssl.key.pem). Every output of check-config, stats, inspect, top and run (a
start-up failure included) is searched for them.
Run: LF_BIN=build/leadflow python3 tests/integration/test_secrets.py"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

SECRET_REDIS = "rdsSecret7f3a9"
SECRET_WRONG = "wrongSecret2b81"
SECRET_SASL = "saslSecretc41e"
SECRET_KEYPW = "keypwSecret91b2"
SECRET_CLI = "cliSecret5d0c"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCpemSecretBody0123456789abcdef"
PEM = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % PEM_BODY
SECRETS = [SECRET_REDIS, SECRET_WRONG, SECRET_SASL, SECRET_KEYPW, SECRET_CLI, PEM_BODY,
           "BEGIN PRIVATE KEY"]


def start_redis_with_password(env):
    """redis-server with requirepass: leadflow must AUTH with the file's password."""
    import redis as redislib
    for _ in range(5):
        port = H.free_port()
        d = env.path("redis-%d" % port)
        os.makedirs(d, exist_ok=True)
        proc = env._proc("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", d,
                                   "--requirepass", SECRET_REDIS])

        def ping():
            try:
                c = redislib.Redis(host="127.0.0.1", port=port, password=SECRET_REDIS,
                                   socket_timeout=1)
                ok = c.ping()
                c.close()
                return ok
            except redislib.exceptions.RedisError:
                return False
        try:
            H.wait_until(ping, 10, "redis-server on port %d" % port)
        except H.TestFailure:
            proc.stop()
            continue
        env.redis_port = port
        return port
    raise H.TestFailure("could not start redis-server")


def rules(redis_port, password, broken=False, brokers=None, group="lf-secrets"):
    """SASL_SSL with a broker that is not there, or PLAINTEXT with the devbroker at `brokers`
    (librdkafka then ignores the secrets, and leadflow runs)."""
    pem = "".join("      %s\n" % line for line in PEM.splitlines())
    test_props = "".join("    %s: %s\n" % kv for kv in H.KAFKA_TEST_PROPS.items())
    return ("kafka:\n"
            "  bootstrap_servers: %s\n"
            "  group_id: %s\n"
            "  properties:\n%s"
            "    security.protocol: %s\n"
            "    sasl.mechanisms: PLAIN\n"
            "    sasl.username: leadflow\n"
            "    sasl.password: %s\n"
            "    ssl.key.password: %s\n"
            "    ssl.key.pem: |\n%s"
            "redis:\n"
            "  host: 127.0.0.1\n"
            "  port: %d\n"
            "  password: %s\n"
            "model:\n"
            "  engagement:\n"
            "    - {name: forms, kind: form_submit, points: %s}\n"
            "  fit:\n"
            "    - {name: big, traits: {employees: {min: 1000}}, points: 10}\n"
            % (brokers or "127.0.0.1:%d" % H.free_port(), group, test_props,
               "PLAINTEXT" if brokers else "SASL_SSL", SECRET_SASL, SECRET_KEYPW, pem,
               redis_port, password, "lots" if broken else "10"))


class Outputs:
    """Every run's status and output, to search all of them at the end."""

    def __init__(self, env):
        self.env = env
        self.seen = []

    def run(self, args, stdin=None, timeout=30, env_extra=None):
        e = dict(os.environ)
        e.update(env_extra or {})
        r = subprocess.run([H.LF_BIN] + args, capture_output=True, timeout=timeout,
                           input=stdin.encode() if stdin else None,
                           stdin=None if stdin else subprocess.DEVNULL, env=e)
        out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
        self.seen.append((" ".join(args), out))
        return r.returncode, out

    def add(self, what, text):
        self.seen.append((what, text))

    def check_clean(self):
        leaks = ["%s: printed %r" % (what, s) for what, out in self.seen for s in SECRETS
                 if s in out]
        check(not leaks, "secrets printed:\n  " + "\n  ".join(leaks))


def test_no_secret_printed():
    env = H.new_env("secrets")
    port = start_redis_with_password(env)
    good = env.write_rules(rules(port, SECRET_REDIS), "good.yaml")
    wrong = env.write_rules(rules(port, SECRET_WRONG), "wrong.yaml")
    broken = env.write_rules(rules(port, SECRET_REDIS, broken=True), "broken.yaml")
    o = Outputs(env)

    # check-config: the summary masks them; errors and warnings do not quote them.
    rc, out = o.run(["check-config", good])
    check_eq(rc, 0, "check-config of the good file (%s)" % out[-500:])
    check("ssl.key.pem=***" in out and "sasl.password=***" in out and "password=***" in out,
          "the summary shows the secrets as ***: %r" % out[:1500])
    with open(good) as f:
        rc, out = o.run(["check-config", "-"], stdin=f.read())
    check_eq(rc, 0, "check-config - (stdin)")
    rc, out = o.run(["check-config", broken])
    check_eq(rc, 1, "check-config of the broken file")

    # The read-only commands: authenticated with the file's password.
    for args, want in ((["stats"], 3), (["stats", "--json"], 3), (["top"], 0),
                       (["top", "--json"], 0), (["inspect", "nobody"], 1),
                       (["inspect", "nobody", "--json"], 1)):
        rc, out = o.run(args + ["-c", good])
        check_eq(rc, want, "leadflow %s (output: %s)" % (" ".join(args), out[-400:]))
    rc, out = o.run(["top"], env_extra={"LEADFLOW_CONFIG": good})
    check_eq(rc, 0, "top with $LEADFLOW_CONFIG")
    # A wrong password: refused by Redis, exit 2, the password not echoed.
    for cmd in (["stats"], ["top"], ["inspect", "x"]):
        rc, out = o.run(cmd + ["-c", wrong])
        check_eq(rc, 2, "leadflow %s with a wrong Redis password (%s)" % (cmd[0], out[-300:]))

    # Credentials on the command line are refused (usage, 1) without being echoed.
    for addr in ("redis://leadflow:%s@127.0.0.1:%d" % (SECRET_CLI, port),
                 "redis://:%s@127.0.0.1:%d/0" % (SECRET_CLI, port),
                 ":%s@127.0.0.1:%d" % (SECRET_CLI, port),
                 "%s@127.0.0.1" % SECRET_CLI):
        for cmd in (["stats"], ["top"], ["inspect", "x"], ["run"]):
            rc, out = o.run(cmd + ["-c", good, "--redis", addr])
            check_eq(rc, 1, "leadflow %s --redis <credentials> (%s)" % (cmd[0], out[-300:]))
            check("***@" in out, "the address is shown redacted: %r" % out[-300:])

    # run: its start-up failure (the key is not a real one), a wrong Redis password, and a
    # real run (PLAINTEXT to the devbroker: the secrets are set, librdkafka ignores them) that
    # stats then reports.
    plain = env.write_rules(rules(port, SECRET_REDIS, brokers=env.start_broker(1)), "plain.yaml")
    for path, what in ((good, "good"), (wrong, "wrong password"), (plain, "plain")):
        p = env._proc("run-" + what.replace(" ", "-"),
                      [H.LF_BIN, "run", "-c", path, "--instance", "sec", "--exit-idle-ms", "500"])
        try:
            p.p.wait(15)
        except subprocess.TimeoutExpired:
            p.stop()
        o.add("run (%s rules), exit %s" % (what, p.p.returncode), p.log_text())
        if what == "wrong password":
            check(p.p.returncode not in (0, None), "run with a wrong Redis password exits "
                  "non-zero (got %s)" % p.p.returncode)
    run = env.start_run("sec-live", rules=plain)

    def live():
        rc, out = o.run(["stats", "-c", plain, "--json"])
        return '"id":"sec-live"' in out and rc == 0
    H.wait_until(live, 30, "instance sec-live live in stats")
    for args in (["stats", "--json"], ["top"], ["inspect", "nobody"]):
        o.run(args + ["-c", plain])
    run.stop()
    o.add("run (live)", run.log_text())

    o.check_clean()


if __name__ == "__main__":
    H.main([test_no_secret_printed])
