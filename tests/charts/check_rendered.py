#!/usr/bin/env python3
"""Invariants of a rendered sparkernel chart that a schema cannot see.

kubeconform says each manifest is a valid Kubernetes object; this says the objects agree
with each other and with the values they were rendered from:

  workers      worker count, and SPARK_WORKER_CORES / SPARK_WORKER_MEMORY equal to the
               container's CPU and memory requests and limits (memory: plus the overhead)
  driver       every port slot i < SPARKERNEL_PORT_SLOTS (driver port + 2i, block manager
               port + 2i, UI port + i, from the SPARKERNEL_*_PORT env) is in the headless
               Service and the edgenode's container ports, under a valid unique name, and
               nothing else; every UI port in the JupyterLab Service; POD_IP from the
               downward API; the master URLs point at the master's Service
  kernel-env   the driver pods' env speaks driver/settings.c: every variable the chart
               relies on is one the kernel reads, no SPARKERNEL_* variable is unknown to
               it, the slot formulas are the ones settings.c documents, and a
               spark.defaults property the kernel sets itself reaches it as its variable
  auth         one Secret name and key for _SPARK_AUTH_SECRET in master, workers, edgenode
               and test pod, that Secret rendered, spark-defaults.conf in step
  local-dirs   worker dir and local dirs on node-local emptyDir volumes, never the claim;
               the kernel's SPARKERNEL_LOCAL_DIR is spark.local.dir, on the emptyDir
  shared-data  the claim mounted at the same path in every pod, SPARKERNEL_DATA_DIR equal
  conf         spark-defaults.conf mounted at SPARK_CONF_DIR in every Spark pod
  hygiene      standard labels, selectors, non-root, no privilege escalation, limits,
               probes, images, service links off
  netpol       the NetworkPolicies (when enabled) select every pod and, modelled as
               Kubernetes applies them, let in every connection the cluster needs
               (workers <-> master, master and executors -> every slot's driver port,
               executors -> its block manager port, the release's pods <-> the workers'
               random ports, anyone -> JupyterLab) and none tried from strangers (another
               app, another release, another namespace, outside) or to the Spark UIs and
               the master UI unless a uiService type opens them
  kill         spark.ui.killEnabled in spark-defaults.conf as spark.uiKillEnabled says

Usage:
  check_rendered.py RENDERED.yaml CHART_DIR [-f VALUES.yaml]... [--set KEY=VALUE]...
      [--settings driver/settings.c]   (default: CHART_DIR/../../driver/settings.c)
  check_rendered.py RENDERED.yaml CHART_DIR --tamper NAME   (self-test: break the render
      the way NAME says and exit 0 only if the check meant to catch it fails)
Prints one line per check; exits 1 if any failed.
"""

import argparse
import base64
import copy
import os
import re
import sys

import yaml

COMPONENT = "app.kubernetes.io/component"
STANDARD_LABELS = ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/version", "app.kubernetes.io/managed-by")


class Failure(Exception):
    pass


def expect(cond, msg, *args):
    if not cond:
        raise Failure(msg % args if args else msg)


# ---- values -----------------------------------------------------------------------------

def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_values(chart_dir, files, sets=()):
    with open(chart_dir + "/values.yaml") as f:
        values = yaml.safe_load(f)
    for path in files:
        with open(path) as f:
            values = merge(values, yaml.safe_load(f) or {})
    for assignment in sets:  # helm's --set a.b=c, with its typing of ints and booleans
        key, _, raw = assignment.partition("=")
        value = int(raw) if re.fullmatch(r"-?[0-9]+", raw) else {"true": True, "false": False}.get(raw, raw)
        node = {}
        top = node
        parts = key.split(".")
        for part in parts[:-1]:
            node[part] = {}
            node = node[part]
        node[parts[-1]] = value
        values = merge(values, top)
    return values


def spark_mib(size):
    """A values memory size (Spark or Kubernetes binary units) in MiB."""
    m = re.fullmatch(r"([1-9][0-9]*)([mMgGtT][bB]?|[MGT]i)", str(size))
    expect(m, "memory size %r is not a number with a unit", size)
    return int(m.group(1)) * {"m": 1, "g": 1024, "t": 1024 * 1024}[m.group(2)[0].lower()]


def quantity_mib(q):
    """A Kubernetes memory quantity (binary units only, as the chart writes them) in MiB."""
    m = re.fullmatch(r"([0-9]+)(Mi|Gi|Ti)", str(q))
    expect(m, "memory quantity %r is not in Mi, Gi or Ti", q)
    return int(m.group(1)) * {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[m.group(2)]


def quantity_cpu(q):
    s = str(q)
    return int(s[:-1]) / 1000 if s.endswith("m") else float(s)


# ---- rendered objects -------------------------------------------------------------------

class Render:
    def __init__(self, docs, values, chart, settings=None, chart_dir="."):
        self.chart_dir = chart_dir
        self.docs = docs
        self.values = values
        self.chart = chart
        self.settings = settings

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind, name):
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return found[0] if found else None

    def workload(self, component):
        """The pod template spec (and its labels) of the Deployment or Pod of a component."""
        for d in self.docs:
            labels = d["metadata"].get("labels", {})
            if labels.get(COMPONENT) != component:
                continue
            if d["kind"] == "Deployment":
                t = d["spec"]["template"]
                return d, t["metadata"]["labels"], t["spec"]
            if d["kind"] == "Pod":
                return d, labels, d["spec"]
        raise Failure("no workload with %s=%s was rendered" % (COMPONENT, component))

    def container(self, component):
        return self.workload(component)[2]["containers"][0]

    def spark_conf(self):
        cms = self.of_kind("ConfigMap")
        expect(len(cms) == 1, "expected one ConfigMap, found %d", len(cms))
        text = cms[0]["data"]["spark-defaults.conf"]
        conf = {}
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                conf[key] = value.strip()
        return cms[0], conf


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def env_value(container, name):
    e = env_of(container).get(name)
    expect(e is not None, "container %s has no env %s", container["name"], name)
    expect("value" in e, "env %s of container %s is not a plain value", name, container["name"])
    return str(e["value"])


