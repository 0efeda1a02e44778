"""The executor's Spark side, driven directly over its pipes as the kernel drives it:
spark_start/spark_stop/spark_refused, the warm session awaited only by cells that use it,
job tags and their cancellation on SIGINT, %%sql, log4j kept out of the cells, and a
clean stop when the kernel closes the command pipe. Sessions run on local[2]."""
from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Callable

import psutil
import pyspark
import pytest
from cluster import free_port

pytestmark = pytest.mark.timeout(300)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHATTER = re.compile(r"\b(INFO|WARN|WARNING|DEBUG)\b|log4j|Setting default log level")


def free_ports(n: int) -> list[int]:
    """n distinct ports for a driver started later (below the ephemeral range: cluster.py)."""
    ports: list[int] = []
    while len(ports) < n:
        ports.append(free_port(taken=frozenset(ports)))
    return ports


def spark_conf(log_file: pathlib.Path, **extra: str) -> dict[str, str]:
    driver, block, ui = free_ports(3)
    conf = {"spark.master": "local[2]", "spark.app.name": "sparkernel executor test",
            "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.port": str(driver), "spark.blockManager.port": str(block),
            "spark.ui.port": str(ui), "spark.port.maxRetries": "0",
            "spark.sql.shuffle.partitions": "2", "sparkernel.log.file": str(log_file)}
    conf.update(extra)
    return conf


class Executor:
    """`python -m sparkernel_executor` with its command pipe, event pipe, fd 1 and fd 2."""

    def __init__(self) -> None:
        cmd_r, self.cmd_w = os.pipe()
        ev_r, ev_w = os.pipe()
        env = dict(os.environ, PYTHONPATH=str(ROOT / "driver" / "python"),
                   SPARKERNEL_CMD_FD=str(cmd_r), SPARKERNEL_EVENT_FD=str(ev_w),
                   PYTHONIOENCODING="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "sparkernel_executor"],
                                     pass_fds=(cmd_r, ev_w), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        os.close(cmd_r)
        os.close(ev_w)
        self.events: list[tuple[float, dict]] = []
        self.cond = threading.Condition()
        self.fd1 = bytearray()
        self.fd2 = bytearray()
        threading.Thread(target=self._read_events, args=(ev_r,), daemon=True).start()
        for stream, buf in ((self.proc.stdout, self.fd1), (self.proc.stderr, self.fd2)):
            threading.Thread(target=self._drain, args=(stream, buf), daemon=True).start()
        self.wait_event(lambda e: e["type"] == "ready", timeout=60)

    def _read_events(self, fd: int) -> None:
        buf = b""
        while chunk := os.read(fd, 1 << 16):
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                n = struct.unpack(">I", buf[:4])[0]
                event = json.loads(buf[4:4 + n])
                buf = buf[4 + n:]
                with self.cond:
                    self.events.append((time.monotonic(), event))
                    self.cond.notify_all()
        os.close(fd)

    @staticmethod
    def _drain(stream: Any, buf: bytearray) -> None:
        while chunk := stream.read1(1 << 16):
            buf += chunk

    def send(self, obj: dict) -> None:
        if obj.get("type") == "spark_start":
            # These tests read Spark's INFO lines in its log file (the kernel's default
            # level is warn): they prove where the JVM's log goes.
            obj = {"log_level": "info", **obj}
        data = json.dumps(obj).encode()
        os.write(self.cmd_w, struct.pack(">I", len(data)) + data)

    def wait_event(self, pred: Callable[[dict], bool], start: int = 0,
                   timeout: float = 120) -> tuple[int, float, dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.events)):
                    t, e = self.events[i]
                    if pred(e):
                        return i, t, e
                left = deadline - time.monotonic()
                assert left > 0, f"no such event in {timeout} s: {self.events[start:]}"
                self.cond.wait(left)

    def spark_state(self, state: str, start: int = 0, timeout: float = 180) -> dict:
        return self.wait_event(lambda e: e["type"] == "spark_state" and e["state"] == state,
                               start, timeout)[2]

    def submit(self, code: str, count: int) -> int:
        """Sends an execute; returns where its events start."""
        with self.cond:
            start = len(self.events)
        self.send({"type": "execute", "code": code, "silent": False, "store_history": True,
                   "allow_stdin": False, "execution_count": count, "user_expressions": {}})
        return start

    def reply(self, start: int, timeout: float = 180) -> "Cell":
        i, t, e = self.wait_event(lambda e: e["type"] == "reply", start, timeout)
        with self.cond:
            return Cell(e["content"], [ev for _, ev in self.events[start:i]], t)

    def execute(self, code: str, count: int, timeout: float = 180) -> "Cell":
        return self.reply(self.submit(code, count), timeout)

    def close(self) -> None:
        try:
            os.close(self.cmd_w)
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Cell:
    def __init__(self, content: dict, events: list[dict], at: float) -> None:
        self.content, self.events, self.at = content, events, at

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def stdout(self) -> str:
        return "".join(e["text"] for e in self.of("stream") if e["name"] == "stdout")

    @property
    def result(self) -> str:
        (res,) = self.of("result")
        return res["data"]["text/plain"]


