"""JupyterLab end to end: a real local Spark standalone cluster, JupyterLab on loopback with a
token, and Debian's headless Chromium driven by playwright-core (tests/lab/lab_e2e.mjs) that
opens notebooks/spark-example.ipynb with the sparkernel kernel, runs all cells and checks the
live progress display, the %%sql table and that no cell failed. The screenshot is kept as
out/lab/spark-example.png.

Needs /usr/bin/chromium (apt-get install chromium) and `npm ci --prefix tests/lab`; .ci/run
does both. JupyterLab works on a temporary copy of notebooks/, so saving never touches the
repository. SPARKERNEL_LAB_NOTEBOOKS=DIR runs another directory holding a
spark-example.ipynb instead of notebooks/.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from cluster import LocalCluster, free_port
from kernels import ROOT, SANITIZER, build_spec_dir

pytestmark = pytest.mark.timeout(900)

LAB_DIR = ROOT / "tests" / "lab"
SCRIPT = LAB_DIR / "lab_e2e.mjs"
NOTEBOOK = "spark-example.ipynb"
ARTIFACT = ROOT / "out" / "lab" / "spark-example.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# User settings of the test's own JUPYTER_CONFIG_DIR: no news or update pop-ups, and every
# cell kept in the DOM (the default windowing detaches cells scrolled out of view).
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def prerequisites() -> None:
    missing = []
    if shutil.which("node") is None:
        missing.append("node (apt-get install nodejs npm)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not (LAB_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/lab/node_modules/playwright-core (npm ci --prefix tests/lab)")
    if missing:
        pytest.fail("the JupyterLab test needs " + ", ".join(missing) + "; .ci/run installs them")


def http(url: str, token: str, method: str = "GET", timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": f"token {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as r:
        return r.status


class Lab:
    """`jupyter lab` on 127.0.0.1 with a free port and a random token, in its own session."""

    def __init__(self, root: pathlib.Path, env: dict, log: pathlib.Path) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {self.proc.returncode}:\n"
                                     + self.tail())
            try:
                if http(self.url + "api/status", self.token) == 200:
                    return
            except (OSError, urllib.error.HTTPError):
                pass
            assert time.monotonic() < deadline, "jupyter lab did not answer:\n" + self.tail()
            time.sleep(0.5)

    def remember_children(self) -> None:
        """The kernels and what they started (executor, JVM), for stop() to reap."""
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen[p.pid] = p
        except psutil.Error:
            pass

    def stop(self) -> None:
        """POST /api/shutdown (the server shuts its kernels down), then signals; then every
        process the server had started is waited for, and killed if it lingers."""
        self.remember_children()
        if self.proc.poll() is None:
            try:
                http(self.url + "api/shutdown", self.token, method="POST")
            except (OSError, urllib.error.HTTPError):
                pass
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    self.proc.wait(timeout=60)
                    break
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        pass
            self.proc.wait(timeout=30)
        self._log.close()
        gone, alive = psutil.wait_procs(list(self.seen.values()), timeout=30)
        # The class-data archive's trainer, which a first session leaves running on purpose
        # at the lowest priority until its JVM has written the archive (README, "Fast
        # session start"): on a slow machine that outlasts the wait above. Its JVM, the
        # only one here that dumps an archive, may outlive the trainer's Python.
        trainers: set[int] = set()
        for p in alive:
            try:
                line = " ".join(p.cmdline())
                if "cds-trainer" in line or "-XX:ArchiveClassesAtExit=" in line:
                    trainers |= {p.pid} | {c.pid for c in p.children(recursive=True)}
            except psutil.Error:
                pass
        alive = [p for p in alive if p.pid not in trainers]
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.lingered = [p.pid for p in alive]

    def tail(self, n: int = 4000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log.read_text(errors="replace")[-n:]


@contextlib.contextmanager
def lab_on_a_cluster(tmp_path: pathlib.Path, root: pathlib.Path):
    """A local cluster and JupyterLab serving root, with the sparkernel kernelspec of this
    build; yields (lab, cluster, t_cluster, t_lab). On leaving: JupyterLab and every process
    it started are gone, its log holds no sanitizer report, and no application is left on
    the master."""
    config = tmp_path / "jupyter-config"
    for name, value in USER_SETTINGS.items():
        f = config / "lab" / "user-settings" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    share = build_spec_dir().parents[1]  # <build>/share/jupyter
    t0 = time.monotonic()
    with LocalCluster(workers=1, cores=2, memory="2g") as c:
        t_cluster = time.monotonic() - t0
        # JupyterLab's environment; kernels inherit it.
        env = c.driver_env()
        env.update({
            "SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
            "SPARKERNEL_WARM": "true", "SPARKERNEL_BIND_ADDRESS": "127.0.0.1",
            "SPARKERNEL_DATA_DIR": str(root / "data"),
            # Free driver ports rather than the fixed defaults, which Spark tests running
            # at the same time on this host may be binding.
            **{var: str(free_port()) for var in ("SPARKERNEL_DRIVER_PORT",
                                                 "SPARKERNEL_BLOCKMANAGER_PORT",
                                                 "SPARKERNEL_UI_PORT")},
            "JUPYTER_PATH": os.pathsep.join(
                [str(share)] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]),
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        })
        lab = Lab(root, env, tmp_path / "jupyterlab.log")
        try:
            lab.wait_ready()
            yield lab, c, t_cluster, time.monotonic() - t0
        finally:
            lab.stop()
        lab_log = lab.log.read_text(errors="replace")
        assert not SANITIZER.search(lab_log), f"sanitizer report in the kernel log:\n{lab_log[-4000:]}"
        assert not lab.lingered, f"processes left after JupyterLab stopped: {lab.lingered}"
        # Shutting the kernel down takes its application off the master.
        deadline = time.monotonic() + 20
        while c.json().get("activeapps"):
            assert time.monotonic() < deadline, \
                f"application still on the master: {c.json().get('activeapps')}"
            time.sleep(0.5)


def run_script(lab: Lab, script: pathlib.Path, **env: str) -> subprocess.CompletedProcess:
    node_env = dict(os.environ, LAB_URL=lab.url, LAB_TOKEN=lab.token, CHROMIUM=CHROMIUM, **env)
    run = subprocess.run(["node", str(script)], cwd=LAB_DIR, env=node_env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=780)
    lab.remember_children()
    print(run.stdout, end="")
    print(run.stderr, end="", file=sys.stderr)
    assert run.returncode == 0, (
        f"{script.name} failed ({run.returncode}):\n{run.stderr[-3000:]}\n"
        f"--- jupyterlab log\n{lab.tail()}")
    return run


# make test-all: the same notebook runs in make test through nbclient (test_notebooks.py),
# and JupyterLab with a Spark session, its live progress displays and widgets in the test
# below; this run of the whole example in the browser costs CI 100 s.
@pytest.mark.long
def test_spark_example_in_jupyterlab(tmp_path):
    src = pathlib.Path(os.environ.get("SPARKERNEL_LAB_NOTEBOOKS", ROOT / "notebooks"))
    if not (src / NOTEBOOK).exists():
        pytest.skip(f"{src / NOTEBOOK} does not exist (yet): nothing to open in JupyterLab")
    prerequisites()

    root = tmp_path / "notebooks"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "data").mkdir(exist_ok=True)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.unlink(missing_ok=True)
    ARTIFACT.with_name(ARTIFACT.stem + "-failed.png").unlink(missing_ok=True)

    t0 = time.monotonic()
    with lab_on_a_cluster(tmp_path, root) as (lab, _, t_cluster, t_lab):
        run = run_script(lab, SCRIPT, LAB_NOTEBOOK=NOTEBOOK, LAB_SCREENSHOT=str(ARTIFACT))

    result = json.loads(run.stdout.rsplit("RESULT ", 1)[1])
    # The notebook JupyterLab saved holds every output it showed.
    saved = json.loads((root / NOTEBOOK).read_text())
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    assert [cell["execution_count"] for cell in code] == result["counts"]
    assert any("Spark job" in "".join(o.get("data", {}).get("text/html", ""))
               for cell in code for o in cell["outputs"]), "no progress display saved"
    print(f"\ncluster {t_cluster:.1f} s, JupyterLab ready {t_lab:.1f} s, "
          f"total {time.monotonic() - t0:.1f} s; browser steps: {result['timings']}")
    print(f"screenshot: {ARTIFACT}")


WIDGET_CELLS = [
    "import ipywidgets as widgets\n"
    "from IPython.display import display\n"
    "slider = widgets.IntSlider(value=3, min=0, max=10, description='n')\n"
    "button = widgets.Button(description='Go')\n"
    "out = widgets.Output()\n"
    "def on_click(_):\n"
    "    with out:\n"
    "        print('clicked', slider.value)\n"
    "button.on_click(on_click)\n"
    "display(slider, button, out)",
    "print('slider is', slider.value)",
    "from tqdm.notebook import tqdm\n"
    "total = 0\n"
    "for i in tqdm(range(3), desc='jobs'):\n"
    "    total += spark.range(3_000_000).selectExpr('sum(id) as s').collect()[0]['s']\n"
    "print('total', total)",
]


def test_widgets_in_jupyterlab(tmp_path):
    """ipywidgets 8 through the comm package, as a user meets them: a slider the browser
    moves and the kernel reads, a button whose on_click prints into an Output widget, and a
    tqdm.notebook bar over Spark jobs beside the kernel's own progress displays."""
    prerequisites()
    root = tmp_path / "notebooks"
    (root / "data").mkdir(parents=True)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                     "metadata": {}, "outputs": [], "source": src}
                    for i, src in enumerate(WIDGET_CELLS)],
          "metadata": {"kernelspec": {"name": "sparkernel", "display_name": "PySpark (sparkernel)",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "widgets.ipynb").write_text(json.dumps(nb))
    shot = ARTIFACT.with_name("widgets.png")
    with lab_on_a_cluster(tmp_path, root) as (lab, _, _, _):
        run = run_script(lab, LAB_DIR / "widgets_e2e.mjs", LAB_NOTEBOOK="widgets.ipynb",
                         LAB_SCREENSHOT=str(shot))
    assert json.loads(run.stdout.rsplit("RESULT ", 1)[1])["ok"]
