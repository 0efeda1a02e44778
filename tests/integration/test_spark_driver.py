"""The edgenode Spark driver against a real local standalone master and worker: negotiation,
refusals, ports, warm sessions, live progress, magics, and cleanup on the master."""
from __future__ import annotations

import json
import socket
import time

import psutil
import pytest

from cluster import LocalCluster
from kernels import Kernel, outputs_of, stdout_text

pytestmark = pytest.mark.timeout(300)

LOG4J = ("WARN ", "INFO ", " WARN", " INFO", "log4j", "SLF4J")


@pytest.fixture(scope="module")
def cluster(healthy_cluster):
    return healthy_cluster


def spark_env(c: LocalCluster, **extra: str) -> dict:
    env = {"SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
           "SPARKERNEL_WARM": "true", "SPARKERNEL_BIND_ADDRESS": "127.0.0.1",
           "SPARKERNEL_EXECUTOR_MEMORY": "512m"}
    env.update(extra)
    return env


def active_apps(c: LocalCluster) -> list[dict]:
    return c.json().get("activeapps", [])


def errors(out: list[dict]) -> list[dict]:
    return outputs_of(out, "error")


def all_text(out: list[dict]) -> str:
    parts = []
    for m in out:
        c = m["content"]
        parts.append(c.get("text", ""))
        parts.append(json.dumps(c.get("data", {})))
        parts.append(c.get("evalue", ""))
    return "\n".join(parts)


def test_session_runs_on_the_cluster_and_leaves_on_shutdown(cluster):
    """... and leaves cleanly: the kernel exits at once and its executor, left to stop the
    session on its own, ends the application as FINISHED (a clean SparkContext.stop), not
    KILLED by the master's kill endpoint, then exits with its JVM."""
    k = Kernel(env=spark_env(cluster))
    left = []
    try:
        reply, out = k.execute("spark.range(1000).count()", timeout=180)
        assert reply["content"]["status"] == "ok", all_text(out)
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "1000"
        text = all_text(out)
        assert not any(marker in text for marker in LOG4J), text
        _, out = k.execute("sc.applicationId")
        app_id = outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"].strip("'")
        assert app_id in [a["id"] for a in active_apps(cluster)]
        reply, out = k.execute("%spark status")
        status = outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"]
        assert "ready" in status and app_id in status and "this notebook" in status
        assert "spark.executor.memory" in status and "environment" in status
        left = psutil.Process(k.km.provisioner.pid).children(recursive=True)
        assert any(p.name() == "java" for p in left), left
    finally:
        k.shutdown()
    deadline = time.monotonic() + 15
    while app_id in [a["id"] for a in active_apps(cluster)]:
        assert time.monotonic() < deadline, "application still on the master after shutdown"
        time.sleep(0.5)
    done = [a for a in cluster.json().get("completedapps", []) if a["id"] == app_id]
    assert done and done[0]["state"] == "FINISHED", done
    _, alive = psutil.wait_procs(left, timeout=25)
    assert not alive, alive


def test_impossible_request_refused_fast_with_a_table(cluster):
    k = Kernel(env=spark_env(cluster, SPARKERNEL_EXECUTOR_MEMORY="64g"))
    try:
        t0 = time.monotonic()
        reply, out = k.execute("spark.range(10).count()", timeout=60)
        assert time.monotonic() - t0 < 5.0
        assert reply["content"]["status"] == "error"
        errs = errors(out)
        assert len(errs) == 1
        text = errs[0]["content"]["evalue"]
        assert "65536" in text or "64g" in text or "64 GB" in text or "64.0 GB" in text, text
        assert "127.0.0.1" in text  # the worker table
        # a cell that does not use Spark still runs
        reply, out = k.execute("21 * 2")
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        k.shutdown()


def test_unreachable_master_refused_within_5_seconds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"SPARK_MASTER_URL": f"spark://127.0.0.1:{port}",
           "SPARKERNEL_MASTER_UI_URL": f"http://127.0.0.1:{port}",
           "SPARKERNEL_WARM": "true"}
    k = Kernel(env=env)
    try:
        t0 = time.monotonic()
        reply, out = k.execute("df = spark.range(3)", timeout=60)
        assert time.monotonic() - t0 < 5.0
        assert reply["content"]["status"] == "error"
        assert len(errors(out)) == 1
        assert "did not answer" in errors(out)[0]["content"]["evalue"]
    finally:
        k.shutdown()


