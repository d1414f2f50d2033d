"""The monitoring files of deploy/ against a real leadflow, on redis-server and the embedded
broker: every metric (and label) the Grafana dashboard and the Prometheus alerts use is
served by /metrics; `promtool check rules`, `promtool check config` (the example and its
Kubernetes variant) and `promtool test rules` pass; and leadflow runs, reloads and stops
inside the sandbox of deploy/leadflow.service, rebuilt around the process: the unit's
SystemCallFilter= (a system call outside it kills the process here, where the unit would
return EPERM: stricter), RestrictAddressFamilies=, MemoryDenyWriteExecute= (the kernel's
PR_SET_MDWE), NoNewPrivileges=, an empty capability bounding set and an unprivileged user
(DynamicUser=).
Run: LF_BIN=build/leadflow python3 tests/integration/test_dashboard.py"""
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "deploy")
UNIT = os.path.join(DEPLOY, "leadflow.service")
DASHBOARD = os.path.join(DEPLOY, "grafana", "leadflow-dashboard.json")
PROM = os.path.join(DEPLOY, "prometheus")

# Labels Prometheus adds at scrape time (the target's job and instance), le of the buckets.
SCRAPE_LABELS = {"job", "instance", "le", "__name__"}
# Series Prometheus itself makes for every target.
PROMETHEUS_SERIES = {"up"}


#---- The unit's sandbox ---------------------------------------------------------------------

def _require(cond, msg):
    """check() before lfharness is imported (the sandboxed child imports none of it)."""
    if not cond:
        raise RuntimeError(msg)


def unit_settings(path=UNIT):
    """[Service] of a unit file: key -> list of values (in order; comments dropped). Its own
    reader, not lfharness.unit_file_sections: the sandbox process runs before the harness is
    imported (the harness starts things and re-executes the interpreter)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service" and "=" in line:
                k, v = line.split("=", 1)
                out.setdefault(k.strip(), []).append(v.strip())
    return out


def syscall_groups():
    """systemd-analyze's system call groups: {"@name": [entries]}."""
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                          check=True).stdout
    groups, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.split()[0])
    return groups


def expand(name, groups):
    if not name.startswith("@"):
        return {name}
    out = set()
    for x in groups[name]:
        out |= expand(x, groups)
    return out


def unit_syscalls(settings):
    """The allowed system calls of the unit's SystemCallFilter= lines (systemd's rules: the
    first line without ~ is an allow list; a ~ line removes from it, a plain line adds)."""
    groups = syscall_groups()
    allowed = None
    for v in settings.get("SystemCallFilter", []):
        deny = v.startswith("~")
        names = set()
        for n in v.lstrip("~").split():
            names |= expand(n, groups)
        if allowed is None:
            _require(not deny, "the unit's first SystemCallFilter= is an allow list")
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    _require(allowed, "the unit has a SystemCallFilter=")
    return allowed


def sandbox_exec(argv):
    """In the child (python3 test_dashboard.py --sandbox-exec PROGRAM ARGS...): enter the
    unit's sandbox, then exec PROGRAM. Prints one `sandbox:` line to stderr first."""
    import seccomp  # python3-seccomp (make deps)
    s = unit_settings()
    libc = ctypes.CDLL(None, use_errno=True)
    notes = []
    # CapabilityBoundingSet= (empty) and DynamicUser=yes: no capability, an unprivileged user.
    if os.getuid() == 0:
        for cap in range(64):
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; past the last: EINVAL
                break
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        notes.append("uid 65534")
    if s.get("NoNewPrivileges", ["no"])[-1] == "yes":
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if s.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (6.3+)
            notes.append("no memory-deny-write-execute (kernel before 6.3: %s)"
                         % os.strerror(ctypes.get_errno()))
        else:
            notes.append("memory-deny-write-execute")
    f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    unknown = []
    allowed = unit_syscalls(s)
    families = [getattr(socket, a) for a in " ".join(s.get("RestrictAddressFamilies", [])).split()]
    for name in sorted(allowed):
        if name == "socket" and families:
            continue
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            unknown.append(name)  # not a system call of this architecture
    if families:  # socket(): the listed families; any other fails with EAFNOSUPPORT
        for fam in range(64):
            action = seccomp.ALLOW if fam in families else seccomp.ERRNO(errno.EAFNOSUPPORT)
            f.add_rule(action, "socket", seccomp.Arg(0, seccomp.EQ, fam))
        f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, 64))
        notes.append("address families %s" % " ".join(map(str, sorted(families))))
    notes.append("%d system calls allowed, the rest kill" % (len(allowed) - len(unknown)))
    sys.stderr.write("sandbox: %s\n" % "; ".join(notes))
    sys.stderr.flush()
    f.load()
    os.execv(argv[0], argv)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--sandbox-exec":
    sandbox_exec(sys.argv[2:])  # never returns