def rest(ready: dict, what: str) -> Any:
    url = f"{ready['ui_url']}/api/v1/applications/{ready['app_id']}/{what}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def tagged_jobs(ready: dict, tag: str) -> list[dict]:
    return [j for j in rest(ready, "jobs") if tag in (j.get("jobTags") or [])]


@pytest.fixture(scope="module")
def started():
    """One executor; spark_start, then at once a cell without Spark and one with it."""
    log = pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-test-")) / "spark.log"
    ex = Executor()
    ex.send({"type": "spark_start", "conf": spark_conf(log), "notice": ""})
    plain = ex.execute("40 + 2", 1)
    counted = ex.execute("spark.range(1000).count()", 2)
    ready = ex.spark_state("ready")
    yield {"ex": ex, "plain": plain, "counted": counted, "ready": ready, "log": log}
    ex.close()


def test_ready_event_names_the_application(started):
    ready, ex = started["ready"], started["ex"]
    assert ready["app_id"].startswith("local-")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", ready["ui_url"])
    assert ready["master"] == "local[2]" and ready["spark_version"] == pyspark.__version__
    assert ready["seconds"] > 0
    states = [e["state"] for _, e in ex.events if e["type"] == "spark_state"]
    assert states[:2] == ["starting", "ready"]


def test_cell_without_spark_does_not_wait(started):
    plain, ex = started["plain"], started["ex"]
    assert plain.content["status"] == "ok" and plain.result == "42"
    _, ready_at, _ = ex.wait_event(lambda e: e.get("state") == "ready")
    assert plain.at < ready_at
    assert "Waiting" not in plain.stdout


def test_cell_with_spark_waits_then_runs(started):
    counted = started["counted"]
    assert counted.content["status"] == "ok", counted.content
    assert counted.result == "1000"
    first = counted.of("stream")[0]
    assert first["name"] == "stdout"
    assert re.fullmatch(r"Waiting for the Spark session (to start|\(starting for \d+ s\))"
                        r"\u2026\n", first["text"]), first["text"]


def test_log4j_stays_out_of_cells(started):
    ex = started["ex"]
    ex.execute("spark.range(10).selectExpr('sum(id)').collect()", 3)
    texts = [e["text"] for _, e in ex.events if e["type"] == "stream"]
    assert not [t for t in texts if CHATTER.search(t) and "Waiting" not in t], texts
    assert not CHATTER.search(ex.fd2.decode(errors="replace")), ex.fd2.decode()
    log = started["log"].read_text()
    assert f" INFO SparkContext: Running Spark version {pyspark.__version__}" in log


