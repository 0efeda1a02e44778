"""The chart's pods as real containers: master, two workers and the edgenode on one podman
network, each started from the chart's rendered Deployment as a kubelet would (command and
args with $(VAR) expansion, env with the rendered Secrets' values and POD_IP, the rendered
ConfigMap mounted at SPARK_CONF_DIR, emptyDirs, the claim as one podman volume shared by
every pod, uid 185 with a read-only root filesystem and no capabilities, the CPU and memory
limits), the edgenode's initContainer first. The Service `spark-master` is a host entry
naming the master's address. Notebooks run through the edgenode's Jupyter server, its REST
and websocket API, from this host, as a browser's JupyterLab would.

Run by `make test-containers` (tests/containers/run.sh), never by `make test`. Needs root,
podman (charts/images/setup-podman.sh), HELM, and the images in SPARK_IMAGE and
EDGENODE_IMAGE (build/images/tags.env, written by charts/images/build.sh); the browser test
also needs node, Debian's /usr/bin/chromium and tests/lab's npm packages (make deps). The
containers' logs, and the browser's screenshot of the Spark UI, are kept in build/containers/
after the run.
"""

import asyncio
import base64
import datetime
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "charts", "sparkernel")
LOGS = os.path.join(ROOT, "build", "containers")
RUN = "skct%d" % os.getpid()  # prefix of everything this run creates in podman
NOTEBOOKS = ["spark-example.ipynb", "linearRegressionBostonHousing.ipynb"]
LAB_DIR = os.path.join(ROOT, "tests", "lab")  # the JupyterLab scripts and their playwright-core
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def podman(*args, check=True, timeout=300):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("podman %s failed (%d): %s" % (" ".join(args[:3]), p.returncode, p.stderr.strip()[-2000:]))
    return p.stdout.strip()


def container_log(name, tail=None):
    """A container's output, stdout and stderr interleaved as it wrote them (JupyterLab, the
    kernel and Spark's daemons log to stderr)."""
    args = ["podman", "logs"] + (["--tail", str(tail)] if tail else []) + [name]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    return p.stdout.strip()


def split_image(ref):
    repo, _, tag = ref.rpartition(":")
    return repo, tag


