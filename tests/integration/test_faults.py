"""Faults (issue 7, item 4): what the kernel survives, each fault with a test and a figure.

Every test prints its figure on a line starting with `FIGURE:` and writes its row of the
table in tests/soak/faults.md (fault, what was thrown, what survived, what was lost, time
to recover); rows of faults not run keep their last values.

1. the Python executor SIGKILLed 20 times in a row (no Spark);
2. the driver JVM SIGKILLed mid-job (the assertions are test_spark_cases.
   test_executor_then_jvm_killed_mid_job's; here only its figure);
3. a worker SIGKILLed mid-job (two workers of one core);
4. the master restarted between cells, and gone at a cell then back;
5. 100 interrupts in a row on running Spark jobs;
6. the disk under spark.local.dir full (a 2 MB tmpfs; needs root)."""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import psutil
import pytest

from cluster import LocalCluster, alive_workers
from kernels import Kernel, outputs_of, stdout_text
from test_spark_cases import (active_tasks, all_text, app_of, errors, http_json,
                              iopub_until_idle, quiet, run_ok, running_jobs, session_ids,
                              spark_env, start_long_job, value, wait_for)

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = ROOT / "tests" / "soak" / "faults.md"
FAULTS = ("executor", "jvm", "worker", "master", "interrupts", "disk")
SLEEPY_JOB = "sc.parallelize(range(2), 2).foreach(lambda _: __import__('time').sleep(600))"

pytestmark = pytest.mark.timeout(600)


# ---- the figures


def figure(fault: str, thrown: str, survived: str, lost: str, recover: str) -> None:
    """Prints the figure and puts its row into tests/soak/faults.md."""
    assert fault in FAULTS
    print(f"\nFIGURE: {fault}: thrown: {thrown} | survived: {survived} | lost: {lost} | "
          f"time to recover: {recover}", flush=True)
    rows: dict[str, list[str]] = {}
    if TABLE.exists():
        for line in TABLE.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 6 and cells[0] in FAULTS:
                rows[cells[0]] = cells
    rows[fault] = [fault, thrown, survived, lost, recover, time.strftime("%Y-%m-%d")]
    lines = [
        "# Faults: what was thrown at the kernel, what survived, what was lost",
        "",
        "Written by `tests/integration/test_faults.py`, one row per test from its last run:",
        "`JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python -m pytest -s "
        "tests/integration/test_faults.py`.",
        "Times are on the test machine (2 shared cores) with a real standalone cluster from",
        "`tests/support/cluster.py`.",
        "",
        "| fault | what was thrown | what survived | what was lost | time to recover | run |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in rows[f]) + " |"
              for f in FAULTS if f in rows]
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text("\n".join(lines) + "\n")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


# ---- helpers


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(workers=1, cores=2, memory="1g") as c:
        yield c


class _NoCluster:
    """For spark_env() in local mode: its own ports, no master."""

    master_url = ""
    ui_url = ""