sys.path.insert(0, HERE)
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402


#---- Scrapes and expressions ----------------------------------------------------------------

get = H.http_get


def served(text):
    """The series names a scrape can be queried by, from its # TYPE lines (a histogram F is
    F_bucket, F_sum and F_count, never F), and every label name of its samples."""
    names, labels = set(), set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            fam, typ = m.groups()
            if typ == "histogram":
                names |= {fam + "_bucket", fam + "_sum", fam + "_count"}
            elif typ == "summary":
                names |= {fam, fam + "_sum", fam + "_count"}
            else:
                names.add(fam)
        elif line and not line.startswith("#") and "{" in line:
            labels |= set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', line.split("}")[0]))
    return names, labels


def dashboard_queries():
    """(where, expression, legend) for every query of the dashboard and its variables."""
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append(("panel %r" % p.get("title"), t.get("expr", ""),
                            t.get("legendFormat", "")))
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if v.get("type") == "query":
            out.append(("variable $%s" % v["name"], q or "", ""))
    return out


def alert_queries():
    import yaml
    with open(os.path.join(PROM, "alerts.yml")) as f:
        doc = yaml.safe_load(f)
    out = []
    for g in doc["groups"]:
        for r in g["rules"]:
            text = " ".join(str(v) for v in (r.get("annotations") or {}).values())
            out.append(("alert %s" % r.get("alert", r.get("record")), r["expr"], text))
    return out


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