def jvm_lines_shown(ex, code: str, last: str) -> str:
    """Runs a cell whose JVM logs `last` at the end; what reached the cell's stderr (the
    JVM's lines come through the executor's fd 2, after the reply maybe)."""
    cell = ex.execute(code, 5)
    assert cell.content["status"] == "ok", cell.content
    deadline = time.monotonic() + 10
    while last.encode() not in ex.fd2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return ex.fd2.decode(errors="replace")


def test_set_log_level_shows_what_the_notebook_asked_for(started):
    """The quiet default shows a cell the JVM's errors only. `sc.setLogLevel('INFO')` (or
    DEBUG) is the notebook asking to see the JVM's log, and the cell then shows it, as
    ipykernel + PySpark's does; WARN, which notebooks set to quiet an application's INFO
    (it is PySpark's own default), and ERROR keep the cell quiet."""
    ex = started["ex"]
    say = ("spark._jvm.org.apache.logging.log4j.LogManager"
           ".getLogger('org.apache.spark.LevelProbe').{}('{}')\n")
    level = "spark.sparkContext.setLogLevel('{}')\n".format
    code = (say.format("warn", "quiet-by-default") + level("WARN")
            + say.format("warn", "quiet-at-warn") + level("INFO")
            + say.format("info", "asked-for") + say.format("debug", "below-info")
            + level("ERROR") + say.format("warn", "quiet-again")
            + say.format("error", "level-probe-done") + "import time; time.sleep(0.5)")
    try:
        shown = jvm_lines_shown(ex, code, "level-probe-done")
        assert "INFO LevelProbe: asked-for" in shown, shown
        for hidden in ("quiet-by-default", "quiet-at-warn", "below-info", "quiet-again"):
            assert hidden not in shown, shown
    finally:
        # the module's later tests: the log file at its default level, the cell quiet
        ex.execute(level("WARN"), 5)


def test_errors_the_cell_already_raises_stay_in_the_log(started):
    """A Spark ERROR reaches the cell (fd 2: a full disk under spark.local.dir says so only
    there), except what is not the cell's to see: the RPC layer's message to a context
    already stopped, a failed task and the job it aborts, which the cell's exception
    states, the context cleaner's background removals (seen after a CrossValidator fit,
    never on ipykernel's cell), a write's abort and a streaming query's end in error
    (the cell's or the query's exception says them), and a context that failed to start
    (its exception says why). All logged through the JVM's own log4j."""
    ex = started["ex"]
    quiet = {"network.server.TransportRequestHandler": "Could not find CoarseGrainedScheduler.",
             "scheduler.TaskSetManager": "Task 1 in stage 4.0 failed 4 times; aborting job",
             "executor.Executor": "Exception in task 0.0 in stage 4.0 (TID 8)",
             "ContextCleaner": "Error cleaning broadcast 64",
             "sql.execution.datasources.FileFormatWriter": "Aborting job 6fbd0758.",
             "sql.execution.datasources.v2.OverwriteByExpressionExec":
                 "Data source write support NoopBatchWrite$@4f10d7eb is aborting.",
             "internal.io.SparkHadoopWriter": "Aborting job job_20261207_0003.",
             "sql.execution.streaming.MicroBatchExecution":
                 "Query [id = f48d, runId = 4ddb] terminated with error"}
    code = "lm = spark._jvm.org.apache.logging.log4j.LogManager\n"
    for i, (name, text) in enumerate(quiet.items()):
        code += f"lm.getLogger('org.apache.spark.{name}').error('quiet-{i}: {text}')\n"
    code += ("sc_log = lm.getLogger('org.apache.spark.SparkContext')\n"
             "sc_log.error('Error initializing SparkContext.')\n"
             "sc_log.error('shown-context: Failed to add a jar')\n"
             "sc_log.warn('quiet-warn')\n")
    code += "lm.getLogger('org.apache.spark.storage.DiskBlockManager').error('shown-disk')\n"
    shown = jvm_lines_shown(ex, code + "import time; time.sleep(0.5)", "shown-disk")
    assert "ERROR DiskBlockManager: shown-disk" in shown, shown
    assert "quiet-" not in shown, shown
    assert "ERROR SparkContext: shown-context" in shown, shown
    assert "Error initializing" not in shown, shown
    log = started["log"].read_text()
    assert "ERROR SparkContext: Error initializing SparkContext." in log, log[-2000:]
    for i, name in enumerate(quiet):
        assert f"ERROR {name.rsplit('.', 1)[-1]}: quiet-{i}" in log, log[-2000:]


