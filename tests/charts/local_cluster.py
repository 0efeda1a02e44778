#!/usr/bin/env python3
"""Run the chart's rendered master and worker as local processes, and a Spark job on them.

kubeconform and check_rendered.py read the manifests; this runs them. It renders the
chart (on free local ports), then starts the master and one worker from the rendered
Deployments exactly as the kubelet would (command, args with $(VAR) expansion, env with
the rendered Secret's value, spark-defaults.conf from the rendered ConfigMap, emptyDir
and claim mounts as temporary directories), waits on their rendered readiness probes,
and runs `spark.range(100).count()` from a driver configured only from the edgenode's
rendered env (SPARK_MASTER_URL, POD_IP, SPARKERNEL_*_PORT, _SPARK_AUTH_SECRET), as the
kernel is. It catches what a schema cannot: a launcher that rejects its arguments, an
auth secret that does not reach a daemon, a worker that cannot hold a default executor.

The one liberty taken: the master Service's name resolves to 127.0.0.1, and the pod IP
is 127.0.0.1.

Usage: local_cluster.py HELM CHART_DIR PYTHON [-f VALUES.yaml]...
PYTHON has pyspark (its SPARK_HOME is used) and java is on PATH. Exit 0 on success.
"""

import argparse
import base64
import json
import os
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

LOCALHOST = "127.0.0.1"


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind((LOCALHOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def render(helm, chart, values_files, ports):
    m, mui, wui, drv, bm, ui, jup = ports
    cmd = [helm, "template", "local", chart, "--kube-version", os.environ.get("KUBE_VERSION", "1.34.0")]
    for f in values_files:
        cmd += ["-f", f]
    cmd += ["--set", "master.service.port=%d" % m, "--set", "master.service.webUIPort=%d" % mui,
            "--set", "workers.webUIPort=%d" % wui, "--set", "edgenode.driverPort=%d" % drv,
            "--set", "edgenode.blockManagerPort=%d" % bm, "--set", "edgenode.uiPort=%d" % ui,
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


DRIVER = r"""
import json, os, sys
from pyspark.sql import SparkSession
e = os.environ
spark = (SparkSession.builder.master(e["SPARK_MASTER_URL"])
         .appName("chart-local-cluster")
         .config("spark.driver.host", e["POD_IP"])
         .config("spark.driver.bindAddress", e["POD_IP"])
         .config("spark.driver.port", e["SPARKERNEL_DRIVER_PORT"])
         .config("spark.driver.blockManager.port", e["SPARKERNEL_BLOCKMANAGER_PORT"])
         .config("spark.ui.port", e["SPARKERNEL_UI_PORT"])
         .getOrCreate())
sc = spark.sparkContext
out = {"count": spark.range(100).count(), "app": sc.applicationId,
       "pysum": sc.parallelize(range(100), 2).map(lambda x: 2 * x).sum(), "master": sc.master,
       "ui": sc.uiWebUrl, "auth": sc.getConf().get("spark.authenticate", "false"),
       "crypto": sc.getConf().get("spark.network.crypto.enabled", "false"),
       "local": sc.getConf().get("spark.local.dir", "")}
spark.stop()
print("RESULT " + json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("helm")
    ap.add_argument("chart")
    ap.add_argument("python")
    ap.add_argument("-f", "--values", action="append", default=[])
    args = ap.parse_args()

    spark_home = subprocess.run([args.python, "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                                check=True, capture_output=True, text=True).stdout.strip()
    docs = render(args.helm, args.chart, args.values, free_ports(7))
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

        dlog = os.path.join(root, "driver.log")
        env = driver.process_env()
        env["PYSPARK_PYTHON"] = args.python
        with open(dlog, "w") as log:
            run = subprocess.run([args.python, "-c", DRIVER], env=env, stdout=subprocess.PIPE, stderr=log,
                                 text=True, timeout=240, cwd=driver.root)
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
        if not out["ui"] or not out["ui"].endswith(":" + driver.env["SPARKERNEL_UI_PORT"]):
            fail("the driver's UI is at %s, not on SPARKERNEL_UI_PORT" % out["ui"], dlog)
        if not out["local"].startswith(root):
            fail("the driver's spark.local.dir %s is not the mapped emptyDir" % out["local"], dlog)

        def finished():
            state = json.loads(http_get(ui)[1])
            return [a for a in state.get("completedapps", []) if a["id"] == out["app"]]

        wait_for("the application in the master's completed list", finished, None, mlog, 30)
        print("  driver from the edgenode's env: count=%d on %s (auth=%s, encryption=%s)"
              % (out["count"], out["master"], out["auth"], out["crypto"]))
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