def executors_of(k: Kernel) -> list[psutil.Process]:
    """The kernel's Python executor processes (its children running sparkernel_executor)."""
    found = []
    for p in psutil.Process(k.km.provisioner.pid).children():
        try:
            if "sparkernel_executor" in " ".join(p.cmdline()) and \
                    p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_printed(k: Kernel, msg_id: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        m = k.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream" \
                and text in m["content"]["text"]:
            return


def result(out: list[dict]) -> str:
    return outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"]


# ---- 1. the Python executor killed 20 times in a row


@pytest.mark.long
def test_executor_killed_20_times_each_next_cell_recovers():
    """Even kills hit a running cell (it must end in ExecutorDied), odd ones an idle
    executor; either way the next cell runs on a fresh executor, and the kernel process,
    its execution counter and its history stay."""
    k = Kernel(env={"SPARKERNEL_WARM": "false"})
    kernel = psutil.Process(k.km.provisioner.pid)
    took: list[float] = []
    try:
        out = run_ok(k, "import os; print(os.getpid())", 60)
        pid = int(stdout_text(out))
        for i in range(20):
            (ex,) = executors_of(k)
            assert ex.pid == pid
            if i % 2 == 0:
                msg_id = k.kc.execute("import time\nprint('running', flush=True)\n"
                                      "time.sleep(120)")
                wait_printed(k, msg_id, "running")
                t0 = time.monotonic()
                ex.kill()
                reply, out = k.collect(msg_id, timeout=60)
                assert reply["content"]["status"] == "error"
                assert [e["content"]["ename"] for e in errors(out)] == ["ExecutorDied"], \
                    all_text(out)
            else:
                t0 = time.monotonic()
                ex.kill()
                ex.wait(10)
            reply, out = k.execute("import os; print(os.getpid()); 'x' in dir()", timeout=60)
            assert reply["content"]["status"] == "ok", (i, all_text(out))
            took.append(time.monotonic() - t0)
            new = int(stdout_text(out).split()[0])
            assert new != pid and result(out) == "False"
            pid = new
            k.execute("x = 1")
        assert kernel.is_running() and kernel.status() != psutil.STATUS_ZOMBIE
        assert len(executors_of(k)) == 1
        k.kc.kernel_info()
        assert k.kc.get_shell_msg(timeout=10)["msg_type"] == "kernel_info_reply"
        k.kc.history(hist_access_type="tail", n=100)
        hist = k.kc.get_shell_msg(timeout=10)["content"]["history"]
        assert len(hist) >= 40, len(hist)
    finally:
        k.shutdown()
    figure("executor",
           "SIGKILL of the Python executor 20 times in a row (10 mid-cell, 10 idle)",
           "kernel process, connections, execution counter, history; every cell answered "
           "(mid-cell kills: one ExecutorDied error each)",
           "the dead executor's variables and imports (by design: the error says so)",
           "kill to next cell done: median %.2f s, max %.2f s (n=20)"
           % (statistics.median(took), max(took)))


# An executor killed while it starts is not a failed start: another one starts.
def test_executor_killed_while_starting_next_cell_recovers():
    k = Kernel(env={"SPARKERNEL_WARM": "false"})
    try:
        (ex,) = wait_for(lambda: executors_of(k), 30, "no executor")
        ex.kill()
        ex.wait(10)
        reply, out = k.execute("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok", all_text(out)
    finally:
        k.shutdown()


# ---- 2. the driver JVM killed mid-job


def test_jvm_killed_mid_job_figure(cluster):
    """The behaviour is asserted by test_spark_cases.test_executor_then_jvm_killed_mid_job;
    this measures it: kill to the cell's error, to the application leaving the master, to
    the next cell done on a new session (variables kept)."""
    k = Kernel(env=spark_env(cluster))
    try:
        app_id, ui = session_ids(k)
        run_ok(k, "kept = 42")
        (jvm,) = [p for p in executors_of(k)[0].children(recursive=True) if p.name() == "java"]
        msg_id = start_long_job(k, ui, app_id)
        t0 = time.monotonic()
        jvm.kill()
        reply, out = k.collect(msg_id, timeout=60)
        to_error = time.monotonic() - t0
        assert reply["content"]["status"] == "error" and len(errors(out)) == 1, all_text(out)
        wait_for(lambda: app_of(cluster, app_id) is None, 30,
                 "the dead JVM's application is still on the master", 0.2)
        to_gone = time.monotonic() - t0
        out = run_ok(k, "spark.range(6).count(), kept")
        to_cell = time.monotonic() - t0
        assert result(out) == "(6, 42)"
        assert "died" in stdout_text(out)
        app2, _ = session_ids(k)
        assert app2 != app_id and app_of(cluster, app2) is not None
    finally:
        k.shutdown()
    figure("jvm", "SIGKILL of the driver JVM while a job runs",
           "kernel, Python executor and its variables; the master dropped the dead "
           "application (%.1f s); the next cell got a new session (one line says so)"
           % to_gone,
           "the running job (its cell: one error, %.1f s after the kill) and the session's "
           "cached data" % to_error,
           "kill to next cell done on a new session: %.1f s" % to_cell)


# ---- 3. a worker killed mid-job


def test_worker_killed_mid_job_job_completes_on_the_other():
    with LocalCluster(workers=2, cores=1, memory="1g") as two:
        k = Kernel(env=spark_env(two, SPARKERNEL_DYNAMIC_ALLOCATION="false"))
        try:
            app_id, ui = session_ids(k)
            wait_for(lambda: (a := app_of(two, app_id)) and a["cores"] == 2, 120,
                     "the application never got both workers' cores")
            code = ("import time\n"
                    "sc.parallelize(range(24), 8).map(lambda x: (time.sleep(1), x)[1]).sum()")
            msg_id = k.kc.execute(code)
            api = f"{ui}/api/v1/applications/{app_id}/executors"
            def busy() -> list[dict]:
                try:
                    return [e for e in http_json(api, 2) if e["id"] != "driver"
                            and e.get("activeTasks", 0) > 0]
                except OSError:
                    return []

            wait_for(lambda: len(busy()) == 2, 120, "the job never ran on both workers")
            victim = two.pids["worker-2"]
            t0 = time.monotonic()
            os.killpg(victim, signal.SIGKILL)
            reply, out = k.collect(msg_id, timeout=180)
            took = time.monotonic() - t0
            quiet(out)
            assert reply["content"]["status"] == "ok", all_text(out)
            assert result(out) == str(sum(range(24)))
            wait_for(lambda: alive_workers(two.json()) == 1, 90,
                     "the master still counts the killed worker as alive")
            out = run_ok(k, "spark.range(10).count()", 120)
            assert result(out) == "10"
            jobs = http_json(f"{ui}/api/v1/applications/{app_id}/stages?status=complete", 5)
            failed = sum(s.get("numFailedTasks", 0) for s in jobs)
        finally:
            k.shutdown()
    figure("worker", "SIGKILL of one of two workers (its process group: worker, executor, "
           "Python workers) while an 8-task job runs on both",
           "the job: it completed on the other worker with the right result; the session; "
           "the next cell",
           "nothing the user sees: %d running task(s) were rerun" % failed,
           "kill to the job's result: %.1f s (tasks of 1 s each)" % took)


# ---- 4. the master restarted


def test_master_restarted_between_cells_next_cell_reconnects(cluster):
    """Without recovery mode a new master knows no application: the driver logs
    "Disconnected from Spark cluster" and would wait forever, its executors killed by the
    new master (a job then hangs with no executor). The executor sees it before the next
    cell and starts a new session (session.py, Session._cluster_dropped)."""
    k = Kernel(env=spark_env(cluster))
    try:
        app_id, _ = session_ids(k)
        run_ok(k, "kept = 7; spark.range(100).count()")
        back = cluster.restart_master(wait_workers=False)
        out = run_ok(k, "spark.range(100).count(), kept", 300)
        to_cell = time.monotonic() - back
        assert result(out) == "(100, 7)"
        lines = [l for l in stdout_text(out).splitlines() if l.strip()]
        assert "master" in lines[0] and "new" in lines[0], lines
        # The new master may not have its worker back yet (it re-registers on its own
        # schedule): then, and only then, one line says the job waits for it.
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith(
            "Waiting for executors: no worker is registered")), lines
        app2, _ = session_ids(k)
        assert app2 != app_id and app_of(cluster, app2) is not None
        assert app_of(cluster, app_id) is None

        # Gone when the cell runs: a clear error at once, a new session once it is back.
        cluster.stop_master()
        t0 = time.monotonic()
        reply, out = k.execute("spark.range(5).count()", timeout=120)
        to_error = time.monotonic() - t0
        assert reply["content"]["status"] == "error" and len(errors(out)) == 1, all_text(out)
        evalue = errors(out)[0]["content"]["evalue"]
        assert "does not answer" in evalue and "back" in evalue, evalue
        assert to_error < 30, to_error
        assert result(run_ok(k, "kept")) == "7"  # a cell without Spark still runs
        back2 = cluster.start_master(wait_workers=False)
        out = run_ok(k, "spark.range(5).count()", 300)
        to_cell2 = time.monotonic() - back2
        assert result(out) == "5" and "back" in stdout_text(out)
    finally:
        k.shutdown()
    figure("master", "the master stopped and a new one started on the same port (no "
           "recovery mode), between cells; then stopped while a cell ran, started again",
           "kernel, Python executor and its variables; the next cell reconnected: a new "
           "session on the new master (one line says so); with the master still down, one "
           "clear error in %.2f s, then a new session at the first cell after it came back"
           % to_error,
           "the old session's application and cached data (the new master never knew it)",
           "new master up to next cell done: %.1f s (then %.1f s), including the worker's "
           "re-registration and a new driver JVM" % (to_cell, to_cell2))


# ---- 5. 100 interrupts in a row


@pytest.mark.timeout(900)
@pytest.mark.long
def test_100_interrupts_on_running_jobs(cluster):
    k = Kernel(env=spark_env(cluster))
    latencies: list[float] = []
    try:
        app_id, ui = session_ids(k)
        for i in range(100):
            msg_id = k.kc.execute(SLEEPY_JOB)
            wait_for(lambda: running_jobs(ui, app_id), 60, f"job {i} never ran", 0.05)
            time.sleep(0.2)
            t0 = time.monotonic()
            k.km.interrupt_kernel()
            reply = k.shell_reply(msg_id, timeout=60)
            latencies.append(time.monotonic() - t0)
            assert reply["content"]["status"] == "error", (i, reply["content"])
            assert reply["content"]["ename"] == "KeyboardInterrupt", (i, reply["content"])
            out = iopub_until_idle(k, msg_id, 30)
            assert [e["content"]["ename"] for e in errors(out)] == ["KeyboardInterrupt"], \
                (i, all_text(out))
        wait_for(lambda: not running_jobs(ui, app_id) and active_tasks(ui, app_id) == 0, 60,
                 "jobs or tasks still running after the last interrupt")
        assert value(k, "spark.range(5).count()") == "5"
        assert not running_jobs(ui, app_id)
        assert app_of(cluster, app_id)["state"] == "RUNNING"  # the same application
    finally:
        k.shutdown()
    figure("interrupts", "100 interrupts in a row, each on a running Spark job (Python "
           "tasks sleeping 10 min)",
           "kernel, executor, session (the same application); every interrupt answered "
           "with KeyboardInterrupt and the kernel idle after each; no job left running",
           "nothing (each cancelled job, as asked)",
           "interrupt to reply: p50 %.2f s, p95 %.2f s, max %.2f s (n=100)"
           % (pct(latencies, 50), pct(latencies, 95), max(latencies)))


# ---- 6. the disk under spark.local.dir full


def test_disk_under_local_dir_full_clear_error():
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs for spark.local.dir needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    tiny = tempfile.mkdtemp(prefix="sparkernel-fulldisk-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", tiny],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(tiny)
        pytest.skip("cannot mount a tmpfs here: %s" % mounted.stderr.strip())
    # Local mode: the tasks run in the driver, whose spark.local.dir holds the shuffle
    # files (a standalone executor uses its worker's local dir instead).
    env = spark_env(_NoCluster(), SPARK_MASTER_URL="", SPARKERNEL_LOCAL_DIR=tiny)
    env.pop("SPARKERNEL_MASTER_UI_URL")
    big = ("spark.range(10**6).selectExpr('sha2(cast(id as string), 512) s')"
           ".repartition(8, 's').count()")  # ~80 MB of shuffle files, hex does not shrink
    k = None
    try:
        k = Kernel(env=env)
        assert value(k, "spark.range(10).count()", 240) == "10"
        t0 = time.monotonic()
        reply, out = k.execute(big, timeout=300)
        to_error = time.monotonic() - t0
        assert reply["content"]["status"] == "error", all_text(out)
        errs = errors(out)
        assert len(errs) == 1, all_text(out)
        err = errs[0]["content"]
        assert err["ename"] == "SparkDiskFull", err
        assert "No space left on device" in err["evalue"] and tiny in err["evalue"], err
        assert "spark.local.dir" in err["evalue"]
        shown = "\n".join(err["traceback"]) + "\n" + "".join(
            m["content"]["text"] for m in outputs_of(out, "stream"))
        assert "\tat " not in shown, shown
        shown_lines = len([l for l in shown.splitlines() if l.strip()])
        assert shown_lines < 40, shown
        quiet(out)
        # The session survives the full disk; with room again the same job runs.
        assert value(k, "spark.range(100).count()") == "100"
        subprocess.run(["mount", "-o", "remount,size=1g", tiny], check=True)
        t1 = time.monotonic()
        assert value(k, big, 300) == "1000000"
        to_ok = time.monotonic() - t1
    finally:
        if k is not None:
            k.shutdown()
        subprocess.run(["umount", tiny], capture_output=True)
        os.rmdir(tiny)
    figure("disk", "spark.local.dir on a 2 MB tmpfs, a job writing ~80 MB of shuffle files",
           "kernel, executor, session: a small job ran on the full disk, the big one once "
           "the tmpfs was grown",
           "the failing job; its cell showed one SparkDiskFull paragraph (where, what to do) "
           "and %d lines in all, no Java stack frames" % shown_lines,
           "error %.1f s after the job started; the job ran %.1f s after space was freed"
           % (to_error, to_ok))