def test_live_progress_one_display_per_job_final_state_kept_none_under_capture(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        k.execute("spark.range(10).count()", timeout=180)  # session warm
        code = ("import time\n"
                "spark.sparkContext.parallelize(range(40), 8)"
                ".map(lambda x: (time.sleep(0.1), x)[1]).sum()")
        reply, out = k.execute(code, timeout=120)
        assert reply["content"]["status"] == "ok"
        # Progress displays carry a display id (a WAITING report on a loaded machine has none).
        shown = [m for m in outputs_of(out, "display_data") if m["content"].get("transient")]
        updates = outputs_of(out, "update_display_data")
        ids = {m["content"]["transient"]["display_id"] for m in shown}
        assert len(ids) == 1, ids
        assert updates, "no live update"
        final = updates[-1]["content"]["data"]
        assert "SUCCEEDED" in final["text/plain"] and "8/8" in final["text/plain"], final
        assert "<" in final["text/html"]
        # The 200 ms rule itself is unit-tested on recorded answers (tests/unit/
        # test_progress.c). Here: whatever a short job shows ends in its final state, one
        # display per job. (The driver's REST API can report a job as RUNNING a little
        # after it ended when its listener bus lags, so a 100 ms job may be shown.)
        reply, out = k.execute("spark.range(5).count()")
        shown = [m for m in outputs_of(out, "display_data") if m["content"].get("transient")]
        assert len({m["content"]["transient"]["display_id"] for m in shown}) == len(shown)
        for m in shown:
            did = m["content"]["transient"]["display_id"]
            last = [u for u in outputs_of(out, "update_display_data")
                    if u["content"]["transient"]["display_id"] == did]
            final = (last[-1] if last else m)["content"]["data"]["text/plain"]
            assert "SUCCEEDED" in final, final
        # Output captured (%%capture, capture_output): its jobs show no progress either, as
        # plain PySpark's cell shows nothing; a job after the capture in the same cell
        # does; the kernel's tags stay out of the notebook's sight.
        slow = ("spark.sparkContext.parallelize(range(40), 8)"
                ".map(lambda x: (time.sleep(0.1), x)[1]).sum()")
        reply, out = k.execute(f"%%capture cap\nimport time\n{slow}\n"
                               "print(spark.sparkContext.getJobTags())")
        assert reply["content"]["status"] == "ok", reply["content"]
        assert not outputs_of(out, "display_data") + outputs_of(out, "update_display_data")
        reply, out = k.execute("cap.stdout")
        assert "set()" in all_text(out), all_text(out)
        reply, out = k.execute("from IPython.utils.capture import capture_output\n"
                               f"with capture_output():\n    {slow}\n{slow}")
        shown = [m for m in outputs_of(out, "display_data") if m["content"].get("transient")]
        assert len(shown) == 1, shown
    finally:
        k.shutdown()


def test_fixed_port_taken_is_refused_not_drifted(cluster):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        k = Kernel(env=spark_env(cluster, SPARKERNEL_WARM="false"))
        try:
            reply, out = k.execute(f"%spark config spark.driver.port={taken}\n%spark restart")
            assert reply["content"]["status"] == "ok"
            reply, out = k.execute("spark.range(3).count()", timeout=60)
            assert reply["content"]["status"] == "error"
            assert f"driver {taken}" in errors(out)[0]["content"]["evalue"]
        finally:
            k.shutdown()


def test_config_restart_and_bad_magic(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        k.execute("spark.range(1).count()", timeout=180)
        _, out = k.execute("first = sc.applicationId")
        reply, out = k.execute("%spark config spark.executor.memory=600m\n%spark restart\n"
                               "spark.conf.get('spark.executor.memory')", timeout=180)
        assert reply["content"]["status"] == "ok", all_text(out)
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "'600m'"
        _, out = k.execute("sc.applicationId != first")
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "True"
        reply, out = k.execute("%spark config spark.executor.memory=lots")
        assert reply["content"]["status"] == "error" and len(errors(out)) == 1
        assert "size" in errors(out)[0]["content"]["evalue"]
        reply, out = k.execute("%spark frobnicate")
        assert reply["content"]["status"] == "error"
        assert "status" in errors(out)[0]["content"]["evalue"]
        reply, out = k.execute("%spark ui")
        assert "Spark UI" in outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"]
    finally:
        k.shutdown()


def test_local_mode_without_a_master():
    k = Kernel(env={"SPARKERNEL_WARM": "true", "SPARK_MASTER_URL": ""})
    try:
        reply, out = k.execute("spark.sparkContext.master, spark.range(7).count()", timeout=180)
        assert reply["content"]["status"] == "ok", all_text(out)
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == \
            "('local[*]', 7)"
        assert "No Spark master is configured" in stdout_text(out)
    finally:
        k.shutdown()
