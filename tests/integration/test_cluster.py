"""The local standalone cluster helper (tests/support/cluster.py) against real Spark: a master
and a worker from the pyspark package, a real PySpark job on them, the refusals it gives
before starting anything, and a stop that leaves no process behind."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import psutil
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from cluster import ClusterError, LocalCluster, free_port, reap_group  # noqa: E402

CLI = [sys.executable, str(ROOT / "tests" / "support" / "cluster.py")]

COUNT_JOB = r"""
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master(sys.argv[1]).appName("sparkernel-test-count")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.executor.memory", "512m")
         .config("spark.ui.enabled", "false")
         .getOrCreate())
print("APP", spark.sparkContext.applicationId, flush=True)
print("COUNT", spark.range(1000).count(), flush=True)
spark.stop()
"""


def cluster_processes(state_dir: pathlib.Path) -> list[psutil.Process]:
    """Every live process started for this cluster: daemons run in the state dir, executors
    in the worker's work dir under it; anything else they started is their descendant."""
    found = {}
    for p in psutil.process_iter(["pid", "cwd", "status"]):
        cwd = p.info.get("cwd") or ""
        if p.info.get("status") != psutil.STATUS_ZOMBIE and cwd.startswith(str(state_dir)):
            found[p.pid] = p
            try:
                for c in p.children(recursive=True):
                    found[c.pid] = c
            except psutil.NoSuchProcess:
                pass
    return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(workers=1, cores=2, memory="1g") as c:
        yield c


@pytest.mark.timeout(120)
def test_master_lists_one_alive_worker_with_two_cores(cluster):
    state = cluster.json()
    assert state["status"] == "ALIVE"
    assert state["url"] == cluster.master_url
    workers = state["workers"]
    assert len(workers) == 1
    w = workers[0]
    assert w["state"] == "ALIVE"
    assert w["cores"] == 2
    assert w["memory"] == 1024
    assert w["host"] == "127.0.0.1"
    assert state["aliveworkers"] == 1


@pytest.mark.timeout(120)
def test_daemons_listen_on_loopback_only(cluster):
    daemons = [psutil.Process(pid) for pid in cluster.pids.values()]
    for d in daemons:
        for c in d.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                assert c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1"), (d.pid, c.laddr)


@pytest.mark.timeout(240)
def test_pyspark_job_runs_on_the_cluster(cluster):
    # In its own process group, so that the driver's JVM is waited for too.
    p = subprocess.Popen([sys.executable, "-c", COUNT_JOB, cluster.master_url],
                         env=cluster.driver_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=200)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert reap_group(p.pid), "the driver's JVM outlived the driver by 30 s"
    assert p.returncode == 0, err[-3000:]
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines.get("COUNT") == "1000", out
    app_id = lines["APP"].strip()
    assert app_id.startswith("app-")
    done = {a["id"]: a for a in cluster.json()["completedapps"]}
    assert done[app_id]["state"] == "FINISHED"
    assert done[app_id]["name"] == "sparkernel-test-count"
    # The job's log4j chatter went to the log file, not to the driver's console.
    assert "INFO" not in err
    assert (cluster.log_dir / "spark.log").exists()


@pytest.mark.timeout(60)
def test_taken_port_is_named_before_anything_starts(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        c = LocalCluster(workers=1, master_port=port, state_dir=tmp_path / "api")
        with pytest.raises(ClusterError) as e:
            c.start()
        msg = str(e.value)
        assert "port %d on 127.0.0.1 (the master RPC port) is already in use" % port in msg
        assert "--master-port" in msg and "cluster.py stop" in msg
        assert not list((tmp_path / "api").glob("*.pid"))

        # The CLI says the same for the UI port, with its own option, and exits 2.
        r = subprocess.run(CLI + ["start", "--master-port", str(free_port()), "--ui-port",
                                  str(port), "--dir", str(tmp_path / "cli")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2
        assert "port %d" % port in r.stderr and "web UI port" in r.stderr
        assert "--ui-port" in r.stderr
    assert cluster_processes(tmp_path) == []


@pytest.mark.timeout(60)
def test_missing_java_is_a_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java there
    r = subprocess.run(CLI + ["start", "--dir", str(tmp_path / "c")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "Java is missing" in r.stderr and "JAVA_HOME" in r.stderr


@pytest.mark.timeout(180)
def test_cli_start_status_stop_leaves_nothing_behind(tmp_path):
    state_dir = tmp_path / "cluster"
    master_port, ui_port = free_port(), free_port()
    r = subprocess.run(CLI + ["start", "--workers", "1", "--cores", "1", "--memory", "512m",
                              "--master-port", str(master_port), "--ui-port", str(ui_port),
                              "--dir", str(state_dir)],
                       capture_output=True, text=True, timeout=120)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "spark://127.0.0.1:%d" % master_port in r.stdout
        r = subprocess.run(CLI + ["status", "--dir", str(state_dir)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "http://127.0.0.1:%d" % ui_port in r.stdout
        assert "ALIVE  cores 0/1  memory 0/512 MiB" in r.stdout
        assert (state_dir / "conf" / "log4j2.properties").read_text().count("rootLogger.level")
        # A second start on the same dir refuses instead of stacking daemons.
        r = subprocess.run(CLI + ["start", "--master-port", str(free_port()), "--ui-port",
                                  str(free_port()), "--dir", str(state_dir)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "already running" in r.stderr
        assert len(cluster_processes(state_dir)) >= 2
    finally:
        r = subprocess.run(CLI + ["stop", "--dir", str(state_dir)], capture_output=True,
                           text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert cluster_processes(state_dir) == []
    r = subprocess.run(CLI + ["status", "--dir", str(state_dir)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1


@pytest.mark.timeout(120)
def test_stop_leaves_no_java_behind(cluster):
    procs = cluster_processes(cluster.dir)
    assert any("java" in p.name() for p in procs), procs
    t0 = time.monotonic()
    cluster.stop()
    assert time.monotonic() - t0 < 30
    for p in procs:
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE, p
    assert cluster_processes(cluster.dir) == []
    # Nor a driver JVM of the job above (spark-submit gets --conf spark.master=<url>).
    for p in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["status"] != psutil.STATUS_ZOMBIE and "java" in (p.info["name"] or ""):
            assert cluster.master_url not in cmd and str(cluster.dir) not in cmd, p
