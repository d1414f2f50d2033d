"""Kafka SASL and TLS settings reach librdkafka, with their secrets from ${env:} and ${file:},
on the embedded broker — which speaks plaintext only and does not authenticate, so what can be
shown here is each failure with librdkafka's own words: a SASL client against a broker that
does not speak SASL (the instance degraded with the reason, stats exit 4, /readyz 503, SIGTERM
still ends it), a TLS key or CA file that does not exist and an unknown mechanism (exit 2 at
start-up). Logs are JSON, one object per line, and no secret appears anywhere.
Run: LF_BIN=build/leadflow python3 tests/integration/test_kafka_security.py"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402

SECRET_ENV = "saslEnvSecret4d2c"
SECRET_FILE = "keyFileSecret9a7e"
SECRETS = (SECRET_ENV, SECRET_FILE)


def rules(env, props, metrics_port=None, name="kafka-sec.yaml"):
    with open(env.path("key-password"), "w") as f:
        f.write(SECRET_FILE + "\n")
    text = ("kafka:\n  bootstrap_servers: %s\n  group_id: %s\n  properties:\n" %
            (env.brokers, env.group) +
            "".join("    %s: %s\n" % kv for kv in H.KAFKA_TEST_PROPS.items()) +
            "".join("    %s: %s\n" % kv for kv in props) +
            "redis:\n  port: %d\n" % env.redis_port +
            "log:\n  format: json\n" +
            ("metrics:\n  listen: 127.0.0.1:%d\n" % metrics_port if metrics_port else "") +
            "model:\n  engagement: [{name: p, kind: page_view, points: 1}]\n")
    return env.write_rules(text, name=name)


def json_lines(text, what):
    """Every line one JSON object with ts, level and msg; none holds a secret."""
    objs = []
    for line in text.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            check(False, "%s: a line that is not JSON: %r" % (what, line))
        check(isinstance(o, dict) and {"ts", "level", "msg"} <= set(o),
              "%s: ts, level and msg in %r" % (what, line))
        objs.append(o)
    for s in SECRETS:
        check(s not in text, "%s: secret %s logged" % (what, s))
    return objs


def get(port, path):
    return H.http_get(port, path)[0]




def run_env():
    e = dict(os.environ)
    e["LF_TEST_SASL_PASSWORD"] = SECRET_ENV
    return e


def test_sasl_reaches_librdkafka_and_the_instance_says_why_it_waits():
    env = H.started_env("kafka-sasl", partitions=1)
    port = H.free_port()
    path = rules(env, [("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanisms", "PLAIN"),
                       ("sasl.username", "leadflow"),
                       ("sasl.password", "${env:LF_TEST_SASL_PASSWORD}")], metrics_port=port)
    run = env._proc("run-sasl", [H.LF_BIN, "run", "-c", path, "--instance", "sasl"],
                    env=run_env())
    H.wait_until(lambda: "SASL" in run.log_text(), 30, "librdkafka's SASL failure logged")
    H.wait_until(lambda: env.r.hget("lf:ops:instance:sasl", "state") == "degraded", 30,
                 "the instance degraded")
    r = subprocess.run([H.LF_BIN, "stats", "-c", path], capture_output=True, env=run_env(),
                       stdin=subprocess.DEVNULL, timeout=30)
    rc, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    check_eq(rc, 4, "stats exit status (degraded)\n" + out)
    check("SASL Handshake not supported by broker" in out, "stats says why:\n" + out[-1500:])
    check_eq(get(port, "/readyz"), 503, "/readyz while Kafka refuses the session")
    check_eq(get(port, "/healthz"), 200, "/healthz: the loop turns")
    check_eq(run.stop(), 0, "SIGTERM ends it")
    objs = json_lines(run.log_text(), "run (SASL)")
    rk = [o for o in objs if o.get("component") == "librdkafka"]
    check(rk and any("SASL" in o["msg"] for o in rk),
          "librdkafka's lines go through the JSON logger with component librdkafka")
    for s in SECRETS:
        check(s not in out + err, "stats printed a secret")
    # check-config shows the reference resolved and masked, never the value.
    e = run_env()
    r = subprocess.run([H.LF_BIN, "check-config", path], capture_output=True, env=e,
                       stdin=subprocess.DEVNULL)
    text = r.stdout.decode() + r.stderr.decode()
    check_eq(r.returncode, 0, "check-config\n" + text)
    check("sasl.password=***" in text, "the summary masks it:\n" + text[-800:])
    check(SECRET_ENV not in text, "check-config printed the secret")
    # The variable unset: an error of the rules file naming the reference.
    e.pop("LF_TEST_SASL_PASSWORD")
    r = subprocess.run([H.LF_BIN, "check-config", path], capture_output=True, env=e,
                       stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 1, "check-config with the variable unset")
    check("environment variable LF_TEST_SASL_PASSWORD is not set" in r.stderr.decode() +
          r.stdout.decode(), "it says which variable: " + r.stderr.decode()[-500:])


def test_tls_and_mechanism_mistakes_stop_the_start_with_librdkafkas_reason():
    env = H.started_env("kafka-tls", partitions=1)
    cases = (
        ("a TLS key file that does not exist",
         [("security.protocol", "SSL"), ("ssl.key.location", "/nonexistent/leadflow.key"),
          ("ssl.certificate.location", "/nonexistent/leadflow.crt"),
          ("ssl.key.password", "${file:key-password}")], "ssl."),
        ("a CA file that does not exist",
         [("security.protocol", "SSL"), ("ssl.ca.location", "/nonexistent/ca.pem")],
         "ssl.ca.location"),
        ("an unknown SASL mechanism",
         [("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "PLAINISH"),
          ("sasl.username", "leadflow"), ("sasl.password", "${env:LF_TEST_SASL_PASSWORD}")],
         "Unsupported SASL mechanism"),
    )
    for i, (what, props, want) in enumerate(cases):
        path = rules(env, props, name="case-%d.yaml" % i)
        r = subprocess.run([H.LF_BIN, "run", "-c", path, "--instance", "tls"],
                           capture_output=True, timeout=60, env=run_env(),
                           stdin=subprocess.DEVNULL)
        text = r.stdout.decode() + r.stderr.decode()
        check_eq(r.returncode, 2, "%s: exit status\n%s" % (what, text[-1500:]))
        objs = json_lines(text, what)
        check(any(want in o["msg"] and o["level"] == "error" for o in objs),
              "%s: an error line with %r:\n%s" % (what, want, text[-1500:]))


def test_tls_against_a_plaintext_broker_fails_the_handshake_and_keeps_running():
    env = H.started_env("kafka-tls-handshake", partitions=1)
    path = rules(env, [("security.protocol", "SSL"),
                       ("ssl.endpoint.identification.algorithm", "https")])
    run = env._proc("run-tls", [H.LF_BIN, "run", "-c", path, "--instance", "tls"],
                    env=run_env())
    H.wait_until(lambda: env.r.hget("lf:ops:instance:tls", "state") == "degraded", 40,
                 "degraded while the TLS handshake fails")
    reason = env.r.hget("lf:ops:instance:tls", "reason") or ""
    check("SSL handshake failed" in reason, "the reason is librdkafka's: %r" % reason)
    check_eq(run.stop(), 0, "SIGTERM ends it")
    json_lines(run.log_text(), "run (TLS)")


if __name__ == "__main__":
    H.main([test_sasl_reaches_librdkafka_and_the_instance_says_why_it_waits,
            test_tls_and_mechanism_mistakes_stop_the_start_with_librdkafkas_reason,
            test_tls_against_a_plaintext_broker_fails_the_handshake_and_keeps_running])
