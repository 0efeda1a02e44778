"""End-to-end cases of the Spark driver against real local standalone clusters: jobs on the
cluster, the WAITING report, interrupts, dead executors and dead JVMs, every magic, and a
notebook whose cells build their own sessions. No cell may show a log4j line."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
import urllib.request
from queue import Empty

import psutil
import pytest

from cluster import LocalCluster
from kernels import Kernel, outputs_of, spark_time, stdout_text

pytestmark = pytest.mark.timeout(600)

LOG4J = (" WARN ", " INFO ", "log4j", "SLF4J")
LONG_JOB = "spark.range(10**13).selectExpr('max(id)').collect()"


@pytest.fixture(scope="module")
def cluster(healthy_cluster):
    return healthy_cluster


def spark_env(c: LocalCluster, **extra: str) -> dict:
    env = {"SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
           "SPARKERNEL_WARM": "true", "SPARKERNEL_BIND_ADDRESS": "127.0.0.1",
           "SPARKERNEL_EXECUTOR_MEMORY": "512m"}
    # Ports of their own (slots still apply): other kernels on this machine use 7078 & co.
    base = random.randrange(20000, 40000, 2)
    env.update({"SPARKERNEL_DRIVER_PORT": str(base), "SPARKERNEL_BLOCKMANAGER_PORT":
                str(base + 1), "SPARKERNEL_UI_PORT": str(base + 40000 - 20000 + 5000)})
    env.update(extra)
    return env


def http_json(url: str, timeout: float = 5.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def all_text(out: list[dict]) -> str:
    parts = []
    for m in out:
        c = m["content"]
        parts += [c.get("text", ""), json.dumps(c.get("data", {})), c.get("evalue", "")]
    return "\n".join(parts)


def quiet(out: list[dict]) -> None:
    """No log4j line in any stream output of the cell."""
    for m in outputs_of(out, "stream"):
        text = m["content"]["text"]
        assert not any(mark in text for mark in LOG4J), text


def errors(out: list[dict]) -> list[dict]:
    return outputs_of(out, "error")


def run_ok(k: Kernel, code: str, timeout: float = 240) -> list[dict]:
    reply, out = k.execute(code, timeout=timeout)
    quiet(out)
    assert reply["content"]["status"] == "ok", all_text(out)
    assert not errors(out), all_text(out)
    return out


def run_error(k: Kernel, code: str, timeout: float = 120) -> dict:
    """Runs a cell that must fail with exactly one error output; returns that error."""
    reply, out = k.execute(code, timeout=timeout)
    quiet(out)
    assert reply["content"]["status"] == "error", all_text(out)
    errs = errors(out)
    assert len(errs) == 1, all_text(out)
    return errs[0]["content"]


def value(k: Kernel, code: str, timeout: float = 240) -> str:
    out = run_ok(k, code, timeout)
    return outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"]


def wait_for(pred, timeout: float, what: str, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, what
        time.sleep(step)


def app_of(c: LocalCluster, app_id: str) -> dict | None:
    return next((a for a in c.json().get("activeapps", []) if a["id"] == app_id), None)


def running_jobs(ui: str, app_id: str) -> list:
    try:
        return http_json(f"{ui}/api/v1/applications/{app_id}/jobs?status=running", 2)
    except OSError:
        return []


def active_tasks(ui: str, app_id: str) -> int:
    stages = http_json(f"{ui}/api/v1/applications/{app_id}/stages?status=active", 2)
    return sum(s.get("numActiveTasks", 0) for s in stages) + len(stages)


def start_long_job(k: Kernel, ui: str, app_id: str) -> str:
    """Sends a cell with a job that runs for hours; returns its msg_id once the job runs."""
    msg_id = k.kc.execute(LONG_JOB)
    wait_for(lambda: running_jobs(ui, app_id), 120, "the long job never started")
    return msg_id


def iopub_until_idle(k: Kernel, msg_id: str, timeout: float) -> list[dict]:
    """The request's iopub messages up to its idle (its shell reply already taken)."""
    deadline = time.monotonic() + timeout
    out: list[dict] = []
    while True:
        m = k.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return out


def reply_within(k: Kernel, msg_id: str, seconds: float) -> tuple[dict, float]:
    t0 = time.monotonic()
    reply = k.shell_reply(msg_id, timeout=seconds + 60)
    return reply, time.monotonic() - t0