def render():
    cmd = [os.environ["HELM"], "template", "sparkernel", CHART, "--kube-version", "1.34.0"]
    for image, env in (("spark", "SPARK_IMAGE"), ("edgenode", "EDGENODE_IMAGE")):
        repo, tag = split_image(os.environ[env])
        cmd += ["--set", "images.%s.repository=%s" % (image, repo), "--set", "images.%s.tag=%s" % (image, tag)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def quantity(q):
    """A Kubernetes memory quantity as podman's --memory (bytes)."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(q))
    assert m, "unexpected memory quantity %r" % q
    mult = {None: 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
    return str(int(m.group(1)) * mult[m.group(2)])


def cpus(q):
    q = str(q)
    return str(int(q[:-1]) / 1000) if q.endswith("m") else q


class Stack:
    """The rendered objects, and the containers made from them."""

    def __init__(self, docs, work):
        self.docs = docs
        self.work = work
        self.net = RUN + "-net"
        self.volume = RUN + "-data"
        self.containers = []
        self.ips = {}

    def named(self, kind, name):
        return next(d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name)

    def deployment(self, component):
        return next(d for d in self.docs if d["kind"] == "Deployment"
                    and d["metadata"]["labels"].get("app.kubernetes.io/component") == component)

    def master_service(self):
        return next(d for d in self.docs if d["kind"] == "Service"
                    and any(p["name"] == "cluster" for p in d["spec"]["ports"]))["metadata"]["name"]

    def env(self, container, ip):
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
                continue
            src = e["valueFrom"]
            if "fieldRef" in src:
                assert src["fieldRef"]["fieldPath"] == "status.podIP", src
                env[e["name"]] = ip
            else:
                ref = src["secretKeyRef"]
                env[e["name"]] = base64.b64decode(self.named("Secret", ref["name"])["data"][ref["key"]]).decode()
        return env

    def run(self, name, component, container, ip, detach=True, publish=()):
        """podman run for one rendered container of a component's pod spec; publish: its
        container ports to publish on this host's loopback (a random host port each)."""
        spec = self.deployment(component)["spec"]["template"]["spec"]
        psc = spec.get("securityContext", {})
        csc = container.get("securityContext", {})
        env = self.env(container, ip)
        args = ["run", "--name", name, "--hostname", name, "--network", self.net, "--ip", ip,
                "--add-host", "%s:%s" % (self.master_service(), self.ips["master"]),
                "--user", "%s:%s" % (psc["runAsUser"], psc["runAsGroup"])]
        if "fsGroup" in psc:
            args += ["--group-add", str(psc["fsGroup"])]
        if csc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        if "ALL" in csc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", "all"]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        limits = container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", quantity(limits["memory"])]
        if "cpu" in limits:
            args += ["--cpus", cpus(limits["cpu"])]
        for k, v in env.items():
            args += ["--env", "%s=%s" % (k, v)]
        for port in publish:
            args += ["--publish", "127.0.0.1::%d" % port]
        if container.get("workingDir"):
            args += ["--workdir", container["workingDir"]]
        for m in container.get("volumeMounts", []):
            vol = next(v for v in spec["volumes"] if v["name"] == m["name"])
            ro = ":ro" if m.get("readOnly") else ""
            if "persistentVolumeClaim" in vol:
                args += ["--volume", "%s:%s%s" % (self.volume, m["mountPath"], ro)]
            elif "configMap" in vol:
                host = os.path.join(self.work, name, m["name"])
                os.makedirs(host, exist_ok=True)
                for key, text in self.named("ConfigMap", vol["configMap"]["name"])["data"].items():
                    with open(os.path.join(host, key), "w") as f:
                        f.write(text)
                args += ["--volume", "%s:%s:ro" % (host, m["mountPath"])]
            elif "emptyDir" in vol:
                host = os.path.join(self.work, name, m["name"])
                os.makedirs(host, exist_ok=True)
                os.chown(host, psc["runAsUser"], psc.get("fsGroup", psc["runAsGroup"]))
                args += ["--volume", "%s:%s%s" % (host, m["mountPath"], ro)]
            else:
                raise AssertionError("unsupported volume %s" % vol)

        def expand(a):
            return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda x: env.get(x.group(1), x.group(0)), a)

        argv = [expand(a) for a in container.get("command", []) + container.get("args", [])]
        if detach:
            args.insert(1, "--detach")
            self.containers.append(name)
        else:
            args.insert(1, "--rm")
        podman(*args, container["image"], *argv)
        return env

    def ready(self, name, component, container, ip, timeout=180):
        get = container["readinessProbe"]["httpGet"]
        port = get["port"]
        if not isinstance(port, int):
            port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
        url = "http://%s:%d%s" % (ip, port, get.get("path", "/"))
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            state = podman("inspect", "--format", "{{.State.Status}}", name, check=False)
            if state not in ("running", "created", "configured"):
                raise AssertionError("%s is %s:\n%s" % (name, state, container_log(name, 30)))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return url
            except Exception as e:  # not up yet
                last = e
            time.sleep(2)
        raise AssertionError("%s not ready at %s after %d s (%s):\n%s"
                             % (name, url, timeout, last, container_log(name, 30)))