def test_spark_is_predefined_and_sigint_stays_ours(started):
    ex = started["ex"]
    cell = ex.execute("import signal\n(type(sc).__name__, type(spark).__name__, "
                      "signal.getsignal(signal.SIGINT).__module__)", 4)
    assert cell.result == "('SparkContext', 'SparkSession', 'sparkernel_executor.main')"


def test_job_tag_per_cell(started):
    ex, ready = started["ex"], started["ready"]
    code = "\n   \ndf = spark.range(100)\ndf.count()"
    assert ex.execute(code, 42).result == "100"
    jobs = tagged_jobs(ready, "sparkernel-42")
    # Each job is titled by the line that started it (issue 15), numbered as IPython's
    # tracebacks number it (IPython drops a cell's leading blank lines).
    assert jobs and {j["description"] for j in jobs} == {"count at cell [42] line 2: df.count()"}


def test_the_notebooks_py4j_log_shows_only_its_own_calls(started):
    """py4j logs every JVM call at DEBUG: a notebook that turns it on sees its own calls,
    as on ipykernel, not the kernel's (a cell's job tag and title, the session check, the
    cell's job list), over a cell's start and end."""
    ex = started["ex"]
    code = ("import io, logging\n_log = io.StringIO()\n_h = logging.StreamHandler(_log)\n"
            "_h.setFormatter(logging.Formatter('%(message)s'))\n"
            "logging.getLogger('py4j').addHandler(_h)\n"
            "logging.getLogger('py4j').setLevel(logging.DEBUG)\n"
            "import time\ntime.sleep(0.3)\nspark.range(4).count()")
    assert ex.execute(code, 90).result == "4"
    assert ex.execute("import time\ntime.sleep(0.3)\nspark.range(5).count()", 91).result == "5"
    assert ex.execute("logging.getLogger('py4j').setLevel(logging.WARNING)\n"
                      "logging.getLogger('py4j').removeHandler(_h)", 92).content["status"] == "ok"
    logged = ex.execute("print(_log.getvalue())", 93).of("stream")
    text = "".join(s["text"] for s in logged)
    assert "\ncount\n" in text and "\nrange\n" in text, text[:2000]  # the notebook's calls
    for kernels in ("addJobTag", "removeJobTag", "setLocalProperty", "getLocalProperty",
                    "getJobIdsForTag", "isStopped", "statusTracker"):
        assert "\n" + kernels + "\n" not in text, (kernels, text[:3000])