def used_names(expr):
    """Series names in a PromQL expression: identifiers not followed by "(" (functions), not
    keywords, not inside {...} or "..." or [...]; label names of by/without/on/ignoring
    clauses and of selectors."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no string contents
    labels = set()
    # Grafana's label_values(series, label): a variable's query, not PromQL.
    for m in re.finditer(r"\blabel_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", text):
        labels.add(m.group(2))
        text = text.replace(m.group(0), m.group(1))
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)",
                         text):
        labels |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    for m in re.finditer(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(1)))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", bare):
        w = m.group(1)
        if w.lower() in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]?", w):
            continue
        names.add(w)
    return names, labels


def template_labels(text):
    """Label names of Grafana legends ({{from}}) and alert templates ({{ $labels.reason }})."""
    return set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", text)) | \
        set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text))


def metrics_rules(env, port):
    path = H.set_processing(env.deploy_rules(), dedup_window=H.GEN_DEDUP_WINDOW)
    with open(path, "a") as f:
        f.write("metrics:\n  listen: 127.0.0.1:%d\n" % port)
    return path


def feed(env, leads=300, events=3000):
    return env.generate(leads, events, 5)


#---- Tests ----------------------------------------------------------------------------------

def test_dashboard_and_alerts_use_only_served_metrics():
    env = H.started_env("dashboard", partitions=2)
    port = H.free_port()
    run = env.start_run(rules=metrics_rules(env, port))
    n = feed(env)
    env.wait_consumed(n, proc=run)
    env.settle(run)
    status, text = H.wait_until(
        lambda: (lambda r: r if r[0] == 200 and "leadflow_consumer_lag{" in r[1] else None)(
            get(port, "/metrics")), 15, "a scrape with the partitions' lag")
    names, labels = served(text)
    check("leadflow_transitions_total" in names and 'leadflow_transitions_total{' in text,
          "the run made transitions (a labelled family with samples)")
    queries = dashboard_queries() + alert_queries()
    check(len(queries) > 30, "queries found: %d" % len(queries))
    problems, used = [], set()
    for where, expr, legend in queries:
        n_used, l_used = used_names(expr)
        l_used |= template_labels(legend)
        used |= n_used
        for name in sorted(n_used - names - PROMETHEUS_SERIES):
            problems.append("%s: %s is not served (expression %r)" % (where, name, expr))
        for lab in sorted(l_used - labels - SCRAPE_LABELS):
            problems.append("%s: label %s is on no served series (%r)" % (where, lab, expr))
    check(not problems, "\n".join(problems))
    # Every family served is shown or alerted on somewhere (a new metric wants a panel).
    families = {re.sub(r"_(bucket|sum|count)$", "", x) for x in names}
    shown = {re.sub(r"_(bucket|sum|count)$", "", x) for x in used}
    check_eq(sorted(families - shown), [], "served families neither in the dashboard nor in "
             "an alert")
    check_eq(run.stop(), 0, "exit status")


def test_run_reload_and_stop_in_the_units_sandbox():
    for tool in ("systemd-analyze",):
        check(shutil.which(tool), "%s (Debian's systemd package, `make deps`)" % tool)
    try:
        import seccomp  # noqa: F401
    except ImportError:
        raise H.TestFailure("python3-seccomp is not installed (`make deps`)")
    env = H.started_env("sandbox", partitions=2)
    os.chmod(env.tmp, 0o755)  # the rules file, readable by the unprivileged user
    port = H.free_port()
    rules = metrics_rules(env, port)
    os.chmod(rules, 0o644)
    run = env._proc("run-sandboxed", [sys.executable, os.path.abspath(__file__), "--sandbox-exec",
                                      H.LF_BIN, "run", "-c", rules, "--instance", "boxed"])
    H.wait_until(lambda: "sandbox:" in run.log_text() or not run.alive(), 20, "the sandbox")
    note = re.search(r"sandbox: (.*)", run.log_text())
    check(note, "the sandbox line: %r" % run.log_text()[-2000:])
    print("# %s" % note.group(1))
    n = feed(env)
    env.wait_consumed(n, proc=run)
    # The endpoint's state is handed over once a second: it may lag the progress in Redis.
    H.wait_until(lambda: get(port, "/readyz")[0] == 200, 10, "/readyz 200")
    check_eq(get(port, "/healthz")[0], 200, "/healthz")
    run.signal(signal.SIGHUP)  # ExecReload's kill -HUP
    H.wait_until(lambda: "reload (SIGHUP)" in run.log_text() or not run.alive(), 20,
                 "the reload's log line")
    check(run.alive(), "alive after SIGHUP (status %s)" % run.p.returncode)
    rc = run.stop(timeout=20)
    check(rc != -signal.SIGSYS, "killed by the seccomp filter: a system call outside the "
          "unit's SystemCallFilter= (find it with strace -f)")
    check_eq(rc, 0, "exit status after SIGTERM")
    log = run.log_text()
    check("shutting down" in log, "a clean stop: %r" % log[-1500:])
    check("reload (SIGHUP): rules version" in log, "the reload took: %r" % log[-1500:])


def test_promtool_checks_rules_config_and_alert_tests():
    promtool = shutil.which("promtool")
    check(promtool, "promtool (Debian's prometheus package, `make deps`) is installed")
    elsewhere = tempfile.mkdtemp(prefix="lf-promtool-")
    try:
        def run(*args):
            # From another folder: alerts.yml is found relative to the files that name it.
            return subprocess.run([promtool] + list(args), capture_output=True, text=True,
                                  cwd=elsewhere, timeout=60)
        r = run("check", "rules", os.path.join(PROM, "alerts.yml"))
        check_eq(r.returncode, 0, "promtool check rules:\n%s%s" % (r.stdout, r.stderr))
        r = run("check", "config", os.path.join(PROM, "prometheus.yml"))
        check_eq(r.returncode, 0, "promtool check config:\n%s%s" % (r.stdout, r.stderr))
        check("1 rule files found" in r.stdout + r.stderr, "prometheus.yml loads alerts.yml: %s"
              % r.stdout)
        # The Kubernetes job the file shows in comments, in place of the static one, in a
        # copy beside a copy of alerts.yml.
        with open(os.path.join(PROM, "prometheus.yml")) as f:
            text = f.read()
        i = text.index("\nscrape_configs:\n")
        tail = text[text.index("# On Kubernetes"):]
        k8s = "".join(l[4:] + "\n" for l in tail.splitlines() if l.startswith("#   "))
        check("kubernetes_sd_configs" in k8s, "the commented Kubernetes job")
        variant = os.path.join(elsewhere, "prometheus-k8s.yml")
        with open(variant, "w") as f:
            f.write(text[:i] + "\nscrape_configs:\n" + k8s)
        shutil.copy(os.path.join(PROM, "alerts.yml"), elsewhere)
        r = run("check", "config", variant)
        if r.returncode and "kubernetes_sd_configs not found" in r.stdout + r.stderr:
            # Debian 12's prometheus is built without Kubernetes service discovery: check the
            # rest of the job (its relabelling) with a static target in place of it.
            print("# skip: Debian's promtool has no kubernetes_sd_configs; the Kubernetes job's "
                  "relabel_configs checked with a static target instead")
            k8s = re.sub(r"(?m)^(\s*)kubernetes_sd_configs:\n\s*- role: pod\n",
                         r'\1static_configs:\n\1  - targets: ["10.0.0.1:9464"]\n', k8s)
            with open(variant, "w") as f:
                f.write(text[:i] + "\nscrape_configs:\n" + k8s)
            r = run("check", "config", variant)
        check_eq(r.returncode, 0, "promtool check config, the Kubernetes job:\n%s%s\n%s"
                 % (r.stdout, r.stderr, k8s))
        r = run("test", "rules", os.path.join(PROM, "alerts_test.yml"))
        check_eq(r.returncode, 0, "promtool test rules alerts_test.yml:\n%s%s"
                 % (r.stdout, r.stderr))
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


if __name__ == "__main__":
    H.main([test_dashboard_and_alerts_use_only_served_metrics,
            test_run_reload_and_stop_in_the_units_sandbox,
            test_promtool_checks_rules_config_and_alert_tests])
