"""driver/master.c against a real Spark standalone master, through tests/support/master_probe
(built by `make $(BUILD)/bin/master_probe`): the parsed /json/ equals the master's own, a
request no worker can hold is refused with a verdict naming the numbers, and a running
application is really killed (it leaves activeapps and its executor's cores are freed).

The probe is $SPARKERNEL_MASTER_PROBE, else bin/master_probe of the build that JUPYTER_PATH
points at (build/ or build-asan/), else build/bin/master_probe."""
from __future__ import annotations

import json
import os
import pathlib
import select
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from cluster import LocalCluster, free_port, reap_group  # noqa: E402

# enum master_error, negated, is the probe's exit status.
OK, EUNREACHABLE, ETOOBIG, ENOAPP, EKILLOFF = 0, 1, 6, 7, 8

HOLD_SESSION = r"""
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master(sys.argv[1]).appName(sys.argv[2])
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.executor.memory", "512m")
         .config("spark.ui.enabled", "false")
         .getOrCreate())
print("APP", spark.sparkContext.applicationId, flush=True)
sys.stdin.read()  # hold the session until the test closes stdin
spark.stop()
"""


def probe_path() -> pathlib.Path:
    if os.environ.get("SPARKERNEL_MASTER_PROBE"):
        return pathlib.Path(os.environ["SPARKERNEL_MASTER_PROBE"])
    for base in filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep)):
        p = pathlib.Path(base).resolve().parents[1] / "bin" / "master_probe"
        if p.exists():
            return p
    return ROOT / "build" / "bin" / "master_probe"


@pytest.fixture(scope="module")
def probe():
    path = probe_path()
    if not path.exists():
        pytest.fail("%s is missing: build it with `make build/bin/master_probe`" % path)

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(path)] + list(args), capture_output=True, text=True,
                              timeout=timeout)
    return run


@pytest.fixture(scope="module")
def cluster(healthy_cluster):
    return healthy_cluster