def test_no_py4j_connection_closes_from_forked_children(started):
    """py4j logs "Closing down clientserver connection" at INFO when a connection is
    collected. A forked child (`!cmd`, os.fork) drops the other threads' connections, the
    kernel's among them, and logs each close before it execs or exits; ipykernel's stream
    buffers that write in the child and never sends it, so a notebook with py4j at INFO
    sees none of the child's. (The child's close also shuts down the sockets it shares with
    the executor, so py4j's own threads may log a reset and their closes in the executor
    afterwards: py4j's behaviour after fork, the same under ipykernel; those lines carry the
    executor's pid.) A user's own thread that ends still has its close logged, as on
    ipykernel."""
    ex = started["ex"]
    code = ("import logging, os, sys, threading\n_h3 = logging.StreamHandler(sys.stderr)\n"
            "_h3.setFormatter(logging.Formatter('%(process)d:%(message)s'))\n"
            "logging.getLogger('py4j').addHandler(_h3)\n"
            "logging.getLogger('py4j').setLevel(logging.INFO)\n"
            "get_ipython().system('true')\n"
            "pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n"
            "print('forked', os.getpid())")
    start = len(ex.fd2)
    forked = ex.execute(code, 94)
    own = ex.execute("t = threading.Thread(target=lambda: spark.range(2).count())\n"
                     "t.start()\nt.join()\ndel t\nimport gc\ngc.collect()\n"
                     "logging.getLogger('py4j').setLevel(logging.WARNING)\n"
                     "logging.getLogger('py4j').removeHandler(_h3)", 95)
    shown = "".join(e["text"] for e in forked.of("stream")) + ex.fd2[start:].decode(
        errors="replace")
    executor = re.search(r"^forked (\d+)$", forked.stdout, re.M)
    assert executor, forked.events
    closes = re.findall(r"^(\d+):Closing down clientserver connection$", shown, re.M)
    assert not [p for p in closes if p != executor.group(1)], shown
    own_text = "".join(e["text"] for e in own.of("stream") if e["name"] == "stderr")
    assert f"{executor.group(1)}:Closing down clientserver connection" in own_text, own.events


def test_cell_jobs_listed_only_after_a_jvm_call(started):
    """The report that spares the kernel's last look most of the driver's job list: sent
    after a cell of 0.2 s or more that called the JVM (where its jobs come from), and not
    after one of plain Python, which would pay two JVM calls for nothing."""
    ex = started["ex"]
    listed = ex.execute("import time\nspark.range(7).count()\ntime.sleep(0.3)", 75).of(
        "cell_jobs")
    assert len(listed) == 1 and listed[0]["tag"] == "sparkernel-75" and listed[0]["ids"]
    assert ex.execute("import time\ntime.sleep(0.3)", 76).of("cell_jobs") == []
    assert ex.execute("import time\ntime.sleep(0.3)\nspark.range(3).count()", 77).of(
        "cell_jobs")[0]["ids"], "a job after the sleep"


def test_sql_magic(started):
    ex = started["ex"]
    one = ex.execute("%%sql\nselect 1 as x", 50)
    assert one.content["status"] == "ok"
    (shown,) = one.of("display")
    assert "<th>x</th>" in shown["data"]["text/html"]
    assert "<td>1</td>" in shown["data"]["text/html"]
    assert shown["data"]["text/plain"].splitlines()[-1] == "1 row"
    many = ex.execute("%%sql -n 3\nselect id from range(10)", 51)
    (shown,) = many.of("display")
    assert shown["data"]["text/html"].count("<tr>") == 4  # head + 3 rows
    assert "more than 3 rows (showing 3)" in shown["data"]["text/plain"]
    bad = ex.execute("%%sql\nselec 1", 52)
    assert bad.content["status"] == "error"
    (err,) = bad.of("error")
    assert err["ename"] == "SparkSQLError" and "PARSE_SYNTAX_ERROR" in err["evalue"]
    assert len("\n".join(err["traceback"]).splitlines()) <= 15