@pytest.fixture(scope="module")
def stack():
    for var in ("HELM", "SPARK_IMAGE", "EDGENODE_IMAGE"):
        assert os.environ.get(var), "%s is not set: run tests/containers/run.sh (make test-containers)" % var
    work = tempfile.mkdtemp(prefix="sparkernel-containers-", dir="/var/tmp")
    s = Stack(render(), work)
    started = time.time()
    try:
        podman("network", "create", s.net)
        subnet = ipaddress.ip_network(json.loads(podman("network", "inspect", s.net))[0]["subnets"][0]["subnet"])
        hosts = list(subnet.hosts())
        s.ips = {"master": str(hosts[9]), "worker-0": str(hosts[10]), "worker-1": str(hosts[11]),
                 "edgenode": str(hosts[19]), "init": str(hosts[20])}
        podman("volume", "create", s.volume)
        # The claim as Kubernetes gives it to pods with fsGroup 185: writable by that group.
        podman("run", "--rm", "--user", "0", "--network", "none", "--volume", s.volume + ":/claim",
               os.environ["SPARK_IMAGE"], "sh", "-c", "chown 185:185 /claim && chmod 2775 /claim")

        master = s.deployment("master")["spec"]["template"]["spec"]["containers"][0]
        s.run(RUN + "-master", "master", master, s.ips["master"])
        s.master_ui = s.ready(RUN + "-master", "master", master, s.ips["master"]).rstrip("/")

        worker = s.deployment("worker")["spec"]["template"]["spec"]["containers"][0]
        replicas = s.deployment("worker")["spec"]["replicas"]
        assert replicas == 2, "the default values render %s workers, this test expects 2" % replicas
        s.workers = [RUN + "-worker-%d" % i for i in range(replicas)]
        s.worker_env = None
        for i, name in enumerate(s.workers):
            s.worker_env = s.run(name, "worker", worker, s.ips["worker-%d" % i])

        edge = s.deployment("edgenode")["spec"]["template"]["spec"]
        for init in edge.get("initContainers", []):
            s.run(RUN + "-" + init["name"], "edgenode", init, s.ips["init"], detach=False)
        jl = edge["containers"][0]
        jupyter_port = next(p["containerPort"] for p in jl["ports"] if p["name"] == "jupyter")
        # JupyterLab's port alone is published on this host's loopback, as the chart's
        # NodePort Service opens it (a browser's way in); the Spark UIs' ports are not.
        s.edge_env = s.run(RUN + "-edgenode", "edgenode", jl, s.ips["edgenode"], publish=[jupyter_port])
        s.jupyter = "http://%s:%d" % (s.ips["edgenode"], jupyter_port)
        s.published = "http://" + podman("port", RUN + "-edgenode", "%d/tcp" % jupyter_port).splitlines()[0]
        s.token = s.edge_env["JUPYTER_TOKEN"]
        for i, name in enumerate(s.workers):
            s.ready(name, "worker", worker, s.ips["worker-%d" % i])
        s.ready(RUN + "-edgenode", "edgenode", jl, s.ips["edgenode"])
        print("\nstack up in %.0f s: master %s, workers %s, edgenode %s (JupyterLab published at %s)"
              % (time.time() - started, s.ips["master"], [s.ips["worker-0"], s.ips["worker-1"]], s.ips["edgenode"],
                 s.published))
        yield s
    finally:
        os.makedirs(LOGS, exist_ok=True)
        for name in s.containers:
            with open(os.path.join(LOGS, name[len(RUN) + 1:] + ".log"), "w") as f:
                f.write(container_log(name))
            podman("rm", "--force", "--time", "5", name, check=False)
        podman("volume", "rm", "--force", s.volume, check=False)
        podman("network", "rm", "--force", s.net, check=False)
        shutil.rmtree(work, ignore_errors=True)