def volume_at(podspec, container, path):
    """The volume mounted at path in container, or None."""
    for m in container.get("volumeMounts", []):
        if m["mountPath"] == path:
            for v in podspec.get("volumes", []):
                if v["name"] == m["name"]:
                    return v
            raise Failure("mount %s of %s names no volume" % (m["name"], container["name"]))
    return None


def selector_matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        present, value = e["key"] in labels, labels.get(e["key"])
        op = e["operator"]
        if op == "In" and value not in e["values"]:
            return False
        if op == "NotIn" and present and value in e["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def port_number(container, port):
    """A Service targetPort (number or name) as a number, resolved in container."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise Failure("container %s has no port named %s" % (container["name"], port))


def port_name_ok(name):
    """A Kubernetes port name (IANA_SVC_NAME): at most 15 lowercase letters, digits and
    single hyphens, with a letter, neither starting nor ending with a hyphen."""
    return (len(name) <= 15 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) is not None
            and "--" not in name and re.search(r"[a-z]", name) is not None)


def slot_ports(driver, blockmanager, ui, slots):
    """{port name: number} of every port slot, by the kernel's formula (driver/settings.c)."""
    ports = {}
    for i in range(slots):
        ports["driver-%d" % i] = driver + 2 * i
        ports["blockmgr-%d" % i] = blockmanager + 2 * i
        ports["ui-%d" % i] = ui + i
    return ports


def port_diff(got, want):
    """What differs between two {name: port} maps, briefly."""
    parts = []
    missing = sorted(set(want) - set(got), key=lambda k: want[k])
    extra = sorted(set(got) - set(want), key=lambda k: got[k])
    wrong = sorted((k for k in set(got) & set(want) if got[k] != want[k]), key=lambda k: want[k])
    if missing:
        parts.append("missing %s" % ", ".join("%s %s" % (k, want[k]) for k in missing))
    if extra:
        parts.append("unexpected %s" % ", ".join("%s %s" % (k, got[k]) for k in extra))
    if wrong:
        parts.append("wrong %s" % ", ".join("%s %s (want %s)" % (k, got[k], want[k]) for k in wrong))
    return "; ".join(parts)


def helm_str(value):
    """A values scalar as helm's toString writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_settings(path):
    """driver/settings.c: {key: (env or None, fallback or None, doc)} of its table, and
    every other variable it reads with env_get(env, "NAME")."""
    with open(path) as f:
        text = f.read()
    table = text[text.index("static const struct def defs[]"):]
    table = table[:table.index("};")]
    defs = {}
    for m in re.finditer(r'\{\s*"([^"]+)",\s*(?:"([A-Z0-9_]+)"|NULL),\s*(?:"([^"]*)"|NULL),\s*K_[A-Z]+,'
                         r'\s*((?:"(?:[^"\\]|\\.)*"\s*)+)(?:,\s*-?\d+\s*,\s*-?\d+\s*)?\}', table):
        doc = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(4)))
        defs[m.group(1)] = (m.group(2), m.group(3), doc)
    expect(len(defs) >= 10, "could not read the settings table of %s (%d entries)", path, len(defs))
    others = set(re.findall(r'env_get\(env,\s*"([A-Z0-9_]+)"\)', text))
    return defs, others


SPARK_PODS = ("master", "worker", "edgenode", "test")
DRIVER_PODS = ("edgenode", "test")

# ---- checks -----------------------------------------------------------------------------

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


@check("workers")
def check_workers(r):
    w = r.values["workers"]
    deploy, _, spec = r.workload("worker")
    c = spec["containers"][0]
    expect(deploy["spec"]["replicas"] == w["replicas"],
           "worker replicas %s, values say %s", deploy["spec"]["replicas"], w["replicas"])
    res = c["resources"]
    cores = env_value(c, "SPARK_WORKER_CORES")
    expect(cores == str(w["cores"]), "SPARK_WORKER_CORES=%s but workers.cores=%s", cores, w["cores"])
    for kind in ("requests", "limits"):
        cpu = quantity_cpu(res[kind]["cpu"])
        expect(cpu == int(cores), "SPARK_WORKER_CORES=%s but the container's %s.cpu is %s",
               cores, kind, res[kind]["cpu"])
    memory = env_value(c, "SPARK_WORKER_MEMORY")
    expect(re.fullmatch(r"[0-9]+m", memory), "SPARK_WORKER_MEMORY=%s is not in MiB", memory)
    memory_mib = int(memory[:-1])
    expect(memory_mib == spark_mib(w["memory"]),
           "SPARK_WORKER_MEMORY=%s but workers.memory=%s", memory, w["memory"])
    overhead = spark_mib(w["memoryOverhead"])
    for kind in ("requests", "limits"):
        got = quantity_mib(res[kind]["memory"])
        expect(got == memory_mib + overhead,
               "the container's %s.memory is %s, not SPARK_WORKER_MEMORY (%s) + workers.memoryOverhead (%s)",
               kind, res[kind]["memory"], memory, w["memoryOverhead"])
    daemon = env_value(c, "SPARK_DAEMON_MEMORY")
    expect(daemon == "%dm" % spark_mib(w["daemonMemory"]),
           "SPARK_DAEMON_MEMORY=%s but workers.daemonMemory=%s", daemon, w["daemonMemory"])
    expect(int(daemon[:-1]) < overhead, "the worker daemon's heap does not fit in the overhead")
    opts = env_value(c, "SPARK_WORKER_OPTS").split()
    expect("-Dspark.worker.preferConfiguredMasterAddress=true" in opts,
           "workers would not find a restarted master through its Service: %s", opts)
    master_url = "spark://%s:%d" % (r.values["master"]["service"]["name"], r.values["master"]["service"]["port"])
    expect(master_url in c["args"], "the worker's args %s do not name %s", c["args"], master_url)


@check("driver")
def check_driver(r):
    e = r.values["edgenode"]
    _, labels, spec = r.workload("edgenode")
    c = spec["containers"][0]
    headless = [s for s in r.of_kind("Service")
                if s["spec"].get("clusterIP") == "None" and selector_matches({"matchLabels": s["spec"]["selector"]}, labels)]
    expect(len(headless) == 1, "expected one headless Service selecting the edgenode, found %d", len(headless))
    svc = headless[0]
    expect(svc["spec"].get("publishNotReadyAddresses") is True,
           "the driver's headless Service must publish the pod before it is ready")
    n = e["portSlots"]
    for comp in DRIVER_PODS:
        env = {name: env_value(r.container(comp), name) for name in
               ("SPARKERNEL_PORT_SLOTS", "SPARKERNEL_DRIVER_PORT", "SPARKERNEL_BLOCKMANAGER_PORT", "SPARKERNEL_UI_PORT")}
        want = {"SPARKERNEL_PORT_SLOTS": n, "SPARKERNEL_DRIVER_PORT": e["driverPort"],
                "SPARKERNEL_BLOCKMANAGER_PORT": e["blockManagerPort"], "SPARKERNEL_UI_PORT": e["uiPort"]}
        for name, value in want.items():
            expect(env[name] == str(value), "%s env %s=%s, values say %s", comp, name, env[name], value)
    # The ports every slot uses, by the kernel's formula applied to the edgenode's env.
    wanted = slot_ports(int(env_value(c, "SPARKERNEL_DRIVER_PORT")), int(env_value(c, "SPARKERNEL_BLOCKMANAGER_PORT")),
                        int(env_value(c, "SPARKERNEL_UI_PORT")), int(env_value(c, "SPARKERNEL_PORT_SLOTS")))
    expect(len(set(wanted.values())) == len(wanted), "two slots share a port: %s", sorted(wanted.items()))
    expect(e["service"]["port"] not in wanted.values(), "JupyterLab's port %s is a slot's port", e["service"]["port"])
    expect(max(wanted.values()) <= 65535, "a slot's port is past 65535: %s", max(wanted.values()))
    # The container: JupyterLab's port and every slot's three, each under a valid unique name.
    cports = c.get("ports", [])
    names = [p["name"] for p in cports]
    expect(len(set(names)) == len(names), "the edgenode's container port names repeat: %s", names)
    bad = [name for name in names if not port_name_ok(name)]
    expect(not bad, "invalid port names (15 characters at most, a-z 0-9 -): %s", bad)
    got = {p["name"]: p["containerPort"] for p in cports if p["name"] != "jupyter"}
    expect(got == wanted, "the edgenode's container ports differ from the %d slots': %s",
           len(wanted) // 3, port_diff(got, wanted))
    # The headless Service: exactly those ports, each reaching the container port of its number.
    sports = svc["spec"]["ports"]
    snames = [p["name"] for p in sports]
    expect(len(set(snames)) == len(snames), "the headless Service's port names repeat: %s", snames)
    bad = [name for name in snames if not port_name_ok(name)]
    expect(not bad, "invalid port names in the headless Service: %s", bad)
    got = {p["name"]: p["port"] for p in sports}
    expect(got == wanted, "the headless Service's ports differ from the %d slots': %s",
           len(wanted) // 3, port_diff(got, wanted))
    for p in sports:
        target = port_number(c, p.get("targetPort", p["port"]))
        expect(target == p["port"], "headless Service port %s (%s) targets container port %s", p["name"], p["port"], target)
    # The JupyterLab Service (JupyterLab alone) and the Spark UI Service (every slot's UI).
    others = {s["metadata"]["name"]: s for s in r.of_kind("Service") if s is not svc
              and selector_matches({"matchLabels": s["spec"].get("selector", {})}, labels)}
    full = svc["metadata"]["name"][:-len("-driver")]
    want_svcs = {full + "-jupyter": ({"jupyter": e["service"]["port"]}, e["service"]["type"]),
                 full + "-spark-ui": ({name: port for name, port in wanted.items() if name.startswith("ui-")},
                                      e["uiService"]["type"])}
    expect(sorted(others) == sorted(want_svcs), "the Services selecting the edgenode besides the headless one are "
           "%s, want %s", sorted(others), sorted(want_svcs))
    for name, (want_ports, want_type) in want_svcs.items():
        sports = {p["name"]: p for p in others[name]["spec"]["ports"]}
        got = {k: v["port"] for k, v in sports.items()}
        expect(got == want_ports, "Service %s's ports differ: %s", name, port_diff(got, want_ports))
        expect(others[name]["spec"].get("type", "ClusterIP") == want_type, "Service %s is of type %s, values say %s",
               name, others[name]["spec"].get("type", "ClusterIP"), want_type)
        for pname, p in sports.items():
            expect(port_number(c, p.get("targetPort", p["port"])) == p["port"],
                   "Service %s port %s targets another container port", name, pname)
    master = r.values["master"]["service"]
    msvc = r.named("Service", master["name"])
    expect(msvc is not None, "no Service named %s for the master", master["name"])
    _, mlabels, mspec = r.workload("master")
    expect(selector_matches({"matchLabels": msvc["spec"]["selector"]}, mlabels),
           "Service %s does not select the master pod", master["name"])
    mports = {p["name"]: p["port"] for p in msvc["spec"]["ports"]}
    expect(mports.get("cluster") == master["port"] and mports.get("http") == master["webUIPort"],
           "master Service ports %s, values %s/%s", mports, master["port"], master["webUIPort"])
    mc = mspec["containers"][0]
    expect(port_number(mc, "cluster") == master["port"] and port_number(mc, "http") == master["webUIPort"],
           "the master container's ports differ from its Service's")
    for comp in DRIVER_PODS:
        dc = r.container(comp)
        url = env_value(dc, "SPARK_MASTER_URL")
        expect(url == "spark://%s:%d" % (master["name"], master["port"]), "%s SPARK_MASTER_URL=%s", comp, url)
        ui = env_value(dc, "SPARKERNEL_MASTER_UI_URL")
        expect(ui == "http://%s:%d" % (master["name"], master["webUIPort"]),
               "%s SPARKERNEL_MASTER_UI_URL=%s", comp, ui)
    for comp in SPARK_PODS:
        pod_ip = env_of(r.container(comp)).get("POD_IP", {})
        expect(pod_ip.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
               "%s has no POD_IP from the downward API (status.podIP)", comp)


@check("auth")
def check_auth(r):
    a = r.values["auth"]
    _, conf = r.spark_conf()
    refs = {}
    for comp in SPARK_PODS:
        e = env_of(r.container(comp)).get("_SPARK_AUTH_SECRET")
        refs[comp] = e and e.get("valueFrom", {}).get("secretKeyRef")
        if e is not None:
            expect("value" not in e, "%s has the auth secret in plain text", comp)
    if not a["enabled"]:
        expect(not any(refs.values()), "auth is off but %s get _SPARK_AUTH_SECRET",
               [c for c, v in refs.items() if v])
        expect(conf.get("spark.authenticate") == "false", "auth is off but spark.authenticate=%s",
               conf.get("spark.authenticate"))
        expect(conf.get("spark.network.crypto.enabled", "false") == "false", "encryption without auth")
        return
    expect(all(refs.values()), "auth is on but %s lack _SPARK_AUTH_SECRET from a Secret",
           [c for c, v in refs.items() if not v])
    names = {(v["name"], v["key"]) for v in refs.values()}
    expect(len(names) == 1, "the pods read the auth secret from different places: %s", refs)
    name, key = names.pop()
    if a.get("existingSecret"):
        expect(name == a["existingSecret"], "auth.existingSecret=%s but pods read %s", a["existingSecret"], name)
    else:
        secret = r.named("Secret", name)
        expect(secret is not None, "the pods read the auth secret from Secret %s, which is not rendered", name)
        raw = base64.b64decode(secret["data"].get(key, ""))
        expect(len(raw) >= 32, "Secret %s key %s holds %d bytes, want a generated secret of 32 or more",
               name, key, len(raw))
    expect(conf.get("spark.authenticate") == "true", "spark.authenticate=%s", conf.get("spark.authenticate"))
    expect(conf.get("spark.authenticate.secret") == "${env:_SPARK_AUTH_SECRET}",
           "spark.authenticate.secret must be present (a standalone driver requires the key) and only "
           "reference the env, got %r", conf.get("spark.authenticate.secret"))
    crypto = conf.get("spark.network.crypto.enabled")
    expect(crypto == str(a["encryption"]).lower(), "spark.network.crypto.enabled=%s, auth.encryption=%s",
           crypto, a["encryption"])


@check("local-dirs")
def check_local_dirs(r):
    _, conf = r.spark_conf()
    local = r.values["spark"]["localDir"]
    data = r.values["persistence"]["mountPath"]
    expect(conf.get("spark.local.dir") == local, "spark.local.dir=%s, spark.localDir=%s",
           conf.get("spark.local.dir"), local)
    _, _, spec = r.workload("worker")
    c = spec["containers"][0]
    for env in ("SPARK_WORKER_DIR", "SPARK_LOCAL_DIRS"):
        path = env_value(c, env)
        vol = volume_at(spec, c, path)
        expect(vol is not None, "worker %s=%s is not a mounted volume", env, path)
        expect("emptyDir" in vol, "worker %s=%s is on volume %s, not a node-local emptyDir", env, path, vol["name"])
        expect(not (path + "/").startswith(data.rstrip("/") + "/"), "worker %s=%s is on the shared volume", env, path)
    expect(env_value(c, "SPARK_LOCAL_DIRS") == local, "worker SPARK_LOCAL_DIRS differs from spark.local.dir")
    expect(env_value(c, "SPARK_WORKER_DIR") != local, "the work dir and the local dir share one volume")
    for comp in DRIVER_PODS:
        _, _, dspec = r.workload(comp)
        vol = volume_at(dspec, dspec["containers"][0], local)
        expect(vol is not None and "emptyDir" in vol, "%s has no emptyDir at spark.local.dir %s", comp, local)
        # The kernel sets spark.local.dir in every session (its default is /tmp/sparkernel),
        # over spark-defaults.conf: it must be told the emptyDir.
        kernel_local = env_value(dspec["containers"][0], "SPARKERNEL_LOCAL_DIR")
        expect(kernel_local == local, "%s SPARKERNEL_LOCAL_DIR=%s, spark.local.dir is %s", comp, kernel_local, local)


@check("shared-data")
def check_shared_data(r):
    p = r.values["persistence"]
    path = p["mountPath"]
    claim = p.get("existingClaim")
    pvcs = r.of_kind("PersistentVolumeClaim")
    if claim:
        expect(not pvcs, "persistence.existingClaim is set but a claim is rendered")
    else:
        expect(len(pvcs) == 1, "expected one PersistentVolumeClaim, found %d", len(pvcs))
        pvc = pvcs[0]
        claim = pvc["metadata"]["name"]
        sc = p.get("storageClass") or ""
        got = pvc["spec"].get("storageClassName")
        want = None if sc == "" else ("" if sc == "-" else sc)
        expect(got == want, "storageClassName %r, persistence.storageClass %r", got, sc)
        expect(pvc["spec"]["accessModes"] == p["accessModes"], "claim access modes differ from values")
        expect(pvc["spec"]["resources"]["requests"]["storage"] == p["size"], "claim size differs from values")
        keep = pvc["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
        expect(keep == bool(p.get("keep")), "helm.sh/resource-policy keep is %s, persistence.keep %s", keep, p.get("keep"))
    for comp in SPARK_PODS:
        _, _, spec = r.workload(comp)
        for c in spec.get("initContainers", []) + spec["containers"]:
            vols = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
            expect(len(vols) == 1, "%s has %d claim volumes, want one", comp, len(vols))
            expect(vols[0]["persistentVolumeClaim"]["claimName"] == claim,
                   "%s mounts claim %s, not %s", comp, vols[0]["persistentVolumeClaim"]["claimName"], claim)
            mounts = [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] == vols[0]["name"]]
            expect(mounts == [path], "%s container %s mounts the claim at %s, not at %s", comp, c["name"], mounts, path)
            expect(env_value(c, "SPARKERNEL_DATA_DIR") == path,
                   "%s container %s SPARKERNEL_DATA_DIR differs from the mount path %s", comp, c["name"], path)


# Variables the chart sets for the kernel's own reasons, not settings.
CHART_OWN_ENV = {"SPARKERNEL_DATA_DIR"}
# What the chart relies on the kernel reading.
KERNEL_ENV_NEEDED = ("SPARK_MASTER_URL", "SPARKERNEL_MASTER_UI_URL", "POD_IP", "SPARKERNEL_DRIVER_PORT",
                     "SPARKERNEL_BLOCKMANAGER_PORT", "SPARKERNEL_UI_PORT", "SPARKERNEL_PORT_SLOTS",
                     "SPARKERNEL_LOCAL_DIR")
# The settings.c keys of the slot formula and the step of each.
SLOT_STEPS = {"spark.driver.port": ("SPARKERNEL_DRIVER_PORT", "2i"),
              "spark.driver.blockManager.port": ("SPARKERNEL_BLOCKMANAGER_PORT", "2i"),
              "spark.ui.port": ("SPARKERNEL_UI_PORT", "i")}


@check("kernel-env")
def check_kernel_env(r):
    expect(r.settings is not None, "driver/settings.c was not read")
    defs, others = r.settings
    by_env = {env: key for key, (env, _, _) in defs.items() if env}
    read = set(by_env) | others
    missing = [name for name in KERNEL_ENV_NEEDED if name not in read]
    expect(not missing, "driver/settings.c reads no %s", missing)
    with open(os.path.join(r.chart_dir, "values.yaml")) as f:
        chart_default = yaml.safe_load(f)["edgenode"]["portSlots"]
    slots = [key for key, (env, _, _) in defs.items() if env == "SPARKERNEL_PORT_SLOTS"]
    expect(slots and defs[slots[0]][1] == str(chart_default),
           "SPARKERNEL_PORT_SLOTS's default in settings.c is %s, edgenode.portSlots's is %s",
           slots and defs[slots[0]][1], chart_default)
    for key, (env, step) in SLOT_STEPS.items():
        expect(key in defs and defs[key][0] == env, "settings.c has no %s read from %s", key, env)
        expect(re.search(r"slot i uses port \+ %s\b" % re.escape(step), defs[key][2]),
               "settings.c documents %s as %r, the chart exposes port + %s per slot", key, defs[key][2], step)
    # The chart's table of the properties it passes on (sparkernel.kernelOwnedEnv) and of
    # those it refuses in spark.defaults: together, every spark.* property the kernel sets
    # by default from a variable of its own, each under that variable.
    with open(os.path.join(r.chart_dir, "templates", "_helpers.tpl")) as f:
        helpers = f.read()
    m = re.search(r'define "sparkernel.kernelOwnedEnv".*?\{\{-? dict ((?:"[^"]*"\s*)+)\|', helpers, re.S)
    expect(m, "_helpers.tpl has no sparkernel.kernelOwnedEnv dict")
    words = re.findall(r'"([^"]*)"', m.group(1))
    passed_on = dict(zip(words[::2], words[1::2]))
    m = re.search(r'range \$key := list ((?:"[^"]*"\s*)+)-?\}\}\s*\{\{-? if hasKey \$\.Values\.spark\.defaults', helpers)
    expect(m, "_helpers.tpl has no list of the spark.defaults properties it refuses")
    refused = set(re.findall(r'"([^"]*)"', m.group(1)))
    for key, var in passed_on.items():
        expect(key in defs and defs[key][0] == var, "the chart passes %s as %s, settings.c reads it from %s",
               key, var, defs.get(key, (None,))[0])
    owned = {key for key, (var, fallback, _) in defs.items() if var and fallback is not None and key.startswith("spark.")}
    loose = sorted(owned - set(passed_on) - refused)
    expect(not loose, "spark.defaults could set %s, which the kernel's own default would override", loose)
    defaults = r.values["spark"].get("defaults") or {}
    for comp in DRIVER_PODS:
        env = env_of(r.container(comp))
        unknown = [name for name in env if name.startswith("SPARKERNEL_") and name not in read | CHART_OWN_ENV]
        expect(not unknown, "%s sets %s, which driver/settings.c does not read", comp, unknown)
        pairs = {}
        if "SPARKERNEL_SPARK_CONF" in env:
            for pair in re.split(r"[;\s]+", env_value(r.container(comp), "SPARKERNEL_SPARK_CONF")):
                if "=" in pair:
                    k, _, v = pair.partition("=")
                    pairs[k] = v
        # A spark.defaults property the kernel sets itself (it has a default there) would
        # lose to the kernel's default unless the kernel is told it.
        for key, value in defaults.items():
            if key not in defs or defs[key][1] is None:
                continue
            var = defs[key][0]
            if var:
                got = env.get(var, {}).get("value")
                expect(got == helm_str(value), "spark.defaults %s=%s but %s has %s=%s: the kernel's default %s wins",
                       key, value, comp, var, got, defs[key][1])
            else:
                expect(pairs.get(key) == helm_str(value), "spark.defaults %s=%s does not reach %s's kernel "
                       "(SPARKERNEL_SPARK_CONF has %s)", key, value, comp, pairs.get(key))


@check("conf")
def check_conf(r):
    cm, _ = r.spark_conf()
    for comp in SPARK_PODS:
        _, _, spec = r.workload(comp)
        c = spec["containers"][0]
        conf_dir = env_value(c, "SPARK_CONF_DIR")
        expect(conf_dir == r.values["spark"]["confDir"], "%s SPARK_CONF_DIR=%s", comp, conf_dir)
        vol = volume_at(spec, c, conf_dir)
        expect(vol is not None and vol.get("configMap", {}).get("name") == cm["metadata"]["name"],
               "%s does not mount ConfigMap %s at %s", comp, cm["metadata"]["name"], conf_dir)


@check("hygiene")
def check_hygiene(r):
    app_version = r.chart["appVersion"]
    for d in r.docs:
        labels = d["metadata"].get("labels", {})
        missing = [l for l in STANDARD_LABELS if l not in labels]
        expect(not missing, "%s %s lacks labels %s", d["kind"], d["metadata"]["name"], missing)
        expect(labels["app.kubernetes.io/version"] == app_version, "%s %s version label %s",
               d["kind"], d["metadata"]["name"], labels["app.kubernetes.io/version"])
        expect(labels["app.kubernetes.io/managed-by"] == "Helm", "managed-by is not Helm")
        if d["kind"] == "Deployment":
            expect(selector_matches(d["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]),
                   "Deployment %s does not select its own pods", d["metadata"]["name"])
    images = r.values["images"]
    want_image = {"master": "spark", "worker": "spark", "edgenode": "edgenode", "test": "edgenode"}
    probe_port = {"master": r.values["master"]["service"]["webUIPort"],
                  "worker": r.values["workers"]["webUIPort"],
                  "edgenode": r.values["edgenode"]["service"]["port"]}
    for comp in SPARK_PODS:
        _, _, spec = r.workload(comp)
        expect(spec.get("enableServiceLinks") is False, "%s has service links on", comp)
        expect(spec.get("automountServiceAccountToken") is False, "%s mounts an API token", comp)
        sc = spec.get("securityContext", {})
        expect(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, "%s may run as root", comp)
        for c in spec.get("initContainers", []) + spec["containers"]:
            csc = c.get("securityContext", {})
            expect(csc.get("allowPrivilegeEscalation") is False, "%s/%s allows privilege escalation", comp, c["name"])
            limits = c.get("resources", {}).get("limits", {})
            expect("cpu" in limits and "memory" in limits, "%s/%s has no cpu and memory limits", comp, c["name"])
            img = images[want_image[comp]]
            expect(c["image"] == "%s:%s" % (img["repository"], img["tag"]), "%s/%s runs %s", comp, c["name"], c["image"])
        if comp in probe_port:
            c = spec["containers"][0]
            for probe in ("readinessProbe", "livenessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                expect(port is not None, "%s has no HTTP %s", comp, probe)
                expect(port_number(c, port) == probe_port[comp], "%s %s on port %s, want the UI port %s",
                       comp, probe, port, probe_port[comp])


# ---- NetworkPolicy reachability ---------------------------------------------------------

# Where a connection comes from, for admits(): a pod of the release's namespace (its
# labels), a pod of another namespace (that namespace's labels, the pod's labels), or an
# address outside the cluster (a NodePort or LoadBalancer client).
OUTSIDE = ("outside",)


def in_namespace(labels):
    return ("pod", labels)


def elsewhere(ns_labels, labels):
    return ("foreign", ns_labels, labels)


def peer_admits(peer, src):
    """Whether one NetworkPolicyPeer (podSelector / namespaceSelector / ipBlock) matches src."""
    if "ipBlock" in peer:
        return True  # an address block may hold any address, a pod's or the outside's
    if src == OUTSIDE:
        return False
    if "namespaceSelector" in peer:
        if src[0] == "pod":
            return False  # the release's namespace carries only its name label, checked below
        if not selector_matches(peer["namespaceSelector"], src[1]):
            return False
        return "podSelector" not in peer or selector_matches(peer["podSelector"], src[2])
    # a podSelector alone: pods of the policy's own namespace
    return src[0] == "pod" and selector_matches(peer["podSelector"], src[1])


def rule_ports_admit(rule, port, container):
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in p:
            return True
        try:
            lo = port_number(container, p["port"]) if container else p["port"]
        except Failure:
            continue  # a named port the pod does not have matches nothing
        if not isinstance(lo, int):
            continue
        if lo <= port <= p.get("endPort", lo):
            return True
    return False


def admits(r, src, dst_component, port):
    """Whether the rendered NetworkPolicies let src reach the pod of dst_component on TCP port.
    A pod no ingress policy selects admits everything."""
    _, labels, spec = r.workload(dst_component)
    container = spec["containers"][0]
    selecting = [p for p in r.of_kind("NetworkPolicy")
                 if selector_matches(p["spec"].get("podSelector", {}), labels)
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    for pol in selecting:
        for rule in pol["spec"].get("ingress") or []:
            if not rule_ports_admit(rule, port, container):
                continue
            froms = rule.get("from")
            if not froms or any(peer_admits(f, src) for f in froms):
                return True
    return False


# Ports Spark picks at random (ephemeral): the worker's RPC port and the executors' block
# managers. Samples across Linux's default range and beyond.
RANDOM_PORTS = (1024, 32768, 45000, 60999, 65535)


def flows(r):
    """(needed, forbidden): lists of (description, src, dst component, port)."""
    v = r.values
    e, m, w = v["edgenode"], v["master"]["service"], v["workers"]
    pods = {comp: in_namespace(r.workload(comp)[1]) for comp in SPARK_PODS}
    slots = slot_ports(e["driverPort"], e["blockManagerPort"], e["uiPort"], e["portSlots"])
    drivers = {n: p for n, p in slots.items() if n.startswith("driver-")}
    blockmgrs = {n: p for n, p in slots.items() if n.startswith("blockmgr-")}
    uis = {n: p for n, p in slots.items() if n.startswith("ui-")}
    needed = [("worker -> master cluster port", pods["worker"], "master", m["port"])]
    for d in DRIVER_PODS:
        needed += [("%s -> master cluster port" % d, pods[d], "master", m["port"]),
                   ("%s -> master web UI (/json/)" % d, pods[d], "master", m["webUIPort"])]
        for name, port in drivers.items():
            needed += [("master -> %s %s" % (d, name), pods["master"], d, port),
                       ("worker -> %s %s" % (d, name), pods["worker"], d, port)]
        for name, port in blockmgrs.items():
            needed.append(("worker -> %s %s" % (d, name), pods["worker"], d, port))
    for src in ("master", "worker") + DRIVER_PODS:
        for port in RANDOM_PORTS:
            needed.append(("%s -> worker random port %d" % (src, port), pods[src], "worker", port))
    needed.append(("outside -> JupyterLab", OUTSIDE, "edgenode", e["service"]["port"]))
    if v["master"]["uiService"]["type"] != "ClusterIP":
        needed.append(("outside -> master web UI (master.uiService.type opens it)", OUTSIDE, "master", m["webUIPort"]))
    if e["uiService"]["type"] != "ClusterIP":
        needed += [("outside -> edgenode %s (edgenode.uiService.type opens it)" % n, OUTSIDE, "edgenode", p)
                   for n, p in uis.items()]

    worker_labels = r.workload("worker")[1]
    instance = worker_labels["app.kubernetes.io/instance"]
    strangers = {
        "a pod of another app in the namespace": in_namespace({"app": "other"}),
        "another release's worker": in_namespace(dict(worker_labels, **{"app.kubernetes.io/instance": instance + "-2"})),
        "a pod of another namespace with the release's labels": elsewhere({"kubernetes.io/metadata.name": "elsewhere"},
                                                                          worker_labels),
        "outside": OUTSIDE,
    }
    forbidden = []
    for who, src in strangers.items():
        forbidden.append(("%s -> master cluster port" % who, src, "master", m["port"]))
        if v["master"]["uiService"]["type"] == "ClusterIP":
            forbidden.append(("%s -> master web UI" % who, src, "master", m["webUIPort"]))
        for port in (w["webUIPort"],) + RANDOM_PORTS:
            forbidden.append(("%s -> worker port %d" % (who, port), src, "worker", port))
        for d in DRIVER_PODS:
            for name, port in list(drivers.items()) + list(blockmgrs.items()):
                forbidden.append(("%s -> %s %s" % (who, d, name), src, d, port))
        if e["uiService"]["type"] == "ClusterIP":
            for name, port in uis.items():
                forbidden.append(("%s -> edgenode %s" % (who, name), src, "edgenode", port))
    # Within the release, the Spark UIs are not for other pods either (port-forward only).
    if e["uiService"]["type"] == "ClusterIP":
        for src in ("master", "worker", "test"):
            forbidden += [("%s -> edgenode %s" % (src, n), pods[src], "edgenode", p) for n, p in uis.items()]
    if v["master"]["uiService"]["type"] == "ClusterIP":
        forbidden.append(("worker -> master web UI", pods["worker"], "master", m["webUIPort"]))
    return needed, forbidden


@check("netpol")
def check_netpol(r):
    """The policies (networkPolicy.enabled) let through every connection the cluster needs,
    and none of the others tried: strangers to the master, the workers and the driver
    ports, anyone to the Spark UIs and the master UI unless a uiService type opens them."""
    pols = r.of_kind("NetworkPolicy")
    if not r.values["networkPolicy"]["enabled"]:
        expect(not pols, "networkPolicy.enabled is false but a NetworkPolicy is rendered")
        return
    for pol in pols:
        expect(pol["spec"].get("policyTypes") == ["Ingress"], "NetworkPolicy %s has policyTypes %s",
               pol["metadata"]["name"], pol["spec"].get("policyTypes"))
    for comp in SPARK_PODS:
        _, plabels, _ = r.workload(comp)
        expect(any(selector_matches(p["spec"]["podSelector"], plabels) for p in pols),
               "no NetworkPolicy selects the %s pod: everything may reach it", comp)
    needed, forbidden = flows(r)
    shut = [what for what, src, dst, port in needed if not admits(r, src, dst, port)]
    expect(not shut, "the NetworkPolicies keep out what the cluster needs: %s", shut)
    extra = [what for what, src, dst, port in forbidden if admits(r, src, dst, port)]
    expect(not extra, "the NetworkPolicies let in: %s", extra)


@check("kill")
def check_kill(r):
    _, conf = r.spark_conf()
    want = str(r.values["spark"]["uiKillEnabled"]).lower()
    expect(conf.get("spark.ui.killEnabled") == want, "spark-defaults.conf has spark.ui.killEnabled=%s, "
           "spark.uiKillEnabled is %s", conf.get("spark.ui.killEnabled"), want)


# ---- self-test: each way of breaking the render must be caught by its check -------------

def _worker(docs):
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["labels"][COMPONENT] == "worker")


def _edgenode(docs):
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["labels"][COMPONENT] == "edgenode")


def _set_env(container, name, value):
    for e in container["env"]:
        if e["name"] == name:
            e.clear()
            e.update(value)
            e["name"] = name


def tamper_worker_cores(docs):
    c = _worker(docs)["spec"]["template"]["spec"]["containers"][0]
    cores = next(e for e in c["env"] if e["name"] == "SPARK_WORKER_CORES")["value"]
    _set_env(c, "SPARK_WORKER_CORES", {"value": str(int(cores) + 1)})


def tamper_worker_memory(docs):
    c = _worker(docs)["spec"]["template"]["spec"]["containers"][0]
    c["resources"]["limits"]["memory"] = "1Mi"


def tamper_driver_port(docs):
    svc = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None")
    for p in svc["spec"]["ports"]:
        if p["name"] == "driver-0":
            p["port"] += 1


def tamper_last_slot(docs):
    """The last slot's block manager port missing from the edgenode's container."""
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    last = "blockmgr-%d" % max(int(p["name"].split("-")[1]) for p in c["ports"] if p["name"].startswith("blockmgr-"))
    c["ports"] = [p for p in c["ports"] if p["name"] != last]


def tamper_port_slots(docs):
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    n = next(e for e in c["env"] if e["name"] == "SPARKERNEL_PORT_SLOTS")["value"]
    _set_env(c, "SPARKERNEL_PORT_SLOTS", {"value": str(int(n) + 1)})


def tamper_local_dir_env(docs):
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    _set_env(c, "SPARKERNEL_LOCAL_DIR", {"value": "/tmp/sparkernel"})


def tamper_env_name(docs):
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    for e in c["env"]:
        if e["name"] == "SPARKERNEL_BLOCKMANAGER_PORT":
            e["name"] = "SPARKERNEL_BLOCK_MANAGER_PORT"


def _policy(docs, suffix):
    return next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith(suffix))


def tamper_netpol_edgenode(docs):
    """The last port slot's block manager port missing from the drivers' policy."""
    rule = _policy(docs, "-drivers")["spec"]["ingress"][1]
    rule["ports"] = rule["ports"][:-1]


def tamper_netpol_stranger(docs):
    """The workers' policy admits every pod of the namespace."""
    _policy(docs, "-workers")["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]


def tamper_netpol_open_ui(docs):
    """The Spark UI ports admitted from anywhere while their Service stays ClusterIP."""
    edge = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    ui = [{"protocol": "TCP", "port": p["containerPort"]} for p in edge["ports"] if p["name"].startswith("ui-")]
    _policy(docs, "-jupyter")["spec"]["ingress"].append({"ports": ui})


def tamper_netpol_missing(docs):
    """No policy for the workers."""
    docs.remove(_policy(docs, "-workers"))


def tamper_kill_enabled(docs):
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    conf = cm["data"]["spark-defaults.conf"]
    cm["data"]["spark-defaults.conf"] = re.sub(r"(spark\.ui\.killEnabled\s+)false", r"\1true", conf)


def tamper_auth_secret(docs):
    c = _worker(docs)["spec"]["template"]["spec"]["containers"][0]
    _set_env(c, "_SPARK_AUTH_SECRET", {"valueFrom": {"secretKeyRef": {"name": "another-secret", "key": "auth-secret"}}})


def tamper_work_dir(docs):
    spec = _worker(docs)["spec"]["template"]["spec"]
    for v in spec["volumes"]:
        if v["name"] == "spark-work":
            v.pop("emptyDir")
            v["persistentVolumeClaim"] = {"claimName": "shared"}


def tamper_mount_path(docs):
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    for m in c["volumeMounts"]:
        if m["name"] == "data":
            m["mountPath"] = "/mnt/elsewhere"


def tamper_pod_ip(docs):
    c = _edgenode(docs)["spec"]["template"]["spec"]["containers"][0]
    _set_env(c, "POD_IP", {"valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}})


TAMPERS = {
    "worker-cores": (tamper_worker_cores, "workers"),
    "worker-memory": (tamper_worker_memory, "workers"),
    "driver-port": (tamper_driver_port, "driver"),
    "last-slot": (tamper_last_slot, "driver"),
    "port-slots": (tamper_port_slots, "driver"),
    "local-dir-env": (tamper_local_dir_env, "local-dirs"),
    "env-name": (tamper_env_name, "kernel-env"),
    "netpol-edgenode": (tamper_netpol_edgenode, "netpol"),
    "netpol-stranger": (tamper_netpol_stranger, "netpol"),
    "netpol-open-ui": (tamper_netpol_open_ui, "netpol"),
    "netpol-missing": (tamper_netpol_missing, "netpol"),
    "kill-enabled": (tamper_kill_enabled, "kill"),
    "auth-secret": (tamper_auth_secret, "auth"),
    "work-dir": (tamper_work_dir, "local-dirs"),
    "mount-path": (tamper_mount_path, "shared-data"),
    "pod-ip": (tamper_pod_ip, "driver"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rendered")
    ap.add_argument("chart_dir")
    ap.add_argument("-f", "--values", action="append", default=[])
    ap.add_argument("--set", action="append", default=[], help="a helm --set a.b=c the render used")
    ap.add_argument("--tamper", choices=sorted(TAMPERS))
    ap.add_argument("--settings", help="the kernel's driver/settings.c (default: CHART_DIR/../../driver/settings.c)")
    args = ap.parse_args()
    settings_path = args.settings or os.path.join(args.chart_dir, "..", "..", "driver", "settings.c")

    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with open(args.chart_dir + "/Chart.yaml") as f:
        chart = yaml.safe_load(f)
    values = load_values(args.chart_dir, args.values, args.set)
    expect_fail = None
    if args.tamper:
        fn, expect_fail = TAMPERS[args.tamper]
        fn(docs)
    r = Render(docs, values, chart, read_settings(settings_path), args.chart_dir)

    failed = []
    for name, fn in CHECKS:
        try:
            fn(r)
            print("  ok    %s" % name)
        except Failure as e:
            failed.append(name)
            print("  FAIL  %s: %s" % (name, e))
        except (KeyError, IndexError, TypeError, StopIteration) as e:
            failed.append(name)
            print("  FAIL  %s: unexpected shape of the render (%s: %s)" % (name, type(e).__name__, e))
    if args.tamper:
        if expect_fail in failed:
            print("  caught: tampering '%s' fails check '%s'" % (args.tamper, expect_fail))
            return 0
        print("  MISSED: tampering '%s' did not fail check '%s'" % (args.tamper, expect_fail))
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