def test_interrupt_cancels_the_cells_job(started):
    ex, ready = started["ex"], started["ready"]
    # max, not sum: with ANSI on (Spark 4's default) sum(id) over 10**10 rows overflows
    # within seconds and the job fails on its own.
    start = ex.submit("spark.range(10**13).selectExpr('max(id)').collect()", 60)
    deadline = time.monotonic() + 120
    while not [j for j in tagged_jobs(ready, "sparkernel-60") if j["status"] == "RUNNING"]:
        assert time.monotonic() < deadline, "the long job never ran"
        time.sleep(0.5)
    sent = time.monotonic()
    ex.proc.send_signal(signal.SIGINT)
    cell = ex.reply(start, timeout=30)
    assert cell.at - sent < 10
    assert cell.content["status"] == "error" and cell.content["ename"] == "KeyboardInterrupt"
    assert len(cell.of("error")) == 1
    assert not cell.of("stream"), cell.events  # no py4j complaints
    deadline = time.monotonic() + 30
    while [j["status"] for j in tagged_jobs(ready, "sparkernel-60")] != ["FAILED"]:
        assert time.monotonic() < deadline, tagged_jobs(ready, "sparkernel-60")
        time.sleep(0.5)
    (job,) = tagged_jobs(ready, "sparkernel-60")
    # "part of cancelled job tags sparkernel-60" (Spark 4; 3.5: "job tag")
    assert "cancelled job tag" in " ".join(job["killedTasksSummary"])
    assert "sparkernel-60" in " ".join(job["killedTasksSummary"])
    assert ex.execute("spark.range(5).count()", 61).result == "5"


def test_interrupt_of_a_jvm_call_that_is_no_job(started):
    """Nothing to cancel: the interrupt is raised inside the call after 3 s."""
    ex = started["ex"]
    start = ex.submit("spark._jvm.java.lang.Thread.sleep(120000)", 62)
    time.sleep(2)
    sent = time.monotonic()
    ex.proc.send_signal(signal.SIGINT)
    cell = ex.reply(start, timeout=30)
    assert cell.at - sent < 10
    assert cell.content["ename"] == "KeyboardInterrupt" and len(cell.of("error")) == 1
    assert not cell.of("stream"), cell.events
    assert ex.execute("spark.range(6).count()", 63).result == "6"


def test_stop_then_clear_error_then_restart(started):
    ex = started["ex"]
    assert ex.execute("def f():\n    return spark.range(3).count()\nf()", 70).result == "3"
    with ex.cond:
        mark = len(ex.events)
    ex.send({"type": "spark_stop"})
    ex.spark_state("stopped", mark, timeout=60)
    for code in ("spark.range(3).count()", "f()"):
        cell = ex.execute(code, 71)
        assert cell.content["status"] == "error"
        (err,) = cell.of("error")
        assert err["ename"] == "SparkUnavailable" and "%spark restart" in err["evalue"]
        assert len(err["traceback"]) <= 3
    assert ex.execute("1 + 1", 72).result == "2"
    # a new session in a new JVM
    log = started["log"].with_name("restart.log")
    ex.send({"type": "spark_start", "conf": spark_conf(log), "notice": "second session"})
    # ^C while a cell waits for the session: a short KeyboardInterrupt, the start goes on
    start = ex.submit("spark.range(7).count()", 73)
    ex.wait_event(lambda e: "Waiting for the Spark session" in e.get("text", ""), start)
    ex.proc.send_signal(signal.SIGINT)
    cell = ex.reply(start, timeout=30)
    (err,) = cell.of("error")
    # Short when it lands while the cell waits; on a loaded machine the session may be
    # ready by then and the interrupt lands in the job instead: still one error.
    assert err["ename"] == "KeyboardInterrupt"
    assert cell.stdout.startswith("second session\n")  # the notice, once
    again = ex.spark_state("ready", mark, timeout=180)
    assert again["app_id"] != started["ready"]["app_id"]
    cell = ex.execute("spark.range(7).count()", 74)
    assert cell.result == "7" and not cell.stdout
    assert " INFO SparkContext" in log.read_text()