def session_ids(k: Kernel) -> tuple[str, str]:
    app_id = value(k, "sc.applicationId").strip("'")
    ui = value(k, "sc.uiWebUrl").strip("'")
    return app_id, ui


def job_submitted(ui: str, app_id: str) -> float:
    """When the application's first job was submitted (epoch seconds), from its driver's
    REST API."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{ui}/api/v1/applications/{app_id}/jobs", timeout=10) as r:
        jobs = json.load(r)
    assert jobs, "no job submitted"
    return min(spark_time(j["submissionTime"]) for j in jobs)


def executor_pid(k: Kernel) -> int:
    return int(stdout_text(run_ok(k, "import os; print(os.getpid())")).strip())


# ---- 1. a job on the cluster


def test_job_runs_on_the_cluster_with_cores_granted(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        app_id, _ = session_ids(k)
        code = ("import time\n"
                "sc.parallelize(range(24), 4).map(lambda x: (time.sleep(0.5), x)[1]).sum()")
        msg_id = k.kc.execute(code)
        seen = wait_for(lambda: (a := app_of(cluster, app_id)) and a["state"] == "RUNNING"
                        and a["cores"] > 0 and a, 120,
                        "the application never got cores while its job ran")
        assert seen["cores"] > 0
        reply, out = k.collect(msg_id, timeout=240)
        quiet(out)
        assert reply["content"]["status"] == "ok", all_text(out)
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == \
            str(sum(range(24)))
    finally:
        k.shutdown()


# ---- 2. WAITING: another notebook holds the only core


def test_waiting_report_names_the_application_holding_the_core():
    with LocalCluster(workers=1, cores=1, memory="1g") as small:
        holder = Kernel(env=spark_env(small, SPARKERNEL_DYNAMIC_ALLOCATION="false"))
        waiter = None
        try:
            holder_app, _ = session_ids(holder)
            reply, out = holder.execute("spark.range(10).count()", timeout=240)
            assert reply["content"]["status"] == "ok", all_text(out)
            wait_for(lambda: (a := app_of(small, holder_app)) and a["cores"] == 1, 60,
                     "the first notebook never got the core")
            waiter = Kernel(env=spark_env(small))
            waiter_app, waiter_ui = session_ids(waiter)
            msg_id = waiter.kc.execute("spark.range(10).count()")
            t0 = time.monotonic()
            report = None
            while report is None and time.monotonic() - t0 < 60:
                try:
                    m = waiter.kc.get_iopub_msg(timeout=1)
                except Empty:
                    continue
                if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "display_data":
                    text = m["content"]["data"].get("text/plain", "")
                    if "no executors" in text:
                        report = (time.monotonic() - t0, text, time.time())
            assert report is not None, "no WAITING report within 60 s"
            # Within 15 s of the job's submission (the report's threshold is 10 s). From the
            # request on, the cell's first query on a new JVM (planning, code generation)
            # comes first: 10 s of it on a loaded 2-core machine.
            submitted = job_submitted(waiter_ui, waiter_app)
            assert report[2] - submitted <= 15.0, (report[2] - submitted, report)
            assert holder_app in report[1] and "other applications hold" in report[1], report
            waiter.km.interrupt_kernel()
            reply = waiter.shell_reply(msg_id, timeout=30)
            assert reply["content"]["status"] == "error"
            reply, out = waiter.execute("6 * 7")
            assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "42"
        finally:
            if waiter is not None:
                waiter.shutdown()
            holder.shutdown()


def test_own_session_whose_executors_fit_no_worker_is_told_at_once(cluster):
    """A cell builds its own session asking executors bigger than any worker
    (spark.executor.memory=100g on 1 GB workers): as on PySpark its job waits for ever, and
    within seconds, not after the report's 10 s, the report says that no worker can run
    them, what the workers offer and what to set, rather than blaming the network. The cell
    is interrupted; the session built again with a fitting setting runs the job."""
    k = Kernel(env=spark_env(cluster))
    try:
        run_ok(k, "spark.range(3).count()")  # the warm session used: the builder replaces it
        msg_id = k.kc.execute(
            "from pyspark.sql import SparkSession\n"
            "spark.stop()\n"
            f"s = SparkSession.builder.appName('too-big').master({cluster.master_url!r})"
            ".config('spark.executor.memory', '100g').getOrCreate()\n"
            "s.range(10).count()")
        t0 = time.monotonic()
        report = job_seen = None
        while report is None and time.monotonic() - t0 < 60:
            try:
                m = k.kc.get_iopub_msg(timeout=1)
            except Empty:
                continue
            if m["parent_header"].get("msg_id") != msg_id or \
                    m["msg_type"] not in ("display_data", "update_display_data"):
                continue
            text = m["content"]["data"].get("text/plain", "")
            if "[Spark job" in text and job_seen is None:
                job_seen = time.monotonic()
            if "no executors" in text:
                report = (time.monotonic(), text)
        assert report is not None, "no report within 60 s"
        assert job_seen is not None and report[0] - job_seen < 8, (report[0] - job_seen)
        text = report[1]
        assert "No worker can ever run its executors" in text, text
        assert "102400 MB" in text and "spark.executor.memory to at most 1024m" in text, text
        assert "cannot reach this driver" not in text, text
        k.km.interrupt_kernel()
        assert k.shell_reply(msg_id, timeout=60)["content"]["status"] == "error"
        out = run_ok(k, "s.stop()\n"
                        f"s = SparkSession.builder.appName('fits').master({cluster.master_url!r})"
                        ".config('spark.executor.memory', '512m').getOrCreate()\n"
                        "print(s.range(10).count())", timeout=240)
        assert stdout_text(out).strip().splitlines()[-1] == "10", all_text(out)
    finally:
        k.shutdown()


def test_interrupt_long_job_cancels_its_tasks(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        app_id, ui = session_ids(k)
        msg_id = start_long_job(k, ui, app_id)
        k.km.interrupt_kernel()
        reply, took = reply_within(k, msg_id, 10.0)
        assert reply["content"]["status"] == "error"
        # Answered, not hung: 0.1-1 s on a quiet machine (README, the 100-interrupt figures);
        # on a loaded 2-core CI machine the JVM's cancel alone took 4.9 s once. A lost
        # interrupt would wait for the whole job (minutes).
        assert took < 10.0, f"execute_reply {took:.2f} s after the interrupt"
        out = iopub_until_idle(k, msg_id, 30)
        quiet(out)
        assert len(errors(out)) == 1, all_text(out)
        assert errors(out)[0]["content"]["ename"] == "KeyboardInterrupt"
        wait_for(lambda: not running_jobs(ui, app_id) and active_tasks(ui, app_id) == 0, 5,
                 "tasks still running after the interrupt")
        assert value(k, "spark.range(5).count()") == "5"
    finally:
        k.shutdown()


# ---- 4. the executor, then the JVM, killed mid-job


def test_executor_then_jvm_killed_mid_job(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        # the Python executor
        app_id, ui = session_ids(k)
        pid = executor_pid(k)
        msg_id = start_long_job(k, ui, app_id)
        os.kill(pid, signal.SIGKILL)
        reply, out = k.collect(msg_id, timeout=60)
        quiet(out)
        assert reply["content"]["status"] == "error"
        assert [e["content"]["ename"] for e in errors(out)] == ["ExecutorDied"], all_text(out)
        wait_for(lambda: app_of(cluster, app_id) is None, 10,
                 "the dead executor's application is still on the master", 0.5)
        assert value(k, "spark.range(5).count()") == "5"
        app2, ui2 = session_ids(k)
        assert app2 != app_id and executor_pid(k) != pid

        # the JVM of the new session
        pid = executor_pid(k)
        (jvm,) = [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "java"]
        msg_id = start_long_job(k, ui2, app2)
        jvm.kill()
        reply, out = k.collect(msg_id, timeout=60)
        quiet(out)
        assert reply["content"]["status"] == "error"
        assert len(errors(out)) == 1, all_text(out)
        wait_for(lambda: app_of(cluster, app2) is None, 10,
                 "the dead JVM's application is still on the master", 0.5)
        out = run_ok(k, "spark.range(6).count()")
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "6"
        lines = [l for l in stdout_text(out).splitlines() if l.strip()]
        assert len(lines) == 1 and "died" in lines[0] and "new" in lines[0], lines
        app3, _ = session_ids(k)
        assert app3 not in (app_id, app2) and app_of(cluster, app3) is not None
        assert executor_pid(k) == pid  # the same executor: variables kept
    finally:
        k.shutdown()


# ---- 5. magics


def test_sql_and_every_magic(cluster):
    k = Kernel(env=spark_env(cluster))
    try:
        out = run_ok(k, "%%sql\nSELECT 1 AS a, 'x<y' AS b UNION ALL SELECT 2, 'z'")
        # the query's table; a Spark job that ran long enough also has its progress display
        (shown,) = [m for m in outputs_of(out, "display_data")
                    if not m["content"].get("transient", {}).get("display_id", "")
                    .startswith("sparkernel-")]
        html = shown["content"]["data"]["text/html"]
        assert "<table>" in html and "<th>a</th>" in html and "<td>x&lt;y</td>" in html, html
        assert "2 rows" in shown["content"]["data"]["text/plain"]
        app_id = value(k, "sc.applicationId").strip("'")

        out = run_ok(k, "%spark status")
        status = outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"]
        assert "ready" in status and app_id in status

        out = run_ok(k, "%spark config spark.executor.memory=600m")
        assert "restart" in all_text(out)
        out = run_ok(k, "%spark config")
        assert "spark.executor.memory" in all_text(out) and "600m" in all_text(out)

        out = run_ok(k, "%spark ui")
        ui = outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"]
        assert "Spark UI" in ui and app_id in ui and cluster.ui_url in ui

        out = run_ok(k, "%spark restart\nspark.conf.get('spark.executor.memory')")
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "'600m'"
        assert value(k, "sc.applicationId").strip("'") != app_id

        out = run_ok(k, "%spark stop")
        assert "stopped" in stdout_text(out)
        err = run_error(k, "spark.range(3).count()")
        assert "stopped" in err["evalue"] and "%spark restart" in err["evalue"], err
        out = run_ok(k, "%spark ui")
        assert "No Spark UI" in all_text(out)

        err = run_error(k, "%spark frobnicate")
        assert "frobnicate" in err["evalue"] and "status" in err["evalue"]
        err = run_error(k, "%spark config spark.executor.memory=lots")
        assert "size" in err["evalue"]
        err = run_error(k, "%spark config spark.executor.memory")
        assert "=" in err["evalue"], err
        assert value(k, "1 + 1") == "2"
    finally:
        k.shutdown()


# ---- 6. a notebook whose cells build their own sessions




# ---- 6. a notebook whose cells build and stop their own sessions


# make test-all: the corpus of test_wild_notebooks.py runs this pattern (sessions a cell
# builds at the master, at local[*], stopped) with builders as users write them, and
# compares every output with ipykernel + PySpark's.
@pytest.mark.long
def test_notebook_cells_with_their_own_sessions(cluster):
    import nbformat
    from nbclient import NotebookClient

    def cell(master: str, name: str, n: int) -> str:
        return ("from pyspark.sql import SparkSession\n"
                f"s = (SparkSession.builder.master({master!r}).appName({name!r})\n"
                "     .config('spark.driver.host', '127.0.0.1')\n"
                "     .config('spark.driver.bindAddress', '127.0.0.1')\n"
                "     .config('spark.executor.memory', '512m').getOrCreate())\n"
                f"print(s.range({n}).count(), s.sparkContext.master)\n"
                "s.stop()")

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell(cluster.master_url, "cell-one", 100)),
                nbformat.v4.new_code_cell(cell("local[*]", "cell-local", 50)),
                nbformat.v4.new_code_cell(cell(cluster.master_url, "cell-three", 30))]
    NotebookClient(nb, kernel_name="sparkernel", timeout=300).execute()
    outs = [c.outputs for c in nb.cells]
    texts = ["".join(o.get("text", "") for o in out if o.output_type == "stream") for out in outs]
    assert not any(o.output_type == "error" for out in outs for o in out), outs
    # The cell's own line is its last: a JVM the user starts may first print the JDK's own
    # "WARNING: Using incubator modules" (not a log4j line, and not Spark's to silence).
    last = [t.strip().splitlines()[-1].split() for t in texts]
    assert last[0] == ["100", cluster.master_url], texts
    assert last[1] == ["50", "local[*]"], texts
    assert last[2] == ["30", cluster.master_url], texts
    assert not any("[Stage " in t for t in texts), texts
    for t in texts:
        assert not any(marker in t for marker in LOG4J), t
    state = cluster.json()
    done = {a["name"] for a in state.get("completedapps", [])}
    assert {"cell-one", "cell-three"} <= done, done
    assert not [a for a in state.get("activeapps", []) if a["name"].startswith("cell-")]


def test_first_cell_builder_takes_the_starting_jvm(cluster):
    """A notebook run straight after the kernel's start whose first cell builds its own
    session (issue 15): the warm session gives way before its context is built, so no
    `sparkernel` application registers with the master, the cell's session starts in the
    JVM already launching (one line says so), and the kernel follows its application
    (%spark status, live progress of its jobs). A request that names only another runtime
    setting still gets the warm session, ready, as before."""
    before = {a["id"] for key in ("activeapps", "completedapps")
              for a in cluster.json().get(key, [])}
    k = Kernel(env=spark_env(cluster))
    try:
        out = run_ok(k, "from pyspark.sql import SparkSession\n"
                        "s = SparkSession.builder.appName('first-cell-own')"
                        f".master({cluster.master_url!r}).getOrCreate()\n"
                        "print(s.sparkContext.appName, s.range(7).count())")
        text = stdout_text(out)
        assert "first-cell-own 7" in text, text
        assert "starting this cell's own Spark session 'first-cell-own'" in text, text
        apps = [a for key in ("activeapps", "completedapps")
                for a in cluster.json().get(key, []) if a["id"] not in before]
        assert [a["name"] for a in apps] == ["first-cell-own"], apps
        app_id = value(k, "s.sparkContext.applicationId").strip("'")
        status = all_text(run_ok(k, "%spark status"))
        assert app_id in status and "ready" in status, status
        # the kernel's progress follows the cell's application
        out = run_ok(k, "import time\n"
                        "s.sparkContext.parallelize(range(8), 2)"
                        ".map(lambda x: (time.sleep(0.4), x)[1]).sum()")
        shown = [m for m in outputs_of(out, "display_data") if m["content"].get("transient")]
        assert shown, all_text(out)
        final = (outputs_of(out, "update_display_data") or shown)[-1]["content"]["data"]
        assert "SUCCEEDED" in final["text/plain"] and "2/2" in final["text/plain"], final
        run_ok(k, "s.stop()")
    finally:
        k.shutdown()
    k = Kernel(env=spark_env(cluster))
    try:
        out = run_ok(k, "from pyspark.sql import SparkSession\n"
                        "s = SparkSession.builder.config('spark.sql.shuffle.partitions', '3')"
                        ".getOrCreate()\n"
                        "print(s is spark, s.conf.get('spark.sql.shuffle.partitions'))")
        assert "True 3" in stdout_text(out), all_text(out)
    finally:
        k.shutdown()


def test_builder_at_an_unreachable_master_says_what_to_do(cluster):
    """A cell's own builder names a master nothing answers at (a typo in the port):
    Spark's standalone client retries for about a minute, gives up and stops the context,
    and the cell would fail with whichever exception the stopping context raised (on
    ipykernel too, timing-dependent: "Cannot call methods on a stopped SparkContext",
    "Can only call getServletHandlers on a running MetricsSystem", a cancelled job). It
    shows one paragraph instead: which master, what to check, what to do. The next cell's
    builder at the right master gets its session."""
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        nowhere = f"spark://127.0.0.1:{free.getsockname()[1]}"
    k = Kernel(env=spark_env(cluster))
    try:
        reply, out = k.execute("from pyspark.sql import SparkSession\n"
                               "s = SparkSession.builder.appName('nowhere')"
                               f".master({nowhere!r}).getOrCreate()\n"
                               "s.range(3).count()", timeout=300)
        assert reply["content"]["status"] == "error", all_text(out)
        errs = [e["content"] for e in errors(out)]
        assert [e["ename"] for e in errs] == ["SparkMasterUnreachable"], all_text(out)
        said = errs[0]["evalue"]
        for part in (nowhere, "did not answer", "does not answer now either",
                     "the master is running", "run the cell again", "Spark said: "):
            assert part in said, said
        shown = "\n".join(errs[0]["traceback"]) + "\n" + all_text(out)
        assert "\tat " not in shown and "py4j" not in "\n".join(errs[0]["traceback"]), shown
        assert len([line for line in shown.splitlines() if line.strip()]) < 12, shown
        out = run_ok(k, "s = SparkSession.builder.appName('somewhere')"
                        f".master({cluster.master_url!r}).getOrCreate()\n"
                        "print(s.sparkContext.appName, s.range(4).count())", timeout=240)
        assert "somewhere 4" in stdout_text(out), all_text(out)
    finally:
        k.shutdown()


def test_rpc_secret_never_on_a_command_line_nor_in_output():
    """Issue 14, item 8: on a cluster with RPC authentication, the session authenticates
    with the secret the kernel was given, the driver JVM gets it through its environment
    (no process's command line holds it: `ps` shows command lines to every local user),
    and no output shows it, whatever the cell prints."""
    secret = "rpc-" + "%012x" % random.randrange(1 << 48)
    opts = "-Dspark.authenticate=true -Dspark.authenticate.secret=%s" % secret
    with LocalCluster(workers=1, cores=1, memory="1g", master_opts=opts,
                      worker_opts=opts) as c:
        k = Kernel(env=spark_env(c, SPARK_AUTHENTICATE="true",
                                 SPARK_AUTHENTICATE_SECRET=secret))
        try:
            reply, out = k.execute("print(spark.range(1000).count())\n"
                                   "import os\n"
                                   "print(sc.getConf().get('spark.authenticate.secret'))\n"
                                   "print(sc._jvm.System.getenv('_SPARK_AUTH_SECRET'))",
                                   timeout=300)
            assert reply["content"]["status"] == "ok", all_text(out)
            text = stdout_text(out)
            assert "\n1000\n" in "\n" + text, text
            assert secret not in json.dumps([m["content"] for m in out])
            assert "****" in text  # the JVM's copy, printed by the cell, masked
            kernel_proc = psutil.Process(k.km.provisioner.process.pid)
            lines = []
            for p in [kernel_proc] + kernel_proc.children(recursive=True):
                try:
                    lines.append(" ".join(p.cmdline()))
                except psutil.Error:  # a zombie (a helper that has exited) or gone
                    pass
            assert any("java" in line for line in lines), "no driver JVM"
            for line in lines:
                assert secret not in line, line[:200]
        finally:
            k.shutdown()


def test_debugger_stops_in_a_spark_cell(cluster):
    """The JupyterLab debugger in a cell that uses the warm session: stopped after a job,
    the cell's own frame only, its DataFrame and counts read, a Spark job evaluated while
    stopped, then the cell finishes with its progress displays and output."""
    from test_debugger import INITIALIZE, Dap

    k = Kernel(env=spark_env(cluster))
    try:
        reply, _ = k.execute("spark.range(3).count()", timeout=180)
        assert reply["content"]["status"] == "ok"
        dap = Dap(k)
        assert dap.request("initialize", INITIALIZE)["success"]
        assert dap.request("attach", {})["success"]
        code = ("df = spark.range(1000).withColumnRenamed('id', 'n')\n"
                "rows = df.count()\n"
                "half = rows // 2\n"
                # A job that runs long enough to be displayed (PROGRESS_SHOW_AFTER, 0.2 s):
                # on a fast machine the counts above end sooner and show nothing.
                "slow = sc.parallelize(range(2), 2).map(lambda x: __import__('time').sleep(0.8) or x).count()\n"
                "print(half, df.selectExpr('sum(n)').collect()[0][0])\n")
        path = dap.request("dumpCell", {"code": code})["body"]["sourcePath"]
        assert dap.request("setBreakpoints", {"source": {"path": path},
                                              "breakpoints": [{"line": 3}]})["success"]
        assert dap.request("configurationDone")["success"]
        cell = k.kc.execute(code)
        thread = dap.event("stopped", timeout=180)["body"]["threadId"]
        frames = dap.request("stackTrace", {"threadId": thread})["body"]["stackFrames"]
        assert [(f["name"], f["line"], f["source"]["path"]) for f in frames] == \
            [("<module>", 3, path)]
        scopes = dap.request("scopes", {"frameId": frames[0]["id"]})["body"]["scopes"]
        values = {}
        for scope in scopes:
            got = dap.request("variables", {"variablesReference": scope["variablesReference"]})
            values.update({v["name"]: v for v in got["body"]["variables"]})
        assert values["rows"]["value"] == "1000"
        assert values["df"]["type"] == "DataFrame"
        assert "half" not in values  # line 3 has not run yet
        more = dap.request("evaluate", {"expression": "df.filter('n % 2 = 0').count()",
                                        "frameId": frames[0]["id"], "context": "repl"},
                           timeout=120)
        assert more["body"]["result"] == "500", more
        assert dap.request("continue", {"threadId": thread})["success"]
        outputs = dap.idle_of(cell, timeout=180)
        assert stdout_text(outputs) == "500 499500\n"
        assert "Spark job" in all_text(outputs)
        quiet(outputs)
        assert k.shell_reply(cell)["content"]["status"] == "ok"
        assert dap.request("disconnect", {"restart": False})["success"]
    finally:
        k.shutdown()
