#!/usr/bin/env python3
"""Invariants of a rendered sparkernel chart that a schema cannot see.

kubeconform says each manifest is a valid Kubernetes object; this says the objects agree
with each other and with the values they were rendered from:

  workers      worker count, and SPARK_WORKER_CORES / SPARK_WORKER_MEMORY equal to the
               container's CPU and memory requests and limits (memory: plus the overhead)
  driver       the headless Service's ports are the edgenode's SPARKERNEL_*_PORT env and
               container ports; POD_IP from the downward API; the master URLs point at
               the master's Service
  auth         one Secret name and key for _SPARK_AUTH_SECRET in master, workers, edgenode
               and test pod, that Secret rendered, spark-defaults.conf in step
  local-dirs   worker dir and local dirs on node-local emptyDir volumes, never the claim
  shared-data  the claim mounted at the same path in every pod, SPARKERNEL_DATA_DIR equal
  conf         spark-defaults.conf mounted at SPARK_CONF_DIR in every Spark pod
  hygiene      standard labels, selectors, non-root, no privilege escalation, limits,
               probes, images, service links off
  netpol       the NetworkPolicy (when enabled) admits exactly edgenode, workers, test pod

Usage:
  check_rendered.py RENDERED.yaml CHART_DIR [-f VALUES.yaml]... [--set KEY=VALUE]...
  check_rendered.py RENDERED.yaml CHART_DIR --tamper NAME   (self-test: break the render
      the way NAME says and exit 0 only if the check meant to catch it fails)
Prints one line per check; exits 1 if any failed.
"""

import argparse
import base64
import copy
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
    def __init__(self, docs, values, chart):
        self.docs = docs
        self.values = values
        self.chart = chart

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
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    wanted = {"driver": ("SPARKERNEL_DRIVER_PORT", e["driverPort"]),
              "blockmanager": ("SPARKERNEL_BLOCKMANAGER_PORT", e["blockManagerPort"]),
              "spark-ui": ("SPARKERNEL_UI_PORT", e["uiPort"])}
    expect(set(ports) == set(wanted), "headless Service ports %s, want %s", sorted(ports), sorted(wanted))
    for pname, (env, value) in wanted.items():
        p = ports[pname]
        target = port_number(c, p.get("targetPort", p["port"]))
        for comp in DRIVER_PODS:
            got = env_value(r.container(comp), env)
            expect(got == str(p["port"]) == str(target) == str(value),
                   "%s: headless Service port %s, target %s, %s env %s=%s, values %s",
                   pname, p["port"], target, comp, env, got, value)
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


@check("netpol")
def check_netpol(r):
    pols = r.of_kind("NetworkPolicy")
    if not r.values["networkPolicy"]["enabled"]:
        expect(not pols, "networkPolicy.enabled is false but a NetworkPolicy is rendered")
        return
    expect(len(pols) == 1, "expected one NetworkPolicy, found %d", len(pols))
    spec = pols[0]["spec"]
    pods = {comp: r.workload(comp)[1] for comp in SPARK_PODS}
    expect(selector_matches(spec["podSelector"], pods["master"]), "the NetworkPolicy does not select the master")
    expect(spec["policyTypes"] == ["Ingress"], "policyTypes %s", spec["policyTypes"])
    rule = spec["ingress"][0]
    froms = [f["podSelector"] for f in rule["from"]]
    admitted = {comp for comp, labels in pods.items() if any(selector_matches(s, labels) for s in froms)}
    expect(admitted == {"edgenode", "worker", "test"}, "the NetworkPolicy admits %s", sorted(admitted))
    stranger = dict(pods["worker"], **{"app.kubernetes.io/instance": "another-release"})
    expect(not any(selector_matches(s, stranger) for s in froms), "it admits workers of another release")
    m = r.values["master"]["service"]
    ports = sorted(p["port"] for p in rule["ports"])
    expect(ports == sorted([m["port"], m["webUIPort"]]), "it opens ports %s", ports)


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
        if p["name"] == "driver":
            p["port"] += 1


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
    args = ap.parse_args()

    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with open(args.chart_dir + "/Chart.yaml") as f:
        chart = yaml.safe_load(f)
    values = load_values(args.chart_dir, args.values, args.set)
    expect_fail = None
    if args.tamper:
        fn, expect_fail = TAMPERS[args.tamper]
        fn(docs)
    r = Render(docs, values, chart)

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
