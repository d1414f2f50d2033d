"""The deployment files of deploy/, checked with no server, no Docker daemon and no cluster:
the systemd unit (`systemd-analyze verify`, its settings, `systemd-analyze security`), every
YAML file (`yamllint --strict`), the compose file (`docker-compose config`), the Kubernetes
manifests (their structure, the Secret keys the rules file reads, the rules file through
`leadflow check-config`), the Dockerfile (statically: no image is pulled or built here), the
Grafana dashboard's panels, the alerts named in docs/operations.md, and that neither the
binary nor a library it loads needs memory both writable and executable.
Needs `make deps` (systemd, yamllint, docker-compose, python3-yaml). What cannot be run here
is said on a "# skip:" line: hadolint (not packaged in Debian 12), kubectl (Debian 12's
kubernetes-client 1.20 needs an API server even for --dry-run=client; none here).
Run: LF_BIN=build/leadflow python3 tests/offline/test_deploy.py"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # the runner; starts nothing
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402
import yaml  # noqa: E402  (python3-yaml)

DEPLOY = os.path.join(ROOT, "deploy")
UNIT = os.path.join(DEPLOY, "leadflow.service")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
COMPOSE_RULES = os.path.join(DEPLOY, "compose", "leadflow.yaml")
K8S = os.path.join(DEPLOY, "k8s", "leadflow.yaml")
K8S_SECRET = os.path.join(DEPLOY, "k8s", "secret.yaml.example")  # not applied with the folder
DASHBOARD = os.path.join(DEPLOY, "grafana", "leadflow-dashboard.json")
ALERTS = os.path.join(DEPLOY, "prometheus", "alerts.yml")
EXAMPLE_RULES = os.path.join(DEPLOY, "leadflow.yaml")
OPERATIONS = os.path.join(ROOT, "docs", "operations.md")
YAMLLINT_CONFIG = os.path.join(DEPLOY, ".yamllint")

# leadflow stops within 15 s in every state (README, Guarantees: "Shutdown").
LEADFLOW_STOP_S = 15


def skip(msg):
    print("# skip: %s" % msg, flush=True)


def run(argv, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def need(tool, package):
    path = shutil.which(tool)
    check(path, "%s is not installed (Debian package %s: `make deps`)" % (tool, package))
    return path


def check_config(path, env=None):
    """`leadflow check-config -q PATH`: (status, stdout + stderr)."""
    r = run([H.LF_BIN, "check-config", "-q", path], env=env, timeout=30)
    return r.returncode, r.stdout + r.stderr


def model_of(path_or_text):
    text = path_or_text
    if os.path.exists(path_or_text):
        with open(path_or_text) as f:
            text = f.read()
    doc = yaml.safe_load(text)
    return doc.get("version"), doc.get("model")


#---- systemd --------------------------------------------------------------------------------

def unit_settings():
    """[Section] -> {key: [values]} of deploy/leadflow.service (comments dropped)."""
    return H.unit_file_sections(UNIT)


def unit_copy(tmp):
    """The unit in tmp with its executables pointing at the built binary: verify requires
    ExecStart='s and ExecReload='s programs to exist (/usr/local/bin/leadflow does not here)."""
    with open(UNIT) as f:
        text = f.read()
    check("/usr/local/bin/leadflow " in text, "the unit runs /usr/local/bin/leadflow")
    path = os.path.join(tmp, "leadflow.service")
    with open(path, "w") as f:
        f.write(text.replace("/usr/local/bin/leadflow ", os.path.abspath(H.LF_BIN) + " "))
    return path


def systemd_analyze():
    tool = shutil.which("systemd-analyze")
    if not tool:
        skip("systemd-analyze is missing (Debian package systemd, `make deps`)")
        return None
    r = run([tool, "--version"])
    if r.returncode != 0:
        skip("systemd-analyze does not run here: %s" % r.stderr.strip())
        return None
    return tool


def test_systemd_unit_verifies():
    tool = systemd_analyze()
    if not tool:
        return
    tmp = tempfile.mkdtemp(prefix="lf-unit-")
    try:
        path = unit_copy(tmp)
        r = run([tool, "verify", path])
        ours = [l for l in (r.stdout + r.stderr).splitlines()
                if "leadflow" in l or tmp in l]
        check_eq((r.returncode, ours), (0, []), "systemd-analyze verify deploy/leadflow.service "
                 "(status, lines about it; all output: %r)" % (r.stdout + r.stderr))
        # verify only warns about an unknown key (status 0): the check above reads its lines.
        with open(path, "a") as f:
            f.write("[Service]\nProtectSytem=strict\n")
        r = run([tool, "verify", path])
        check("ProtectSytem" in r.stdout + r.stderr,
              "verify reports a misspelt key: %r" % (r.stdout + r.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_systemd_unit_settings():
    s = unit_settings()
    svc = s["Service"]

    def one(key):
        check(key in svc, "the unit sets %s=" % key)
        return svc[key][-1]
    for key, want in [("DynamicUser", "yes"), ("NoNewPrivileges", "yes"),
                      ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                      ("PrivateTmp", "yes"), ("MemoryDenyWriteExecute", "yes"),
                      ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                      ("CapabilityBoundingSet", ""), ("Restart", "on-failure"),
                      ("KillSignal", "SIGTERM"), ("ConfigurationDirectory", "leadflow")]:
        check_eq(one(key), want, key)
    check_eq(svc["SystemCallFilter"][0], "@system-service", "the first SystemCallFilter=")
    check(one("RestartSec"), "RestartSec=")
    check_eq(svc["ExecReload"][-1], "/bin/kill -HUP $MAINPID", "the last ExecReload=")
    m = re.fullmatch(r"(\d+)s?", one("TimeoutStopSec"))
    check(m and int(m.group(1)) > LEADFLOW_STOP_S, "TimeoutStopSec=%s covers leadflow's stop "
          "(%d s at most)" % (one("TimeoutStopSec"), LEADFLOW_STOP_S))
    start = one("ExecStart").split()
    check_eq(start[:4], ["/usr/local/bin/leadflow", "run", "-c", "/etc/leadflow/leadflow.yaml"],
             "ExecStart=")
    # Every option of ExecStart= is one `leadflow run --help` lists.
    r = run([H.LF_BIN, "run", "--help"])
    for opt in [a for a in start if a.startswith("-")]:
        check(opt in r.stdout + r.stderr, "ExecStart's %s is an option of leadflow run" % opt)
    # The credentials the comments tell the rules file to read are the ones loaded.
    with open(UNIT) as f:
        text = f.read()
    refs = set(re.findall(r"\$\{file:/run/credentials/leadflow\.service/([\w.-]+)\}", text))
    loaded = set(re.findall(r"(?m)^#? ?LoadCredential=([\w.-]+):", text))
    check(refs and refs == loaded, "credentials named %s, LoadCredential= lines %s"
          % (sorted(refs), sorted(loaded)))
    check(any(v.startswith("redis-password:") for v in svc.get("LoadCredential", [])),
          "LoadCredential=redis-password: is active")


def test_systemd_security_exposure():
    tool = systemd_analyze()
    if not tool:
        return
    tmp = tempfile.mkdtemp(prefix="lf-unit-")
    try:
        path = unit_copy(tmp)
        # Exposure 0.0 (locked down) .. 10.0; --threshold is in tenths: at most 2.0 ("OK").
        r = run([tool, "security", "--offline=yes", "--threshold=20", "--no-pager", path])
        if "--offline" in r.stderr and "unrecognized" in r.stderr:
            skip("systemd-analyze security --offline needs systemd 250+")
            return
        last = [l for l in r.stdout.splitlines() if "Overall exposure level" in l]
        check_eq(r.returncode, 0, "exposure at most 2.0: %s %s" % (last, r.stderr[-500:]))
        print("# %s" % (last[-1].strip() if last else r.stdout[-200:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_no_writable_executable_memory_needed():
    """MemoryDenyWriteExecute=yes kills a process that maps memory writable and executable:
    an executable stack (PT_GNU_STACK with X) or text relocations would. None in the binary
    or any library it loads (tests/integration/test_dashboard.py runs it under the kernel's
    equivalent too)."""
    need("readelf", "binutils")
    r = run(["ldd", H.LF_BIN])
    check_eq(r.returncode, 0, "ldd %s: %s" % (H.LF_BIN, r.stderr))
    objs = [H.LF_BIN] + re.findall(r"=> (/\S+)", r.stdout)
    check(len(objs) > 8, "libraries found: %s" % objs)
    for o in objs:
        seg = run(["readelf", "-lW", o]).stdout
        stack = [l.split() for l in seg.splitlines() if "GNU_STACK" in l]
        check(stack and "E" not in stack[0][6:-1], "%s: the stack is not executable (%s)"
              % (o, stack))
        dyn = run(["readelf", "-dW", o]).stdout
        check("TEXTREL" not in dyn, "%s has text relocations" % o)


#---- YAML -----------------------------------------------------------------------------------

def test_yamllint_strict_on_every_yaml_file():
    tool = need("yamllint", "yamllint")
    listed = run([tool, "--list-files", "-c", YAMLLINT_CONFIG, DEPLOY]).stdout.split()
    listed = {os.path.relpath(os.path.abspath(p), ROOT) for p in listed}
    want = set()
    for d, _, files in os.walk(DEPLOY):
        for f in files:
            if f.endswith((".yml", ".yaml", ".yaml.example")):
                want.add(os.path.relpath(os.path.join(d, f), ROOT))
    check_eq(sorted(want - listed), [], "YAML files yamllint would not look at")
    check("deploy/leadflow.yaml" in listed, "the example rules file is linted too")
    r = run([tool, "--strict", "-c", YAMLLINT_CONFIG, DEPLOY])
    check_eq(r.returncode, 0, "yamllint --strict -c deploy/.yamllint deploy/:\n%s%s"
             % (r.stdout, r.stderr))


#---- docker-compose -------------------------------------------------------------------------

def compose(*args):
    tool = need("docker-compose", "docker-compose")
    return run([tool, "-f", COMPOSE] + list(args), cwd=DEPLOY)


def test_compose_config():
    r = compose("config", "-q")
    check_eq(r.returncode, 0, "docker-compose config -q:\n%s" % r.stderr)
    r = compose("--profile", "monitoring", "--profile", "demo", "config")
    check_eq(r.returncode, 0, "docker-compose config with every profile:\n%s" % r.stderr)
    c = yaml.safe_load(r.stdout)
    s = c["services"]
    check_eq(sorted(s), ["gen", "grafana", "kafka", "kafka-init", "leadflow", "prometheus",
                         "redis"], "services")
    for name in ("prometheus", "grafana"):
        check_eq(s[name].get("profiles"), ["monitoring"], "%s's profile" % name)
    env = s["kafka"]["environment"]
    check("controller" in env["KAFKA_PROCESS_ROLES"] and "KAFKA_CONTROLLER_QUORUM_VOTERS" in env,
          "Kafka in KRaft mode: %s" % env)
    redis_cmd = " ".join(s["redis"]["command"])
    check("--appendonly yes" in redis_cmd and "--maxmemory-policy noeviction" in redis_cmd,
          "Redis with AOF and noeviction: %s" % redis_cmd)
    for name in ("kafka", "redis", "leadflow"):
        check(s[name].get("healthcheck", {}).get("test"), "%s has a health check" % name)
    lf = s["leadflow"]
    check_eq({k: v["condition"] for k, v in lf["depends_on"].items()},
             {"kafka-init": "service_completed_successfully", "redis": "service_healthy"},
             "leadflow's depends_on")
    check_eq(lf["build"]["context"], ROOT, "leadflow's build context: the repository")
    check_eq(os.path.join(lf["build"]["context"], lf["build"]["dockerfile"]), DOCKERFILE,
             "the Dockerfile")
    check("/healthz" in " ".join(lf["healthcheck"]["test"]), "leadflow's health check")
    # Every bind mount's source exists; the rules file is mounted where the command reads it.
    def volumes(svc):  # {target: source}; 1.29 prints "source:target[:mode]"
        out = {}
        for v in svc.get("volumes", []):
            if isinstance(v, dict):
                out[v["target"]] = v.get("source")
            else:
                parts = v.split(":")
                out[parts[1] if len(parts) > 1 else parts[0]] = parts[0] if len(parts) > 1 \
                    else None
        return out
    for svc in s.values():
        for src in volumes(svc).values():
            if src and src.startswith("/"):
                check(os.path.exists(src), "bind mount source %s" % src)
    mounts = volumes(lf)
    check_eq(mounts.get("/etc/leadflow/leadflow.yaml"), COMPOSE_RULES, "the mounted rules file")
    args = lf["command"]
    check_eq(args[args.index("-c") + 1], "/etc/leadflow/leadflow.yaml", "leadflow's -c")
    # The topics kafka-init creates are the rules file's; the ports agree.
    with open(COMPOSE_RULES) as f:
        rules = yaml.safe_load(f)
    init = " ".join(s["kafka-init"]["command"])
    for t in rules["kafka"]["topics"].values():
        check("--topic %s " % t in init, "kafka-init creates %s: %s" % (t, init))
    check_eq(rules["kafka"]["bootstrap_servers"], "kafka:9092", "brokers")
    check_eq(rules["redis"]["host"], "redis", "Redis host")
    port = rules["metrics"]["listen"].split(":")[1]
    check_eq(rules["metrics"]["listen"], "0.0.0.0:9464", "metrics.listen")
    check([p for p in lf["ports"] if str(p["target"]) == port], "port %s published" % port)


def test_compose_rules_file():
    rc, out = check_config(COMPOSE_RULES)
    check_eq((rc, out), (0, ""), "check-config -q deploy/compose/leadflow.yaml")
    check_eq(model_of(COMPOSE_RULES), model_of(EXAMPLE_RULES), "version and model: the same as "
             "deploy/leadflow.yaml's (copy the model section over after changing it)")


#---- Kubernetes -----------------------------------------------------------------------------

def k8s_docs():
    docs = []
    for path in (K8S, K8S_SECRET):
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    return by


def test_k8s_structure():
    skip("kubectl: Debian 12's kubernetes-client (1.20) needs an API server even for "
         "--dry-run=client and there is no cluster here; the manifests are checked structurally")
    by = k8s_docs()
    for kind in ("ConfigMap", "Secret", "Deployment", "PodDisruptionBudget"):
        check_eq(len(by.get(kind, [])), 1, "one %s" % kind)
    # `kubectl apply -f deploy/k8s/` takes .yaml, .yml and .json files: not the example
    # Secret, which would overwrite the real one.
    applied = [f for f in os.listdir(os.path.dirname(K8S)) if f.endswith((".yaml", ".yml",
                                                                           ".json"))]
    for f in applied:
        with open(os.path.join(os.path.dirname(K8S), f)) as fh:
            kinds = [d.get("kind") for d in yaml.safe_load_all(fh) if d]
        check("Secret" not in kinds, "deploy/k8s/%s (applied with the folder) holds no Secret"
              % f)
    dep = by["Deployment"][0]
    spec = dep["spec"]
    tpl = spec["template"]
    labels = tpl["metadata"]["labels"]
    sel = spec["selector"]["matchLabels"]
    check(sel.items() <= labels.items(), "the selector matches the pods' labels")
    pdb = by["PodDisruptionBudget"][0]
    check_eq(pdb["apiVersion"], "policy/v1", "the PDB's apiVersion")
    check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "the PDB selects "
          "the pods")
    for svc in by.get("Service", []):
        check(svc["spec"]["selector"].items() <= labels.items(), "the Service selects the pods")
    pod = tpl["spec"]
    g = pod.get("terminationGracePeriodSeconds", 30)
    check(g > LEADFLOW_STOP_S, "terminationGracePeriodSeconds %s covers leadflow's stop" % g)
    psc = pod["securityContext"]
    check(psc.get("runAsNonRoot") is True, "pod runAsNonRoot")
    check_eq(psc.get("seccompProfile", {}).get("type"), "RuntimeDefault", "pod seccompProfile")
    with open(DOCKERFILE) as f:
        user = re.findall(r"(?m)^USER\s+(\d+)", f.read())[-1]
    check_eq(str(psc.get("runAsUser")), user, "runAsUser: the image's USER")
    ann = tpl["metadata"].get("annotations", {})
    check_eq(ann.get("prometheus.io/scrape"), "true", "scrape annotation")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"]:
        name = c["name"]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            check(probe in c, "%s: a %s" % (name, probe))
            get = c[probe].get("httpGet", {})
            check_eq(get.get("path"), path, "%s %s path" % (name, probe))
            port = get.get("port")
            check(port in ports or port in ports.values(), "%s %s port %r is declared (%s)"
                  % (name, probe, port, ports))
        check_eq(ann.get("prometheus.io/port"), str(list(ports.values())[0]),
                 "the scrape annotation's port")
        sc = c["securityContext"]
        check(sc.get("readOnlyRootFilesystem") is True, "%s readOnlyRootFilesystem" % name)
        check(sc.get("allowPrivilegeEscalation") is False, "%s allowPrivilegeEscalation" % name)
        check_eq(sc.get("capabilities", {}).get("drop"), ["ALL"], "%s drops every capability"
                 % name)
        res = c.get("resources", {})
        check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and
              res.get("limits", {}).get("memory"), "%s resources: %s" % (name, res))
        # Every volume mount is a volume of the pod, every configMap/secret one of the file.
        for m in c.get("volumeMounts", []):
            check(m["name"] in volumes, "%s mounts volume %s" % (name, m["name"]))
    for v in volumes.values():
        if "configMap" in v:
            check_eq(v["configMap"]["name"], by["ConfigMap"][0]["metadata"]["name"],
                     "the ConfigMap volume")
        if "secret" in v:
            check_eq(v["secret"]["secretName"], by["Secret"][0]["metadata"]["name"],
                     "the Secret volume")


def test_k8s_rules_file_passes_check_config():
    """The ConfigMap's rules file, where the container reads it, through check-config; each
    ${file:PATH} it holds points into a mounted Secret at a key the Secret has, and each
    ${env:NAME} is a container variable from a Secret key that exists: the test writes those
    values to files and variables and points the references at them."""
    by = k8s_docs()
    cm, secret = by["ConfigMap"][0], by["Secret"][0]
    pod = by["Deployment"][0]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"].rstrip("/"): volumes[m["name"]] for m in c["volumeMounts"]}
    args = c.get("args", []) + c.get("command", [])
    cfg_path = args[args.index("-c") + 1]
    folder, key = os.path.split(cfg_path)
    check("configMap" in mounts.get(folder, {}), "-c %s is in the ConfigMap's mount" % cfg_path)
    check(key in cm["data"], "the ConfigMap has %s" % key)
    text = cm["data"][key]
    values = dict(secret.get("stringData", {}))
    tmp = tempfile.mkdtemp(prefix="lf-k8s-")
    env = dict(os.environ)
    try:
        def file_ref(m):
            path = m.group(1)
            where = [p for p in mounts if path.startswith(p + "/")]
            check(where and "secret" in mounts[where[0]], "${file:%s} is in a Secret's mount"
                  % path)
            k = path[len(where[0]) + 1:]
            check(k in values, "${file:%s}: the Secret has key %s (keys %s)"
                  % (path, k, sorted(values)))
            local = os.path.join(tmp, k)
            with open(local, "w") as f:
                f.write(values[k] + "\n")
            return "${file:%s}" % local

        def env_ref(m):
            name = m.group(1)
            e = [x for x in c.get("env", []) if x["name"] == name]
            check(e, "${env:%s}: the container sets %s" % (name, name))
            ref = e[0].get("valueFrom", {}).get("secretKeyRef", {})
            check(ref.get("key") in values, "${env:%s} comes from a Secret key that exists"
                  % name)
            env[name] = values[ref["key"]]
            return m.group(0)
        # The references of the values, not those the comments mention.
        lines = []
        for line in text.splitlines(True):
            if not line.lstrip().startswith("#"):
                line = re.sub(r"\$\{file:([^}]+)\}", file_ref, line)
                line = re.sub(r"\$\{env:([^}]+)\}", env_ref, line)
            lines.append(line)
        text = "".join(lines)
        check("${file:" in cm["data"][key], "the passwords are read from the Secret's files")
        local_rules = os.path.join(tmp, key)
        with open(local_rules, "w") as f:
            f.write(text)
        rc, out = check_config(local_rules, env=env)
        check_eq((rc, out), (0, ""), "check-config -q on the ConfigMap's rules file")
        rules = yaml.safe_load(text)
        port = int(rules["metrics"]["listen"].split(":")[1])
        check_eq(rules["metrics"]["listen"].split(":")[0], "0.0.0.0", "metrics on every address")
        check(port in [p["containerPort"] for p in c["ports"]], "metrics port %d declared" % port)
        check_eq(model_of(text), model_of(EXAMPLE_RULES), "version and model: the same as "
                 "deploy/leadflow.yaml's (copy the model section over after changing it)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#---- Dockerfile -----------------------------------------------------------------------------

def dockerfile_stages():
    """[(FROM arguments, [(INSTRUCTION, arguments)])] with continuations joined."""
    with open(DOCKERFILE) as f:
        lines = f.read().splitlines()
    instrs, cur = [], ""
    for line in lines:
        if line.strip().startswith("#") and not cur:
            continue
        if line.strip().startswith("#"):
            continue  # a comment inside a continued instruction
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        if cur.strip():
            word, _, rest = cur.strip().partition(" ")
            instrs.append((word.upper(), " ".join(rest.split())))
        cur = ""
    stages = []
    for word, rest in instrs:
        if word == "FROM":
            stages.append((rest, []))
        else:
            check(stages, "an instruction before FROM: %s" % word)
            stages[-1][1].append((word, rest))
    return stages


def apt_packages(instrs):
    out = []
    for word, rest in instrs:
        if word != "RUN":
            continue
        for m in re.finditer(r"apt-get install((?:\s+[^&;|]+))", rest):
            out += [w for w in m.group(1).split() if not w.startswith("-")]
    return out


def test_dockerfile_structure():
    skip("hadolint: not packaged in Debian 12 (no Docker daemon here either: the image is "
         "not built); the Dockerfile is checked statically")
    stages = dockerfile_stages()
    check(len(stages) >= 2, "multi-stage: %d stages" % len(stages))
    for base, _ in stages:
        check(re.match(r"debian:bookworm(-slim)?(\s|$)", base), "FROM %s: Debian 12" % base)
    build_name = stages[0][0].split()[-1]
    final = dict()
    for word, rest in stages[-1][1]:
        final.setdefault(word, []).append(rest)
    user = final.get("USER", ["root"])[-1].split(":")[0]
    check(user not in ("root", "0"), "the final stage runs as a user, not root: %s" % user)
    hc = " ".join(final.get("HEALTHCHECK", []))
    check("/healthz" in hc and "curl" in hc, "HEALTHCHECK on /healthz with curl: %r" % hc)
    check("curl" in apt_packages(stages[-1][1]), "curl is installed in the runtime stage")
    check_eq(final.get("EXPOSE"), ["9464"], "EXPOSE")
    check(":9464/" in hc, "the health check asks the exposed port")
    check(final.get("ENTRYPOINT") and "leadflow" in final["ENTRYPOINT"][-1], "ENTRYPOINT leadflow")
    copies = final.get("COPY", [])
    check(any("--from=%s" % build_name in c and "leadflow" in c for c in copies),
          "the binary comes from the build stage: %s" % copies)
    # The build stage's -dev packages: those of scripts/deps.sh's list.
    with open(os.path.join(ROOT, "scripts", "deps.sh")) as f:
        deps = set(re.findall(r"\b(lib[\w.+-]+-dev)\b", f.read())) - {"libclang-rt-14-dev"}
    dev = set(apt_packages(stages[0][1]))
    check_eq(sorted(deps - dev), [], "-dev packages of scripts/deps.sh missing in the build")


def test_docker_context_builds_the_binary():
    """The build stage's COPYs are what .dockerignore lets into the context, and `make -n
    build/leadflow` in a folder of just that works (every source named is there)."""
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        rules = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    check_eq(rules[0], "*", ".dockerignore starts by excluding everything")
    kept = [r[1:].rstrip("/") for r in rules[1:] if r.startswith("!")]
    build = dockerfile_stages()[0][1]
    sources = []
    for word, rest in build:
        if word == "COPY" and "--from" not in rest:
            sources += rest.split()[:-1]
    check(sources, "the build stage copies sources")
    for src in sources:
        check(src.rstrip("/") in kept, "COPY %s: kept by .dockerignore (%s)" % (src, kept))
    tmp = tempfile.mkdtemp(prefix="lf-context-")
    try:
        for k in kept:
            s = os.path.join(ROOT, k)
            (shutil.copytree if os.path.isdir(s) else shutil.copy)(s, os.path.join(tmp, k))
        r = run(["make", "-n", "build/leadflow"], cwd=tmp)
        check_eq(r.returncode, 0, "make -n build/leadflow in the context:\n%s" % r.stderr[-2000:])
        check("-o build/leadflow" in r.stdout, "it links build/leadflow")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_dockerfile_runtime_packages():
    """Each runtime package exists in Debian 12 (apt-cache), and the shared libraries the
    built binary needs come from them (dpkg -S) or from libc6, which every image has."""
    stages = dockerfile_stages()
    runtime = apt_packages(stages[-1][1])
    check(runtime, "the runtime stage installs packages")
    lists = [f for f in os.listdir("/var/lib/apt/lists") if "_Packages" in f] \
        if os.path.isdir("/var/lib/apt/lists") else []
    release = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            release = f.read()
    if not lists or 'VERSION_ID="12"' not in release:
        skip("apt-cache show: no Debian 12 package lists here (apt-get update on Debian 12)")
    else:
        r = run(["apt-cache", "show", "--no-all-versions"] + runtime)
        known = set(re.findall(r"(?m)^Package: (\S+)$", r.stdout))
        check_eq(sorted(set(runtime) - known), [], "runtime packages that are not Debian 12's "
                 "(%s)" % r.stderr.strip())
    if not shutil.which("dpkg"):
        skip("dpkg -S: not a Debian system")
        return
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        run(["readelf", "-d", H.LF_BIN]).stdout)
    check(len(needed) > 5, "NEEDED entries: %s" % needed)
    where = dict(re.findall(r"^\s*(\S+) \(libc6,x86-64[^)]*\) => (\S+)$",
                            run(["ldconfig", "-p"]).stdout, re.M))
    missing = []
    for lib in needed:
        path = where.get(lib)
        check(path, "%s is known to ldconfig" % lib)
        real = os.path.realpath(path)
        owners = None
        for cand in (path, real, "/usr" + path, "/usr" + real, real.replace("/usr/", "/", 1)):
            r = run(["dpkg", "-S", cand])
            if r.returncode == 0:  # "pkg:arch[, pkg:arch]: path"
                owners = {o.split(":")[0] for line in r.stdout.splitlines()
                          for o in line.split(": ", 1)[0].split(", ")}
                break
        check(owners, "the package of %s (%s)" % (lib, path))
        if not owners & (set(runtime) | {"libc6"}):
            missing.append("%s (%s)" % (lib, ", ".join(sorted(owners))))
    check_eq(missing, [], "libraries of the binary no runtime package provides")


#---- Grafana and the alerts -----------------------------------------------------------------

def test_dashboard_panels():
    with open(DASHBOARD) as f:
        d = json.load(f)
    check(d.get("schemaVersion", 0) >= 36, "schemaVersion %s" % d.get("schemaVersion"))
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = [v for v in variables.values() if v["type"] == "datasource"]
    check(ds and ds[0]["query"] == "prometheus", "a Prometheus data source variable")
    ref = "${%s}" % ds[0]["name"]
    panels, rows = [], []
    for p in d["panels"]:
        (rows if p["type"] == "row" else panels).append(p)
        panels += p.get("panels", [])
    ids = [p["id"] for p in panels + rows]
    check_eq(len(ids), len(set(ids)), "unique panel ids")
    exprs = {}
    for p in panels:
        check_eq(p.get("datasource", {}).get("uid"), ref, "panel %r's data source" % p["title"])
        check(p.get("targets") and all(t.get("expr") for t in p["targets"]),
              "panel %r has queries" % p["title"])
        exprs[p["title"]] = " ".join(t["expr"] for t in p["targets"])
        g = p["gridPos"]
        check(g["x"] + g["w"] <= 24, "panel %r fits the width" % p["title"])
    # No two panels overlap.
    cells = {}
    for p in panels + rows:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                check((x, y) not in cells, "panels %r and %r overlap" % (cells.get((x, y)),
                                                                          p["title"]))
                cells[(x, y)] = p["title"]
    everything = " ".join(exprs.values())
    for what, pattern in [
            ("events in", r"rate\(leadflow_events_in_total"),
            ("events applied", r"rate\(leadflow_events_applied_total"),
            ("duplicates", r"rate\(leadflow_events_duplicate_total"),
            ("lag per partition", r"by \(partition\) \(leadflow_consumer_lag"),
            ("total lag", r"sum\(leadflow_consumer_lag"),
            ("batch latency percentiles",
             r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(leadflow_batch_seconds_bucket"),
            ("event to transition percentiles",
             r"histogram_quantile\(.*?leadflow_event_to_transition_seconds_bucket"),
            ("transitions by stage pair", r"by \(from, to\) \(rate\(leadflow_transitions_total"),
            ("dead letters by reason", r"by \(reason\) \(rate\(leadflow_events_dead_lettered"),
            ("Redis round trip percentiles",
             r"histogram_quantile\(.*?leadflow_redis_roundtrip_seconds_bucket"),
            ("outbox depth", r"leadflow_outbox_depth"),
            ("up", r"\bup\{"),
            ("leadflow_up", r"leadflow_up"),
            ("memory", r"leadflow_process_resident_memory_bytes"),
            ("cache hit ratio", r"leadflow_lead_cache_hits_total.*/.*leadflow_lead_cache_misses"),
            ("rules version", r"rules_version[^)]*\) \(leadflow_info")]:
        check(re.search(pattern, everything), "a panel shows %s (/%s/)" % (what, pattern))


def test_alerts_agree_with_operations_doc():
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    alerts = [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]
    with open(OPERATIONS) as f:
        ops = f.read()
    check("deploy/prometheus/alerts.yml" in ops, "docs/operations.md points at the rules")
    check("deploy/grafana/leadflow-dashboard.json" in ops, "docs/operations.md names the "
          "dashboard")
    check_eq([a for a in alerts if a not in ops], [], "alerts docs/operations.md does not name")
    named = set(re.findall(r"\bLeadflow[A-Z]\w+", ops))
    check_eq(sorted(named - set(alerts)), [], "alerts docs/operations.md names that "
             "alerts.yml has not")
    for g in doc["groups"]:
        for r in g["rules"]:
            check(r.get("labels", {}).get("severity") in ("critical", "warning", "info"),
                  "%s has a severity" % r["alert"])
            check(r.get("annotations", {}).get("summary"), "%s has a summary" % r["alert"])


if __name__ == "__main__":
    H.main([test_systemd_unit_verifies, test_systemd_unit_settings,
            test_systemd_security_exposure, test_no_writable_executable_memory_needed,
            test_yamllint_strict_on_every_yaml_file, test_compose_config,
            test_compose_rules_file, test_k8s_structure, test_k8s_rules_file_passes_check_config,
            test_dockerfile_structure, test_docker_context_builds_the_binary,
            test_dockerfile_runtime_packages, test_dashboard_panels,
            test_alerts_agree_with_operations_doc])