def get_json(url, token=None, timeout=10):
    req = urllib.request.Request(url, headers={"Authorization": "token " + token} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(what, fn, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            got = fn()
            if got:
                return got
        except Exception as e:  # not yet
            last = e
        time.sleep(1)
    raise AssertionError("%s: not within %d s (last: %r)" % (what, timeout, last))


class Kernel:
    """One kernel of the edgenode's Jupyter server, started with its REST API and driven over
    its websocket (/api/kernels/<id>/channels), as JupyterLab does."""

    def __init__(self, stack, name="sparkernel"):
        self.stack = stack
        self.loop = asyncio.new_event_loop()
        self.session = uuid.uuid4().hex
        req = urllib.request.Request(stack.jupyter + "/api/kernels", method="POST",
                                     data=json.dumps({"name": name}).encode(),
                                     headers={"Authorization": "token " + stack.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            self.id = json.loads(r.read())["id"]
        url = "ws://%s/api/kernels/%s/channels?session_id=%s" % (stack.jupyter.split("//", 1)[1], self.id, self.session)
        request = HTTPRequest(url, headers={"Authorization": "token " + stack.token})

        async def connect():  # tornado's client belongs to the loop that runs it
            return await websocket_connect(request, max_message_size=64 << 20)
        self.ws = self.loop.run_until_complete(connect())

    def execute(self, code, timeout=300):
        """Runs one cell: (execute_reply content, iopub output messages)."""
        return self.loop.run_until_complete(self._execute(code, timeout))

    async def _execute(self, code, timeout):
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": self.session,
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        reply, idle, outputs = None, False, []
        deadline = time.time() + timeout
        while reply is None or not idle:
            left = deadline - time.time()
            assert left > 0, "no reply to %r within %d s (outputs so far: %s)" % (code[:80], timeout, outputs)
            raw = await asyncio.wait_for(self.ws.read_message(), left)
            assert raw is not None, "the kernel's websocket closed while running %r" % code[:80]
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if m["channel"] == "shell" and m["msg_type"] == "execute_reply":
                reply = m["content"]
            elif m["channel"] == "iopub":
                if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    idle = True
                elif m["msg_type"] in ("stream", "execute_result", "display_data", "update_display_data", "error"):
                    outputs.append(m)
        return reply, outputs

    def value(self, code, timeout=300):
        """The text/plain of a cell's result; fails on an error reply."""
        reply, outputs = self.execute(code, timeout)
        assert reply["status"] == "ok", "%r failed: %s %s" % (code[:80], reply.get("ename"), reply.get("evalue"))
        results = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
        assert results, "%r gave no result: %s" % (code[:80], outputs)
        return results[-1]

    def shutdown(self):
        self.ws.close()
        req = urllib.request.Request(self.stack.jupyter + "/api/kernels/" + self.id, method="DELETE",
                                     headers={"Authorization": "token " + self.stack.token})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 204
        self.loop.close()


def test_master_ui_lists_both_workers(stack):
    def alive():
        workers = [w for w in get_json(stack.master_ui + "/json/")["workers"] if w["state"] == "ALIVE"]
        return len(workers) == 2 and workers
    workers = wait_until("both workers registered with the master (RPC auth with the rendered secret)", alive, 120)
    want = (int(stack.worker_env["SPARK_WORKER_CORES"]), int(stack.worker_env["SPARK_WORKER_MEMORY"].rstrip("m")))
    assert sorted(w["host"] for w in workers) == sorted([stack.ips["worker-0"], stack.ips["worker-1"]])
    assert all((w["cores"], w["memory"]) == want for w in workers), workers


def test_jupyter_lists_the_sparkernel_kernelspec(stack):
    specs = get_json(stack.jupyter + "/api/kernelspecs", stack.token)
    assert "sparkernel" in specs["kernelspecs"], sorted(specs["kernelspecs"])
    assert specs["kernelspecs"]["sparkernel"]["spec"]["display_name"] == "PySpark (sparkernel)"
    with pytest.raises(urllib.error.HTTPError) as e:  # and the token is required
        get_json(stack.jupyter + "/api/kernelspecs", "not-the-token")
    assert e.value.code == 403


def test_widgets_and_the_debugger_in_the_edgenode(stack):
    """What JupyterLab needs for ipywidgets and its debugger: the kernelspec says debugger,
    the kernel's Python has ipywidgets, comm and debugpy, and a widget opens its comm."""
    specs = get_json(stack.jupyter + "/api/kernelspecs", stack.token)
    assert specs["kernelspecs"]["sparkernel"]["spec"]["metadata"]["debugger"] is True
    k = Kernel(stack)
    try:
        assert k.value("import ipywidgets, comm, debugpy\nipywidgets.__version__").startswith("'8.")
        reply, outputs = k.execute("ipywidgets.IntSlider(value=3)")
        assert reply["status"] == "ok", reply
        views = [m for m in outputs if "application/vnd.jupyter.widget-view+json"
                 in m["content"].get("data", {})]
        assert views, outputs
    finally:
        k.shutdown()


def test_examples_copied_onto_the_shared_volume(stack):
    listing = get_json(stack.jupyter + "/api/contents/", stack.token)
    names = {c["name"] for c in listing["content"]}
    assert set(NOTEBOOKS) <= names, sorted(names)


def test_session_runs_on_both_workers_and_leaves_the_master_on_shutdown(stack):
    k = Kernel(stack)
    try:
        assert k.value("spark.range(1000).count()", timeout=600) == "1000"
        app = k.value("sc.applicationId").strip("'")
        # Slow tasks so that the second executor (dynamic allocation) takes some of them.
        hosts = k.value("import socket, time\n"
                        "sorted(set(sc.parallelize(range(16), 16)"
                        ".map(lambda _: (time.sleep(2), socket.gethostname())[1]).collect()))", timeout=600)
        assert all(w in hosts for w in stack.workers), "tasks ran on %s, not on both %s" % (hosts, stack.workers)
        ui = k.value("sc.uiWebUrl").strip("'")
        assert ui.startswith("http://%s:" % stack.ips["edgenode"]), ui
        with urllib.request.urlopen(ui.rstrip("/") + "/jobs/", timeout=10) as r:  # the "Spark UI" link
            assert r.status == 200 and b"Spark Jobs" in r.read()
        active = [a["id"] for a in get_json(stack.master_ui + "/json/")["activeapps"]]
        assert app in active, (app, active)
    finally:
        k.shutdown()

    def gone():
        state = get_json(stack.master_ui + "/json/")
        return (app not in [a["id"] for a in state["activeapps"]]
                and app in [a["id"] for a in state["completedapps"]])
    wait_until("application %s gone from the master after the kernel's shutdown" % app, gone, 60)


def test_spark_ui_link_in_a_cell_opens_through_jupyter(stack):
    """Issue 18 item 4: the "Spark UI" link of a cell's progress display, as the browser
    follows it from JupyterLab's page (a path on JupyterLab's origin), opens the job's page
    through the edgenode's Jupyter server (jupyter-server-proxy) with the token, and not
    without it; the page's own links stay under the proxy's path (spark.ui.proxyBase)."""
    k = Kernel(stack)
    try:
        reply, outputs = k.execute("import time\n"
                                   "sc.parallelize(range(4), 4).map(lambda x: (time.sleep(2), x)[1]).count()",
                                   timeout=600)
        assert reply["status"] == "ok", reply
        html = "".join(m["content"]["data"].get("text/html", "") for m in outputs
                       if m["msg_type"] in ("display_data", "update_display_data"))
        links = re.findall(r'href="(/proxy/\d+/jobs/job/\?id=\d+)"', html)
        assert links, "no proxied Spark UI link in the progress display: %s" % html[:2000]
        port = links[-1].split("/")[2]
        req = urllib.request.Request(stack.jupyter + links[-1],
                                     headers={"Authorization": "token " + stack.token})
        with urllib.request.urlopen(req, timeout=30) as r:
            page = r.read().decode("utf-8", "replace")
            assert r.status == 200 and "Details for Job" in page, page[:500]
        assert 'href="/proxy/%s/jobs/' % port in page, "the job page links outside the proxy"
        try:
            with urllib.request.urlopen(stack.jupyter + links[-1], timeout=30) as r:
                assert "Details for Job" not in r.read().decode("utf-8", "replace"), \
                    "the Spark UI is reachable through Jupyter without its token"
        except urllib.error.HTTPError as e:
            assert e.code in (401, 403), e
        _, outputs = k.execute("%spark ui")
        shown = "".join(m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "display_data")
        assert "Spark UI: /proxy/%s " % port in shown, shown
    finally:
        k.shutdown()


def test_spark_ui_link_opens_in_chromium(stack):
    """Issue 18 item 4 in a real browser: Debian's headless Chromium (tests/lab/spark_ui_e2e.mjs,
    playwright-core) opens JupyterLab through the edgenode's published port with the token,
    makes a notebook on the kernel from the launcher, runs a Spark job of a few seconds in a
    cell and clicks the "Spark UI" link of its progress display: the tab shows the job's page
    ("Details for Job"), served under /proxy/<port>/ of JupyterLab's origin, with every link
    and everything it loads there, and its Stages tab stays there; a browser without the
    token's cookie (and one with a wrong token) gets Jupyter's login page instead. The
    notebook and its kernel are removed afterwards."""
    missing = [what for what, ok in (
        ("node (apt-get install nodejs npm)", shutil.which("node")),
        ("%s (apt-get install chromium)" % CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        ("tests/lab/node_modules/playwright-core (npm ci --prefix tests/lab)",
         os.path.isdir(os.path.join(LAB_DIR, "node_modules", "playwright-core")))) if not ok]
    assert not missing, "the browser test needs " + ", ".join(missing) + " (make deps installs them)"
    assert get_json(stack.published + "/api", timeout=30)["version"], "JupyterLab not reachable at " + stack.published

    sessions = {x["id"] for x in get_json(stack.jupyter + "/api/sessions", stack.token)}
    files = {c["path"] for c in get_json(stack.jupyter + "/api/contents/", stack.token)["content"]}
    env = dict(os.environ, LAB_URL=stack.published + "/", LAB_TOKEN=stack.token, CHROMIUM=CHROMIUM,
               LAB_SCREENSHOT=os.path.join(LOGS, "spark-ui-job.png"))
    try:
        run = subprocess.run(["node", os.path.join(LAB_DIR, "spark_ui_e2e.mjs")], cwd=LAB_DIR, env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        print(run.stdout, end="")
        print(run.stderr, end="")
        if run.returncode != 0:
            edge_log = container_log(RUN + "-edgenode", 40)
            raise AssertionError("spark_ui_e2e.mjs failed (%d):\n%s\n--- edgenode log\n%s"
                                 % (run.returncode, run.stderr[-3000:], edge_log))
        result = json.loads(run.stdout.strip().splitlines()[-1].split(" ", 1)[1])
        assert result["ok"] and result["href"].startswith("/proxy/%d/jobs/job/" % result["port"]), result
    finally:
        # What the browser made: its notebook's session (and kernel, and Spark application),
        # and the notebook on the shared volume.
        for x in get_json(stack.jupyter + "/api/sessions", stack.token):
            if x["id"] not in sessions:
                req = urllib.request.Request(stack.jupyter + "/api/sessions/" + x["id"], method="DELETE",
                                             headers={"Authorization": "token " + stack.token})
                urllib.request.urlopen(req, timeout=60).close()
        for c in get_json(stack.jupyter + "/api/contents/", stack.token)["content"]:
            if c["path"] not in files:
                req = urllib.request.Request(stack.jupyter + "/api/contents/" + urllib.parse.quote(c["path"]),
                                             method="DELETE", headers={"Authorization": "token " + stack.token})
                urllib.request.urlopen(req, timeout=60).close()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_example_notebook_runs_through_jupyter(stack, notebook):
    nb = get_json(stack.jupyter + "/api/contents/" + notebook, stack.token)["content"]
    assert nb["metadata"]["kernelspec"]["name"] == "sparkernel"
    k = Kernel(stack)
    try:
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            reply, outputs = k.execute(cell["source"], timeout=600)
            errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
            assert reply["status"] == "ok" and not errors, "%s cell %d failed: %s %s\n%s" % (
                notebook, i, reply.get("ename"), reply.get("evalue"), "\n".join(reply.get("traceback", []))[-3000:])
    finally:
        k.shutdown()


def test_job_survives_a_worker_killed_mid_job(stack):
    k = Kernel(stack)
    try:
        k.value("spark.range(10).count()", timeout=600)
        # Start a job of slow tasks in the background, kill a worker once both run tasks,
        # and the job must still finish (its lost tasks rerun on the other worker).
        k.value("import threading, time, socket\n"
                "_done = {}\n"
                "def _job():\n"
                "    _done['r'] = sc.parallelize(range(24), 24).map(lambda x: (time.sleep(3), x)[1]).sum()\n"
                "_t = threading.Thread(target=_job); _t.start(); 'started'")
        victim = stack.workers[1]

        def busy():
            w = get_json(stack.master_ui + "/json/")["workers"]
            return all(x["coresused"] > 0 for x in w if x["state"] == "ALIVE") and len(w) == 2
        wait_until("executors running on both workers", busy, 180)
        podman("kill", victim)
        assert k.value("_t.join(600); _done.get('r')", timeout=660) == str(sum(range(24)))
    finally:
        k.shutdown()
