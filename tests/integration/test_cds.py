"""The driver JVM's class-data-sharing archive (driver/python/sparkernel_executor/cds.py):
the first session with no archive starts a background trainer that leaves one; the next
session maps it, and a damaged archive costs nothing but the speed."""
from __future__ import annotations

import pathlib
import time

import psutil
import pytest

from cluster import LocalCluster
from kernels import Kernel, outputs_of

# The JVM archive's file dance, minutes on a loaded machine and timed by the JVM's exit:
# make test-all (conftest.py).
pytestmark = [pytest.mark.long, pytest.mark.timeout(600)]

CELL = "spark.range(10**5).count()"


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(workers=1, cores=2, memory="1g") as c:
        yield c


def env_for(c: LocalCluster, cache: pathlib.Path, **extra: str) -> dict:
    # The cluster's driver environment: SPARK_CONF_DIR is a non-empty directory (its
    # log4j2.properties), which the JVM refuses on the class path of an archive; the
    # executor launches with an empty one instead (cds.conf_dir_plan).
    env = c.driver_env()
    env.update({"SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
           "SPARKERNEL_WARM": "true", "SPARKERNEL_BIND_ADDRESS": "127.0.0.1",
           "SPARKERNEL_EXECUTOR_MEMORY": "512m", "SPARKERNEL_CACHE_DIR": str(cache),
           # one executor to look at: the elastic share would add a second one for the
           # cell's backlog on the 2-core worker (this file checks archives, not shares)
           "SPARKERNEL_MAX_EXECUTORS": "1"})
    env.update(extra)
    return env


def driver_jvm_cmdline(k: Kernel) -> str:
    kernel = psutil.Process(k.km.provisioner.pid)
    for p in kernel.children(recursive=True):
        cmd = " ".join(p.cmdline())
        if "java" in p.name() and "SparkSubmit" in cmd:
            return cmd
    raise AssertionError("no driver JVM under the kernel")


def run_cell(k: Kernel) -> str:
    reply, out = k.execute(CELL, timeout=240)
    assert reply["content"]["status"] == "ok", [m["content"] for m in out if m["msg_type"] in ("error", "stream")]
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    assert "cds" not in text.lower() and "sharing" not in text.lower(), text
    return outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"]


def test_archive_is_trained_then_mapped(cluster, tmp_path):
    cache = tmp_path / "cache"
    k = Kernel(env=env_for(cluster, cache))
    try:
        assert run_cell(k) == "100000"
        # The kernel's JVM never dumps (its command line names the executors' option only
        # inside --conf spark.executor.extraJavaOptions=...).
        assert not [a for a in driver_jvm_cmdline(k).split() if a.startswith("-XX:Archive")]
    finally:
        k.shutdown()
    deadline = time.monotonic() + 300
    while not list((cache / "cds").glob("driver-*.jsa")):
        assert time.monotonic() < deadline, (cache / "cds" / "trainer.log").read_text()
        time.sleep(1)
    archive = next((cache / "cds").glob("driver-*.jsa"))
    assert archive.stat().st_size > 10 << 20
    assert not list((cache / "cds").glob("driver-*.tmp*")), "trainer left files behind"

    k = Kernel(env=env_for(cluster, cache))
    try:
        assert run_cell(k) == "100000"
        assert f"-XX:SharedArchiveFile={archive}" in driver_jvm_cmdline(k)
    finally:
        k.shutdown()

    # A damaged archive: the JVM runs without it, silently; no new trainer for that file.
    # Put in place as a new file, as sparkernel itself does: the last kernel's JVM may
    # still be stopping and map the old one (a file truncated under a mapping is SIGBUS).
    damaged = archive.with_suffix(".damaged")
    damaged.write_bytes(b"not an archive" * 1000)
    damaged.replace(archive)
    k = Kernel(env=env_for(cluster, cache))
    try:
        assert run_cell(k) == "100000"
    finally:
        k.shutdown()


def test_off_switch(cluster, tmp_path):
    cache = tmp_path / "cache"
    k = Kernel(env=env_for(cluster, cache, SPARKERNEL_CDS="false",
                           SPARKERNEL_EXECUTOR_CDS="false"))
    try:
        assert run_cell(k) == "100000"
        assert "SharedArchiveFile" not in driver_jvm_cmdline(k)
        argv = executor_jvms()[0].cmdline()  # nor the executors, nor their class path
        assert not any("Archive" in a for a in argv), argv
        assert not argv[argv.index("-cp") + 1].split(":")[0].endswith("/jars/*"), argv
        _, out = k.execute("%spark status")
        text = outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"]
        assert "sparkernel.cds" in text and "sparkernel.executor.cds" in text
    finally:
        k.shutdown()
    time.sleep(2)
    assert not (cache / "cds").exists() or not list((cache / "cds").glob("*.jsa"))


def executor_jvms() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in (p.info["cmdline"] or []):
            out.append(p)
    return out


def maps_of(p: psutil.Process) -> str:
    return pathlib.Path(f"/proc/{p.pid}/maps").read_text()


def test_executor_archive_is_dumped_then_mapped(cluster, tmp_path):
    """The first session's executor dumps an archive when it exits, under a name of its
    own; the next session start moves it into place and its executor maps it."""
    cache = tmp_path / "cache"
    d = cache / "cds"
    k = Kernel(env=env_for(cluster, cache))
    try:
        assert run_cell(k) == "100000"
        jvms = executor_jvms()
        assert len(jvms) == 1, jvms
        argv = jvms[0].cmdline()
        assert argv[argv.index("-cp") + 1].split(":")[0].endswith("/jars/*"), argv
        cmds = [" ".join(argv)]
        # The worker's {{APP_ID}} and {{EXECUTOR_ID}} substituted in the dump's name.
        assert "-XX:ArchiveClassesAtExit=%s/executor-" % d in cmds[0], cmds[0]
        assert "{{" not in cmds[0] and ".jsa.tmp-app-" in cmds[0], cmds[0]
    finally:
        k.shutdown()
    deadline = time.monotonic() + 120
    while not [p for p in d.glob("executor-*.jsa.tmp-app-*")
               if p.read_bytes()[:4] == bytes.fromhex("a8ab0bf0")]:
        assert time.monotonic() < deadline, sorted(p.name for p in d.iterdir())
        time.sleep(0.5)
    assert not list(d.glob("executor-*.jsa"))  # moved into place by the next session

    # The deployment's spark-defaults.conf gives the executors options of its own: the
    # session adds to them rather than replacing them.
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "log4j2.properties").write_text((cluster.conf_dir / "log4j2.properties").read_text())
    (conf / "spark-defaults.conf").write_text(
        "spark.executor.extraJavaOptions  -Dtest.kept.by.deployment=yes\n")
    k = Kernel(env=env_for(cluster, cache, SPARK_CONF_DIR=str(conf)))
    try:
        assert run_cell(k) == "100000"
        archives = list(d.glob("executor-*.jsa"))
        assert len(archives) == 1 and archives[0].stat().st_size > 10 << 20, archives
        assert not list(d.glob("executor-*.tmp-*")), "dump or lock left behind"
        jvms = executor_jvms()
        assert len(jvms) == 1
        assert str(archives[0]) in maps_of(jvms[0]), "the executor does not map the archive"
        assert "-Dtest.kept.by.deployment=yes" in jvms[0].cmdline(), jvms[0].cmdline()
    finally:
        k.shutdown()