class Session:
    """A PySpark driver in a subprocess holding its SparkSession open until close()."""

    def __init__(self, cluster: LocalCluster, name: str):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_SESSION, cluster.master_url,
                                      name], env=cluster.driver_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.app_id = self._read_app_id(timeout=120)

    def _read_app_id(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("APP "):
                    return line.split()[1]
                if line == "":
                    break
        self.close()
        raise AssertionError("the driver did not report its application id:\n"
                             + self.proc.stderr.read()[-3000:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        reap_group(self.proc.pid)  # the driver's JVM too


def wait_for(what: str, fn, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.25)


def active(cluster: LocalCluster) -> dict:
    return {a["id"]: a for a in cluster.json()["activeapps"]}


@pytest.mark.timeout(120)
def test_fetch_equals_the_masters_own_json(cluster, probe):
    r = probe("fetch", cluster.ui_url)
    assert r.returncode == OK, r.stderr
    ours = json.loads(r.stdout)
    theirs = cluster.json()
    for key in ("url", "status", "cores", "coresused", "memory", "memoryused", "aliveworkers"):
        assert ours[key] == theirs[key], key
    assert len(ours["workers"]) == len(theirs["workers"]) == 1
    for mine, real in zip(ours["workers"], theirs["workers"]):
        for key in ("id", "host", "port", "webuiaddress", "state", "cores", "coresused",
                    "coresfree", "memory", "memoryused", "memoryfree"):
            assert mine[key] == real[key], key
    assert [a["id"] for a in ours["activeapps"]] == [a["id"] for a in theirs["activeapps"]]


@pytest.mark.timeout(120)
def test_a_request_that_fits_is_granted(cluster, probe):
    r = probe("check", cluster.ui_url, "2", "1024")
    assert r.returncode == OK, r.stdout + r.stderr
    assert "2 core(s) and 1024 MB each fit on 1 of the 1 alive worker(s)" in r.stdout
    assert cluster.master_url in r.stdout


@pytest.mark.timeout(120)
def test_a_request_too_big_is_refused_naming_the_numbers(cluster, probe):
    r = probe("check", cluster.ui_url, "4", "4096")
    assert r.returncode == ETOOBIG, r.stdout + r.stderr
    assert "MASTER_ETOOBIG" in r.stderr
    verdict = r.stdout
    assert "4 core(s) and 4096 MB each were requested" in verdict
    assert "offers 2 core(s) and 1024 MB" in verdict
    assert "spark.executor.cores to at most 2" in verdict
    assert "spark.executor.memory to at most 1024m" in verdict
    r = probe("check", cluster.ui_url, "1", "2048")
    assert r.returncode == ETOOBIG
    assert "spark.executor.memory to at most 1024m" in r.stdout
    assert "workers.memory in the chart" in r.stdout


@pytest.mark.timeout(120)
def test_worker_table(cluster, probe):
    r = probe("workers", cluster.ui_url)
    assert r.returncode == OK, r.stderr
    header, row = r.stdout.splitlines()
    w = cluster.json()["workers"][0]
    assert header.startswith("address")
    assert row.startswith("%s:%d" % (w["host"], w["port"]))
    assert "ALIVE" in row and "/2 " in row and row.endswith("/1024")


@pytest.mark.timeout(60)
def test_an_unreachable_master_is_reported_within_the_timeout(probe):
    t0 = time.monotonic()
    r = probe("-t", "500", "fetch", "http://127.0.0.1:%d" % free_port())
    assert r.returncode == EUNREACHABLE
    assert "cannot be reached" in r.stderr
    assert time.monotonic() - t0 < 5


@pytest.mark.timeout(300)
def test_kill_a_running_application(cluster, probe):
    s = Session(cluster, "sparkernel-test-hold")
    try:
        app = wait_for("the app to run", lambda: active(cluster).get(s.app_id))
        assert app["state"] in ("RUNNING", "WAITING")
        # Its executor takes the worker's cores (no spark.cores.max: all of them).
        wait_for("an executor", lambda: cluster.json()["workers"][0]["coresused"] == 2)
        r = probe("fetch", cluster.ui_url)
        assert s.app_id in [a["id"] for a in json.loads(r.stdout)["activeapps"]]

        r = probe("kill", cluster.ui_url, s.app_id)
        assert r.returncode == OK, r.stdout + r.stderr
        state = cluster.json()
        assert s.app_id not in [a["id"] for a in state["activeapps"]]
        done = {a["id"]: a for a in state["completedapps"]}
        assert done[s.app_id]["state"] == "KILLED"
        wait_for("the executor's cores to be freed",
                 lambda: cluster.json()["workers"][0]["coresused"] == 0, timeout=30)

        # A second kill finds nothing to kill.
        r = probe("kill", cluster.ui_url, s.app_id)
        assert r.returncode == ENOAPP, r.stdout + r.stderr
    finally:
        s.close()


@pytest.mark.timeout(60)
def test_kill_of_an_unknown_app(cluster, probe):
    r = probe("kill", cluster.ui_url, "app-19700101000000-9999")
    assert r.returncode == ENOAPP
    assert "not active" in r.stderr


@pytest.mark.timeout(300)
def test_kill_refused_when_the_master_disables_kills(probe):
    # No worker needed: an application registers (and WAITs) on a master without workers.
    with LocalCluster(workers=0, master_opts="-Dspark.ui.killEnabled=false") as c:
        s = Session(c, "sparkernel-test-nokill")
        try:
            wait_for("the app to register", lambda: active(c).get(s.app_id))
            r = probe("check", c.ui_url, "1", "512")
            assert r.returncode == 5 and "no alive worker" in r.stdout  # MASTER_ENOWORKER
            r = probe("kill", c.ui_url, s.app_id)
            assert r.returncode == EKILLOFF, r.stdout + r.stderr
            assert "spark.ui.killEnabled" in r.stderr
            assert active(c)[s.app_id]["state"] == "WAITING"
        finally:
            s.close()