def test_failed_start_then_refused():
    ex = Executor()
    try:
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        log = pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-test-")) / "spark.log"
        conf = spark_conf(log, **{"spark.driver.port": str(taken.getsockname()[1])})
        ex.send({"type": "spark_start", "conf": conf, "notice": ""})
        failed = ex.spark_state("failed", timeout=180)
        assert "BindException" in failed["error"] and "\tat " not in failed["error"]
        assert len(failed["error"]) < 1000
        cell = ex.execute("spark.range(3).count()", 1)
        (err,) = cell.of("error")
        assert err["evalue"] == failed["error"]
        message = "The cluster has 2 cores; this session asks for 8. Lower it and restart."
        ex.send({"type": "spark_refused", "message": message})
        for n, code in enumerate(("spark.range(3).count()", "%%sql\nselect 1")):
            cell = ex.execute(code, 2 + n)
            assert cell.content["status"] == "error"
            (err,) = cell.of("error")
            assert err["ename"] == "SparkUnavailable" and err["evalue"] == message
        assert ex.execute("'still' + ' fine'", 5).result == "'still fine'"
        taken.close()
    finally:
        ex.close()


def tgkill(pid: int, tid: int, sig: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(234, pid, tid, sig) != 0:  # SYS_tgkill on x86-64
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.parametrize("how", ["eof", "sigterm", "sigterm-to-a-thread"])
def test_exit_stops_the_session_and_its_jvm(how):
    """The kernel closes the pipe, or SIGTERM comes (its death, PR_SET_PDEATHSIG): the
    session stops and the process exits. A signal may land on any thread of the process
    (here forced onto one that is not the main thread): it still ends the main thread's
    wait for commands."""
    ex = Executor()
    log = pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-test-")) / "spark.log"
    ex.send({"type": "spark_start", "conf": spark_conf(log), "notice": ""})
    ex.spark_state("ready")
    (jvm,) = [p for p in psutil.Process(ex.proc.pid).children(recursive=True)
              if p.name() == "java"]
    sigign = int(re.search(r"SigIgn:\s*([0-9a-f]+)", pathlib.Path(
        f"/proc/{jvm.pid}/status").read_text()).group(1), 16)
    assert sigign & (1 << (signal.SIGINT - 1)), "the JVM must ignore SIGINT"
    closed = time.monotonic()
    if how == "eof":
        os.close(ex.cmd_w)
    elif how == "sigterm":
        ex.proc.terminate()
    else:
        tid = max(int(t) for t in os.listdir(f"/proc/{ex.proc.pid}/task"))
        assert tid != ex.proc.pid
        tgkill(ex.proc.pid, tid, signal.SIGTERM)
    ex.proc.wait(30)
    took = time.monotonic() - closed
    assert took < 15, took
    try:
        jvm.wait(10)
    except psutil.NoSuchProcess:
        pass
    assert not jvm.is_running() or jvm.status() == psutil.STATUS_ZOMBIE
    assert "Successfully stopped SparkContext" in log.read_text()
    assert not CHATTER.search(ex.fd2.decode(errors="replace")), ex.fd2.decode()
    ex.close()


@pytest.mark.parametrize("port,key", [("driver", "spark.driver.port"),
                                      ("ui", "spark.ui.port")])
def test_taken_port_falls_back_to_the_next_candidate(tmp_path, port, key):
    """Another process binds one of the first slot's ports after the kernel's probe: the
    executor tries the kernel's next candidate slot itself, and reports what it bound. A
    taken driver port shows as a BindException; a taken UI port may end the gateway (with
    spark.port.maxRetries 0 the driver gives up), so the executor also reads its log."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    taken = held.getsockname()[1]
    ex = Executor()
    try:
        first = dict(zip(("driver", "block_manager", "ui"), free_ports(3)), slot=0)
        first[port] = taken
        second = dict(zip(("driver", "block_manager", "ui"), free_ports(3)), slot=1)
        conf = spark_conf(tmp_path / "spark.log", **{key: str(taken)})
        ex.send({"type": "spark_start", "conf": conf, "notice": "",
                 "port_candidates": [first, second]})
        ready = ex.spark_state("ready")
        assert ready["ports"]["slot"] == 1 and ready["ports"][port] == second[port]
        assert ex.execute("spark.range(3).count()", 1).result == "3"
    finally:
        ex.close()
        held.close()
