#!/usr/bin/env python3
"""Run the chart's rendered master and worker as local processes, and a Spark job on them.

kubeconform and check_rendered.py read the manifests; this runs them. It renders the
chart (on free local ports), then starts the master and one worker from the rendered
Deployments exactly as the kubelet would (command, args with $(VAR) expansion, env with
the rendered Secret's value, spark-defaults.conf from the rendered ConfigMap, emptyDir
and claim mounts as temporary directories), waits on their rendered readiness probes,
and runs `spark.range(100).count()` from a driver configured only from the edgenode's
rendered env as the kernel is: the Spark conf the kernel would give its session, made
from driver/settings.c's defaults and the variables it reads (SPARK_MASTER_URL, POD_IP,
SPARKERNEL_*), in the last port slot. It checks that the ports the driver listens on are
the edgenode's rendered container ports of that slot, and that the master's kill form and
the driver's kill links are on or off as the rendered spark-defaults.conf says
(spark.ui.killEnabled). It catches what a schema cannot: a
launcher that rejects its arguments, an auth secret that does not reach a daemon, a
worker that cannot hold the kernel's default executor.

The one liberty taken: the master Service's name resolves to 127.0.0.1, and the pod IP
is 127.0.0.1.

Usage: local_cluster.py HELM CHART_DIR PYTHON [-f VALUES.yaml]... [--settings driver/settings.c]
PYTHON has pyspark (its SPARK_HOME is used) and java is on PATH. Exit 0 on success.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from check_rendered import read_settings  # noqa: E402
from cluster import below_ephemeral  # noqa: E402

LOCALHOST = "127.0.0.1"


def free_ports(n, slots):
    """n free single ports, and two free runs of ports for the port slots: 2*slots for the
    driver and block manager ports (interleaved, as blockManagerPort = driverPort + 1) and
    slots for the UI ports. Returns (singles, driver base, UI base). All below the
    ephemeral range: a port that is free now, inside it, can be handed to any process's
    bind(0) before the daemon it is meant for binds it (seen: the worker's own RPC server
    took the port chosen for its web UI, and its readiness probe met the RPC server)."""
    held = []
    top = below_ephemeral()

    def grab(port):
        s = socket.socket()
        try:
            s.bind((LOCALHOST, port))
        except OSError:
            s.close()
            return None
        held.append(s)
        return s.getsockname()[1]

    def run_of(length):
        rng = random.Random()
        for _ in range(500):
            base = rng.randrange(10000, top - length)
            mark = len(held)
            if all(grab(base + k) for k in range(length)):
                return base
            for s in held[mark:]:
                s.close()
            del held[mark:]
        raise SystemExit("no run of %d free local ports" % length)

    try:
        driver = run_of(2 * slots)
        ui = run_of(slots)
        singles = [run_of(1) for _ in range(n)]
        return singles, driver, ui
    finally:
        for s in held:
            s.close()


def port_slots(chart, values_files):
    """edgenode.portSlots as the render will see it (values.yaml, then each -f file)."""
    slots = None
    for path in [os.path.join(chart, "values.yaml")] + list(values_files):
        with open(path) as f:
            values = yaml.safe_load(f) or {}
        slots = (values.get("edgenode") or {}).get("portSlots", slots)
    return int(slots)


def render(helm, chart, values_files, slots):
    (m, mui, wui, jup), drv, ui = free_ports(4, slots)
    cmd = [helm, "template", "local", chart, "--kube-version", os.environ.get("KUBE_VERSION", "1.34.0")]
    for f in values_files:
        cmd += ["-f", f]
    cmd += ["--set", "master.service.port=%d" % m, "--set", "master.service.webUIPort=%d" % mui,
            "--set", "workers.webUIPort=%d" % wui, "--set", "edgenode.driverPort=%d" % drv,
            "--set", "edgenode.blockManagerPort=%d" % (drv + 1), "--set", "edgenode.uiPort=%d" % ui,
            "--set", "edgenode.service.port=%d" % jup]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


class Pod:
    """One rendered pod template, mapped onto this machine."""

    def __init__(self, docs, component, root, spark_home, master_service):
        self.docs = docs
        self.component = component
        self.spark_home = spark_home
        self.master_service = master_service
        self.spec = self._podspec()
        self.container = self.spec["containers"][0]
        self.root = os.path.join(root, component)
        self.mounts = {}  # container path -> host path
        for m in self.container.get("volumeMounts", []):
            self.mounts[m["mountPath"]] = os.path.join(self.root, m["name"])
        for m in self.container.get("volumeMounts", []):  # now that every path maps
            host = self.mounts[m["mountPath"]]
            os.makedirs(host, exist_ok=True)
            vol = next(v for v in self.spec["volumes"] if v["name"] == m["name"])
            if "configMap" in vol:
                cm = self._named("ConfigMap", vol["configMap"]["name"])
                for key, text in cm["data"].items():
                    with open(os.path.join(host, key), "w") as f:
                        f.write(self.map_text(text))
            if "persistentVolumeClaim" in vol:  # one shared directory for every pod
                shared = os.path.join(root, "claim-" + vol["persistentVolumeClaim"]["claimName"])
                os.makedirs(shared, exist_ok=True)
                os.rmdir(host)
                os.symlink(shared, host)
        self.env = self._env()

    def _podspec(self):
        for d in self.docs:
            if d["kind"] == "Deployment" and d["metadata"]["labels"].get("app.kubernetes.io/component") == self.component:
                return d["spec"]["template"]["spec"]
        raise SystemExit("no %s Deployment rendered" % self.component)

    def _named(self, kind, name):
        for d in self.docs:
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
        raise SystemExit("%s %s is referenced by the %s pod but not rendered" % (kind, name, self.component))

    def map_path(self, path):
        """A container path as a host path: the longest mount that holds it, or the image's SPARK_HOME."""
        best = max((p for p in self.mounts if path == p or path.startswith(p.rstrip("/") + "/")),
                   key=len, default=None)
        if best is not None:
            return self.mounts[best] + path[len(best):]
        if path == "/opt/spark" or path.startswith("/opt/spark/"):
            return self.spark_home + path[len("/opt/spark"):]
        return path

    def map_text(self, text):
        """Maps absolute paths and the master's host name in a value or a conf file."""
        text = text.replace("//%s:" % self.master_service, "//%s:" % LOCALHOST)
        return re.sub(r"(?<![\w$}])(/[\w./-]+)", lambda m: self.map_path(m.group(1)), text)

    def _env(self):
        env = {}
        for e in self.container.get("env", []):
            if "value" in e:
                value = str(e["value"])
            else:
                src = e["valueFrom"]
                if "fieldRef" in src:
                    if src["fieldRef"]["fieldPath"] != "status.podIP":
                        raise SystemExit("unsupported fieldRef %s" % src["fieldRef"])
                    value = LOCALHOST
                elif "secretKeyRef" in src:
                    ref = src["secretKeyRef"]
                    secret = self._named("Secret", ref["name"])
                    if ref["key"] not in secret.get("data", {}):
                        raise SystemExit("Secret %s has no key %s (read by %s)" % (ref["name"], ref["key"], self.component))
                    value = base64.b64decode(secret["data"][ref["key"]]).decode()
                else:
                    raise SystemExit("unsupported env source %s" % src)
            env[e["name"]] = value if e["name"].startswith("_SPARK_AUTH") else self.map_text(value)
        return env

    def expand(self, arg):
        """Kubernetes' $(VAR) expansion of command and args."""
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: self.env.get(m.group(1), m.group(0)), arg)

    def process_env(self):
        base = {k: os.environ[k] for k in ("PATH", "JAVA_HOME", "LANG") if k in os.environ}
        base["SPARK_HOME"] = self.spark_home
        base["HOME"] = self.root
        base.update(self.env)
        return base

    def start(self, log):
        argv = [self.map_text(self.expand(a)) for a in self.container.get("command", []) + self.container.get("args", [])]
        return subprocess.Popen(argv, env=self.process_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.root)

    def probe_url(self):
        get = self.container["readinessProbe"]["httpGet"]
        port = get["port"]
        if not isinstance(port, int):
            port = next(p["containerPort"] for p in self.container["ports"] if p["name"] == port)
        return "http://%s:%d%s" % (LOCALHOST, port, get.get("path", "/"))


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_for(what, fn, proc, log_path, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            fail("%s exited with %s" % (what, proc.returncode), log_path)
        try:
            result = fn()
            if result:
                return result
        except Exception as e:  # not up yet
            last = e
        time.sleep(1)
    fail("%s not ready after %ds (%s)" % (what, timeout, last), log_path)


def fail(msg, log_path=None):
    print("FAIL: " + msg)
    if log_path and os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            lines = f.readlines()
        print("---- last lines of %s" % log_path)
        sys.stdout.writelines(lines[-25:])
    raise SystemExit(1)


def rendered_conf(docs, key):
    """A property of the rendered spark-defaults.conf, or None."""
    for d in docs:
        if d["kind"] == "ConfigMap":
            for line in d["data"].get("spark-defaults.conf", "").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return parts[1]
    return None


def kill_form_status(ui_url):
    """The HTTP status of a POST to the master UI's kill form (for an application it does
    not have): 405 when spark.ui.killEnabled is false (no such handler), else a redirect."""
    host, _, port = ui_url.split("//", 1)[1].rstrip("/").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/app/kill/", body="id=app-00000000000000-0000&terminate=true",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        return conn.getresponse().status
    finally:
        conn.close()


def kernel_conf(settings_c, env):
    """The Spark conf the kernel gives its session (settings_spark_conf in driver/settings.c):
    every spark.* setting from its variable, else its default, SPARKERNEL_SPARK_CONF's
    pairs, spark.driver.host from POD_IP; then the ports of the last slot, as a kernel
    would take when every other one is held (slot i: driver and block manager port + 2i,
    UI port + i)."""
    defs, _ = read_settings(settings_c)
    conf = {}
    for key, (var, fallback, _) in defs.items():
        value = env.get(var) if var else None
        if value is None and key == "spark.driver.host":
            value = env.get("POD_IP")
        if value is None:
            value = fallback
        if value is not None and key.startswith("spark."):
            conf[key] = value
    for pair in re.split(r"[;\s]+", env.get("SPARKERNEL_SPARK_CONF", "")):
        if "=" in pair:
            k, _, v = pair.partition("=")
            conf[k] = v
    slot = int(env["SPARKERNEL_PORT_SLOTS"]) - 1
    ports = {"driver": int(env["SPARKERNEL_DRIVER_PORT"]) + 2 * slot,
             "blockmgr": int(env["SPARKERNEL_BLOCKMANAGER_PORT"]) + 2 * slot,
             "ui": int(env["SPARKERNEL_UI_PORT"]) + slot}
    # As driver/spark.c launches a session: the slot's ports, the driver-only block manager
    # key (executors pick their own), and no drift to other ports.
    conf.update({"spark.driver.port": str(ports["driver"]),
                 "spark.driver.blockManager.port": str(ports["blockmgr"]),
                 "spark.ui.port": str(ports["ui"]), "spark.port.maxRetries": "0"})
    return conf, slot, ports


DRIVER = r"""
import json, os, sys
from pyspark.sql import SparkSession
b = SparkSession.builder
for k, v in json.loads(os.environ["KERNEL_CONF"]).items():
    b = b.config(k, v)
spark = b.getOrCreate()
sc = spark.sparkContext
out = {"count": spark.range(100).count(), "app": sc.applicationId,
       "driver_port": int(sc.getConf().get("spark.driver.port")),
       "blockmgr_port": sc._jsc.sc().env().blockManager().blockManagerId().port(),
       "executor_memory": sc.getConf().get("spark.executor.memory"),
       "dynamic": sc.getConf().get("spark.dynamicAllocation.enabled"),
       "pysum": sc.parallelize(range(100), 2).map(lambda x: 2 * x).sum(), "master": sc.master,
       "ui": sc.uiWebUrl, "auth": sc.getConf().get("spark.authenticate", "false"),
       "crypto": sc.getConf().get("spark.network.crypto.enabled", "false"),
       "local": sc.getConf().get("spark.local.dir", ""),
       "kill": sc.getConf().get("spark.ui.killEnabled", "(unset)")}
spark.stop()
print("RESULT " + json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("helm")
    ap.add_argument("chart")
    ap.add_argument("python")
    ap.add_argument("-f", "--values", action="append", default=[])
    ap.add_argument("--settings", help="the kernel's driver/settings.c (default: CHART/../../driver/settings.c)")
    args = ap.parse_args()
    args.settings = args.settings or os.path.join(args.chart, "..", "..", "driver", "settings.c")

    spark_home = subprocess.run([args.python, "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                                check=True, capture_output=True, text=True).stdout.strip()
    docs = render(args.helm, args.chart, args.values, port_slots(args.chart, args.values))
    values_master = next(d for d in docs if d["kind"] == "Service" and
                         any(p["name"] == "cluster" for p in d["spec"]["ports"]))["metadata"]["name"]
    root = tempfile.mkdtemp(prefix="sparkernel-chart-")
    procs = []
    try:
        master = Pod(docs, "master", root, spark_home, values_master)
        worker = Pod(docs, "worker", root, spark_home, values_master)
        driver = Pod(docs, "edgenode", root, spark_home, values_master)

        mlog = os.path.join(root, "master.log")
        procs.append(master.start(open(mlog, "w")))
        wait_for("the master's readiness probe", lambda: http_get(master.probe_url())[0] == 200, procs[-1], mlog)

        wlog = os.path.join(root, "worker.log")
        procs.append(worker.start(open(wlog, "w")))
        wait_for("the worker's readiness probe", lambda: http_get(worker.probe_url())[0] == 200, procs[-1], wlog)

        ui = driver.env["SPARKERNEL_MASTER_UI_URL"].rstrip("/") + "/json/"

        def registered():
            state = json.loads(http_get(ui)[1])
            alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
            return alive and alive[0]

        w = wait_for("the worker's registration with the master (auth secret shared?)", registered, procs[-1], wlog, 60)
        want_cores = int(worker.env["SPARK_WORKER_CORES"])
        want_mem = int(worker.env["SPARK_WORKER_MEMORY"].rstrip("m"))
        if (w["cores"], w["memory"]) != (want_cores, want_mem):
            fail("the master sees a worker of %s cores and %s MiB, the chart says %s and %s"
                 % (w["cores"], w["memory"], want_cores, want_mem))
        print("  master and worker up; the master reports %d core(s), %d MiB, as rendered" % (want_cores, want_mem))

        kill = rendered_conf(docs, "spark.ui.killEnabled")
        if kill not in ("true", "false"):
            fail("the rendered spark-defaults.conf sets spark.ui.killEnabled to %r" % kill)
        status = kill_form_status(driver.env["SPARKERNEL_MASTER_UI_URL"])
        if (status == 405) != (kill == "false"):
            fail("the master's kill form answered %d with spark.ui.killEnabled %s in spark-defaults.conf"
                 % (status, kill), mlog)
        print("  the master's kill form answers %d (spark.ui.killEnabled %s)" % (status, kill))

        dlog = os.path.join(root, "driver.log")
        env = driver.process_env()
        env["PYSPARK_PYTHON"] = args.python
        conf, slot, ports = kernel_conf(args.settings, driver.env)
        env["KERNEL_CONF"] = json.dumps(conf)
        with open(dlog, "w") as log:
            try:
                run = subprocess.run([args.python, "-c", DRIVER], env=env, stdout=subprocess.PIPE, stderr=log,
                                     text=True, timeout=240, cwd=driver.root)
            except subprocess.TimeoutExpired:
                fail("the driver did not finish in 240 s (conf %s)" % json.dumps(conf, sort_keys=True), dlog)
        line = next((l for l in run.stdout.splitlines() if l.startswith("RESULT ")), None)
        if run.returncode != 0 or line is None:
            fail("the driver failed (exit %s)" % run.returncode, dlog)
        out = json.loads(line[len("RESULT "):])
        if out["count"] != 100:
            fail("spark.range(100).count() returned %s" % out["count"], dlog)
        if out["pysum"] != 9900:
            fail("a Python map on the executors summed to %s, not 9900" % out["pysum"], dlog)
        if out["master"] != driver.env["SPARK_MASTER_URL"]:
            fail("the driver ran on %s" % out["master"], dlog)
        exposed = {p["name"]: p["containerPort"] for p in driver.container["ports"]}
        for kind, port in ports.items():
            name = "%s-%d" % (kind, slot)
            if exposed.get(name) != port:
                fail("slot %d's %s port is %s, the edgenode exposes %s as %s" % (slot, kind, port, name, exposed.get(name)))
        if out["driver_port"] != ports["driver"] or out["blockmgr_port"] != ports["blockmgr"]:
            fail("the driver listened on %s and its block manager on %s, not on slot %d's ports %s and %s"
                 % (out["driver_port"], out["blockmgr_port"], slot, ports["driver"], ports["blockmgr"]), dlog)
        if not out["ui"] or not out["ui"].endswith(":%d" % ports["ui"]):
            fail("the driver's UI is at %s, not on slot %d's UI port %d" % (out["ui"], slot, ports["ui"]), dlog)
        if out["kill"] != kill:
            fail("the driver has spark.ui.killEnabled=%s, spark-defaults.conf says %s" % (out["kill"], kill), dlog)
        if not out["local"].startswith(root):
            fail("the driver's spark.local.dir %s is not the mapped emptyDir" % out["local"], dlog)

        def finished():
            state = json.loads(http_get(ui)[1])
            return [a for a in state.get("completedapps", []) if a["id"] == out["app"]]

        wait_for("the application in the master's completed list", finished, None, mlog, 30)
        print("  the kernel's conf from the edgenode's env, port slot %d (%s): count=%d on %s "
              "(auth=%s, encryption=%s, executor memory %s, dynamic allocation %s)"
              % (slot, ports, out["count"], out["master"], out["auth"], out["crypto"], out["executor_memory"],
                 out["dynamic"]))
        return 0
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
