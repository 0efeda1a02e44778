"""The Spark side of the executor: the SparkSession started on a background thread when
the kernel says so (spark_start, spark_stop, spark_refused), awaited by the first cell that
uses `spark` or `sc`; the job group of each cell, cancelled on interrupt; `%%sql`; and
Spark's log4j chatter kept out of the cells.

pyspark is imported only on the background thread: the executor's own start stays fast.

How the JVM is kept quiet (pyspark 4.0.1): pyspark launches the JVM with spark-submit and
passes every conf pair as `--conf`; in client mode the launcher puts
`spark.driver.extraJavaOptions` on the JVM's command line, so
`-Dlog4j2.configurationFile=file:...` there selects our log4j2.properties (everything to
a log file, ERROR also to stderr). The gateway's own "Setting default log level" lines are
silenced by giving its logger (PythonGatewayServer) the root's level in that file. The one
line the JDK itself prints ("WARNING: Using incubator modules") cannot be switched off, so
the JVM's stderr is a pipe that a thread forwards to fd 2 without that line.

Interrupts: the JVM never sees ^C. The executor has its own session and the kernel
signals its pid alone; pyspark starts the JVM with SIGINT ignored (launch_gateway's
preexec_fn; /proc/<jvm>/status SigIgn shows it); and the context is built off the main
thread, so pyspark installs no SIGINT handler of its own (it does only on the main thread).
The executor's handler calls `cancel_cell_jobs()`: the cell's job group is cancelled, and
the KeyboardInterrupt is raised as the JVM call the cell waits in returns (Spark.interrupt
says why)."""
from __future__ import annotations

import ast
import atexit
import html
import logging
import os
import pathlib
import re
import signal
import sys
import tempfile
import threading
import time
from typing import Any

from .debugger import untraced
from .frames import Channel
from .background import BackgroundJob

COMMANDS = ("spark_start", "spark_stop", "spark_refused", "spark_release")
SQL_ROWS = 50
_NAMES = ("spark", "sc")
_SQL_MAGIC = re.compile(r"^\s*%%?sql\b", re.M)
_JDK_NOISE = (b"WARNING: Using incubator modules",)
_JAVA_FRAMES = (b"\tat ", b"\t... ")  # stack frame lines of a logged Java exception
_DISK_FULL = "No space left on device"
_NEVER = ("No Spark session has been started in this kernel. Start one with "
          "%spark restart.")
_STOPPED = "The Spark session was stopped. Start a new one with %spark restart."
_HINTS = (
    ("BindException", "A driver port is taken or the driver host is not an address of "
                      "this machine: check spark.driver.host, spark.driver.bindAddress "
                      "and the ports."),
    ("All masters are unresponsive", "The master did not answer: check spark.master "
                                     "and that the master is running."),
    ("JAVA_GATEWAY_EXITED", "The JVM exited while starting: check that Java 17 or newer "
                            "is installed (JAVA_HOME) and read its error output above."),
)

_instance: "Spark | None" = None


class SparkUnavailable(Exception):
    """No session can serve the cell; the message says why and what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of frames
        return [f"{type(self).__name__}: {self}"]


class SparkSQLError(SparkUnavailable):
    """A %%sql statement failed; the message is Spark's, without the JVM's stack."""


class SparkDiskFull(SparkUnavailable):
    """A job ran out of disk space for its shuffle or spill files: one paragraph that
    says where and what to do, instead of the JVM's stacks (Spark._java_error)."""


def cancel_cell_jobs(frame: Any = None) -> bool:
    """Called by the executor's SIGINT handler (main thread) with the interrupted frame.
    Cancels the cell's Spark jobs; True when the KeyboardInterrupt is to be raised as the
    JVM call the cell waits in returns, rather than now (see Spark.interrupt)."""
    return _instance is not None and _instance.interrupt(frame)


def stop_spark() -> None:
    """Stops the kernel's session and its JVM (the executor is about to exit)."""
    if _instance is not None:
        _instance.shutdown()


def _in_py4j_call(frame: Any) -> bool:
    while frame is not None:
        if (frame.f_code.co_name == "send_command"
                and str(frame.f_globals.get("__name__", "")).startswith("py4j.")):
            return True
        frame = frame.f_back
    return False


class _Pending:
    """What `spark` and `sc` are while no session is ready: used in a cell, they wait for
    the session (or raise SparkUnavailable), so they are never silently something else.
    Outside a cell (completion, inspection) they never wait."""

    def __init__(self, owner: "Spark", name: str) -> None:
        self._owner = owner
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith(("__", "_repr_", "_ipython_")) or not self._owner.in_cell:
            raise AttributeError(attr)
        session = self._owner.wait()
        return getattr(session if self._name == "spark" else session.sparkContext, attr)

    def __repr__(self) -> str:
        return f"<{self._name}: {self._owner.describe()}>"


def uses_predefined(shell: Any, code: str) -> set[str]:
    """Which of `spark` and `sc` a cell reads before it binds the name itself
    (`spark = SparkSession.builder...getOrCreate()` then `spark.stop()` uses only its own),
    or is SQL. A binding counts where its statement ends, so `spark = spark.newSession()`
    reads the predefined one first."""
    if _SQL_MAGIC.search(code):
        return {"spark"}
    try:
        tree = ast.parse(shell.transform_cell(code))
    except Exception:  # not Python: the cell fails on its own
        return set()
    used: set[str] = set()
    first_load: dict[str, tuple[int, int]] = {}
    first_store: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With,
                             ast.Import, ast.ImportFrom)):
            end = (node.end_lineno or 0, node.end_col_offset or 0)
            targets = [n for n in ast.walk(node) if isinstance(n, ast.Name)
                       and isinstance(n.ctx, ast.Store)]
            targets += [ast.Name(id=(a.asname or a.name).split(".")[0])
                        for a in getattr(node, "names", [])]
            for t in targets:
                if t.id in _NAMES and first_store.get(t.id, end) >= end:
                    first_store[t.id] = end
        elif isinstance(node, ast.Name) and node.id in _NAMES and isinstance(node.ctx, ast.Load):
            at = (node.lineno, node.col_offset)
            if first_load.get(node.id, at) >= at:
                first_load[node.id] = at
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("run_line_magic", "run_cell_magic")):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    used |= uses_predefined(shell, arg.value)
    return used | {name for name, at in first_load.items()
                   if at < first_store.get(name, (1 << 30, 0))}


_BUILDS = re.compile(r"\b(SparkSession|SparkContext|SparkConf|findspark|getOrCreate)\b")


def _conf_pairs(conf: Any) -> dict[str, str]:
    """The settings a SparkConf holds (a JVM-backed one includes the JVM's defaults)."""
    if conf is None:
        return {}
    try:
        return {str(k): str(v) for k, v in conf.getAll()}
    except Exception:
        return {}


def _differences(session: Any, request: dict[str, str]) -> list[str]:
    """The keys of a session request that the running session cannot give: another app
    name or master, or a static setting with another value (runtime SQL settings apply to
    a running session, as PySpark's getOrCreate applies them)."""
    conf = session.sparkContext.getConf()
    out = []
    for key, value in request.items():
        if conf.get(key) == value:
            continue
        if key in ("spark.app.name", "spark.master"):
            out.append(key)
        elif not session.conf.isModifiable(key):
            out.append(key)
    return out


_AUTH_ENV = "_SPARK_AUTH_SECRET"  # where Spark's launcher and workers pass the secret


def _cell_site(frame: Any) -> str | None:
    """`<method> at cell [n] line l: <the line>` for the innermost frame of a cell's code
    above `frame` (the shell's compiler maps each cell's file name to its execution
    count: `<ipython-input-n-hash>` with IPython's, a temporary file with ipykernel's),
    where method is the first function the line called; None when no cell's code is on
    the stack."""
    import linecache

    from IPython import get_ipython

    shell = get_ipython()
    cells = getattr(getattr(shell, "compile", None), "_filename_map", {})
    callee = None
    while frame is not None:
        name = frame.f_code.co_filename
        n = cells.get(name)
        if n is not None:
            line = linecache.getline(name, frame.f_lineno).strip()[:100]
            what = callee.f_code.co_name if callee is not None else "job"
            return f"{what} at cell [{n}] line {frame.f_lineno}: {line}"
        callee, frame = frame, frame.f_back
    return None


def _port_of(url: str | None) -> int:
    m = re.search(r":(\d+)/?$", url or "")
    return int(m.group(1)) if m else 0


def first_line(text: str, limit: int = 80) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _java_message(exc: BaseException) -> str:
    """The Java exception's first line for a py4j error, else the Python one's."""
    try:
        text = str(exc)
    except Exception:  # Py4JJavaError asks the JVM, which may be gone
        text = repr(exc)
    for line in text.splitlines():
        if line.startswith(": "):  # py4j: "An error occurred while calling ...\n: java..."
            return line[2:].strip()[:500]
    line = first_line(text, 500)
    return line if line.startswith("[") else f"{type(exc).__name__}: {line}"


def _private_dir() -> pathlib.Path:
    """A directory only this user can enter (mkdtemp: 0700, a name no one can guess), in
    $XDG_RUNTIME_DIR when there is one, for the log4j configuration and Spark's log: in /tmp
    under a predictable name, another local user could create them first (a symlink, or a
    configuration whose FileAppender writes into any file the user can write)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    parent = runtime if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK) \
        else None
    return pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-", dir=parent))


def _write_private(path: pathlib.Path, text: str = "") -> None:
    """Writes a new file, 0600, never through a symlink nor into a file someone else made."""
    try:
        path.unlink()  # ours, from an earlier write: replaced, never followed
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _log4j_properties(log_file: str, level: str = "warn") -> str:
    """Spark's INFO logging costs a short job more than its work (measured: 300 ms instead
    of 170 ms for spark.range(100).count()), so the file gets WARN unless asked."""
    path = log_file.replace("\\", "\\\\")
    return f"""\
# Written by sparkernel: Spark's log goes to a file, only errors to the cell.
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss.SSS}} %p %c{{1}}: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %p %c{{1}}: %m%n%ex
# The gateway's interpreter mode prints "Setting default log level" unless its
# logger has its own level equal to the root's.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = {level}
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
# The UI's REST server logs an ERROR with a stack when a client has gone before its answer
# is written: the kernel's own progress poll, cut short when a cell stops its session
# (seen in the four-cell notebook on PySpark 3.5). Not the user's error: never shown.
logger.jersey.name = org.glassfish.jersey.server.ServerRuntime$Responder
logger.jersey.level = off
# An executor's one-way message that reaches the driver after the context it was meant for
# has stopped ("Could not find CoarseGrainedScheduler"): the kernel's own warm session
# replaced by the one a notebook builds, with decommissioning executors still reporting.
# RPC plumbing, never the user's error: in the log file only (a cell that builds a session
# showed it, where ipykernel + PySpark's cell shows nothing).
logger.rpc.name = org.apache.spark.network.server.TransportRequestHandler
logger.rpc.additivity = false
logger.rpc.appenderRef.file.ref = file
# A failed task ("Exception in task ...", in local mode) and the job it aborts ("Task 1 in
# stage 4.0 failed 4 times; aborting job"): the exception the cell raises says both, with
# the task's own error; a task that failed and then succeeded on a retry is no error of
# the cell's. In the log file only (ipykernel + PySpark's cell of a failing UDF shows the
# exception alone).
logger.task.name = org.apache.spark.scheduler.TaskSetManager
logger.task.additivity = false
logger.task.appenderRef.file.ref = file
logger.taskrun.name = org.apache.spark.executor.Executor
logger.taskrun.additivity = false
logger.taskrun.appenderRef.file.ref = file
"""


def _pump(fd: int) -> None:
    """The JVM's stderr to fd 2, without the JDK's incubator warning. Read from before
    the launch, so nothing the JVM says while starting is lost or blocks it. ERROR lines
    keep their exception's message and causes but not its stack frames (in Spark's log in
    full): a failing local-mode job logged a 40-line stack per task into the cell (a full
    disk under spark.local.dir: over 100 lines before the error itself)."""
    with open(fd, "rb") as stream:
        for line in iter(stream.readline, b""):
            if not line.startswith(_JDK_NOISE) and not line.startswith(_JAVA_FRAMES):
                try:
                    os.write(2, line)
                except OSError:
                    pass


class _DropPy4jInterrupt(logging.Filter):
    """When a KeyboardInterrupt lands inside a JVM call, py4j logs it with a traceback
    (on the root logger) and often a failed socket shutdown: the cell shows the interrupt."""

    MESSAGES = ("KeyboardInterrupt while sending command.",
                "Exception occurred while shutting down connection")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.MESSAGES


def _shrink(jsc: Any, keep: int) -> None:
    """Decommissions the executors above `keep` (the newest first: the oldest hold the most
    cached blocks and warm JIT code). A decommissioned executor takes no new task, ends the
    ones it runs and exits; the target the master holds for the application drops with it,
    so the master gives the cores to the application that waits, not back to this one.
    Nothing is killed: needs spark.decommission.enabled, which the kernel sets."""
    backend = jsc.schedulerBackend()
    pending = backend.executorsPendingDecommission()
    seq = jsc.getExecutorIds()
    ids = [seq.apply(n) for n in range(seq.size())]
    live = sorted((i for i in ids if not pending.contains(i)), key=lambda i: (len(i), i))
    excess = live[keep:]
    if not excess:
        return
    info_cls = _jvm().org.apache.spark.scheduler.ExecutorDecommissionInfo
    host = getattr(info_cls, "apply$default$2")()
    for executor in reversed(excess):
        info = info_cls.apply("sparkernel: another application waits for cores", host)
        backend.decommissionExecutor(executor, info, True, False)


def _grow(jsc: Any) -> None:
    """Gives the master back the target dynamic allocation holds (a shrink lowered the
    master's, not the allocation manager's): the session may take free cores again."""
    manager = jsc.executorAllocationManager()
    if manager.isEmpty():
        return
    targets = manager.get().numExecutorsTargetPerResourceProfileId()
    default_id = jsc.resourceProfileManager().defaultResourceProfile().id()
    target = targets.get(default_id)
    if target.isEmpty():
        return
    empty = getattr(getattr(_jvm().scala.collection.immutable, "Map$"), "MODULE$").empty()
    jsc.requestTotalExecutors(int(target.get()), 0, empty)


def _jvm() -> Any:
    from pyspark import SparkContext

    return SparkContext._jvm


class Spark:
    def __init__(self, channel: Channel, shell: Any) -> None:
        global _instance
        _instance = self
        self._channel = channel
        self._shell = shell
        self._lock = threading.Lock()
        self._gen = 0  # bumped by every command: events of older ones are dropped
        self._state = "none"  # none starting ready failed stopped refused
        self._problem = _NEVER  # why there is no session
        self._session: Any = None  # the SparkSession cells see, when ready
        self._live: Any = None  # the newest session built, stopped by the next job
        self._job: BackgroundJob | None = None  # the newest start or stop; each waits for the last
        self._since = 0.0
        self._notice = ""
        self._conf: dict[str, str] | None = None  # of the last spark_start, for a revival
        self._starting = 0  # a cell's SparkContext is starting (nested: the builder's)
        self._start_interrupted = False
        self._quiet_wait = False  # the notice already says a session is starting
        self._group: str | None = None
        self._deferred: object | None = None  # an interrupt waiting for a JVM call
        self._published: dict[str, Any] = {}
        self._log_file = ""
        self._log_seen = 0  # how far _master_lost has read the log (set when ready)
        self._gone_master: str | None = None  # a lost master not back yet (_check_alive)
        self._private = _private_dir()
        self._props = self._private / "log4j2.properties"
        atexit.register(self._props.unlink, missing_ok=True)
        default_log = self._private / "spark.log"
        _write_private(default_log)  # 0600 before log4j appends to it, whatever the umask
        # Sessions a user builds in a cell (own master, own app name) log as quietly as the
        # kernel's: pyspark hands PYSPARK_SUBMIT_ARGS to every JVM it launches.
        _write_private(self._props, _log4j_properties(str(default_log)))
        os.environ.setdefault(
            "PYSPARK_SUBMIT_ARGS",
            f"--driver-java-options -Dlog4j2.configurationFile={self._props.as_uri()} "
            "--conf spark.ui.showConsoleProgress=false pyspark-shell")
        self._cds = False  # class-data sharing for the driver JVM (cds.py)
        self._executor_cds: dict | None = None  # and for the executors': dir, spark_home
        self._dumping: pathlib.Path | None = None  # the archive this session's executors dump
        self._log_level = "warn"  # of Spark's log file (sparkernel.log.level)
        self._cell_waiting = False  # a cell waits for the session being started
        self._java_errors_hooked = False
        self._claimed = False  # a cell used the predefined spark/sc: PySpark's rules apply
        self._sessions_hooked = False  # _hook_sessions ran
        self._cell_count = 0
        self._cell_code = ""
        self._titling = False  # _hook_titles is setting a title (its own JVM call)
        self._fixed_title = False  # %%sql titles its jobs itself
        self._title: tuple[int, str] | None = None  # the context's last title
        self._stopped_by = 0  # the cell whose code stopped the session `spark` refers to
        self._announced = ""  # the application id the kernel was last told about
        self._importing = threading.Lock()  # held while the session's thread builds it
        self.in_cell = False
        for name in _NAMES:
            self._publish(name, _Pending(self, name))
        shell.events.register("pre_run_cell", lambda *a: setattr(self, "in_cell", True))
        shell.events.register("post_run_cell", lambda *a: self._after_cell())
        shell.register_magic_function(self.sql_magic, magic_kind="line_cell", magic_name="sql")
        for logger in ("", "py4j.clientserver"):
            logging.getLogger(logger).addFilter(_DropPy4jInterrupt())
        atexit.register(self.shutdown)

    # ---- commands from the kernel (main thread, between cells) ----

    def command(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "spark_start":
            conf = {str(k): ("true" if v is True else "false" if v is False else str(v))
                    for k, v in (msg.get("conf") or {}).items()}
            self._candidates = [c for c in (msg.get("port_candidates") or [])
                                if isinstance(c, dict)]
            self._cds = bool(msg.get("cds", False))
            ecds = msg.get("executor_cds")
            self._executor_cds = ecds if isinstance(ecds, dict) else None
            level = str(msg.get("log_level") or "warn").lower()
            self._log_level = level if level in ("trace", "debug", "info", "warn", "error") \
                else "warn"
            self.start(conf, str(msg.get("notice") or ""))
        elif kind == "spark_stop":
            self._detach("stopped", _STOPPED, self._stop_job)
        elif kind == "spark_release":
            self.release()
        elif kind == "spark_refused":
            self._detach("refused", str(msg.get("message") or "The kernel refused to start "
                                        "a Spark session."), lambda gen: self._teardown())

    def release(self) -> None:
        """Gives the session's idle executors back to the cluster now (the notebook is idle
        and another application waits for cores); the driver stays, and dynamic allocation
        asks for executors again when a job needs them. SparkContext.killExecutors refuses
        under dynamic allocation, so the scheduler backend is asked directly, without
        lowering its target (which is already zero with no task pending) and without
        force, so an executor that is busy after all keeps running."""
        session = self._session
        if session is None or self.in_cell:
            return
        try:
            jsc = session.sparkContext._jsc.sc()
            ids = jsc.getExecutorIds()
            if not ids.isEmpty():
                jsc.schedulerBackend().killExecutors(ids, False, False, False)
        except Exception:
            pass  # the session is going away; nothing to give back

    # ---- control commands (the control thread, at any time, a cell running or not) ----

    def control(self, msg: Any) -> None:
        """An elastic share (sparkernel.share.elastic): `spark_shrink` gives back every
        executor above `keep` at its next task boundary (another application waits and
        this session holds more than its fair share), `spark_grow` lets the session grow
        again (nobody waits any more). The kernel sends them again while the state lasts:
        one lost or refused here costs one poll."""
        if not isinstance(msg, dict):
            return
        sc = self._active_context()
        jsc = getattr(getattr(sc, "_jsc", None), "sc", lambda: None)()
        if jsc is None:
            return
        try:
            if msg.get("type") == "spark_shrink":
                keep = msg.get("keep")
                if isinstance(keep, int) and not isinstance(keep, bool) and keep >= 0 \
                        and self._elastic(sc):
                    _shrink(jsc, keep)
            elif msg.get("type") == "spark_grow":
                _grow(jsc)
        except Exception:
            pass  # the session is stopping: nothing to give or take

    def _elastic(self, sc: Any) -> bool:
        """Whether the context cells use shares elastically: the kernel's settings said so
        (it sends shrinks only then), and a session the user built did not fix its own
        share (spark.cores.max, its own maxExecutors, no dynamic allocation or
        decommissioning): those are honoured as written."""
        conf = sc.getConf()
        mine = self._conf or {}
        key = "spark.dynamicAllocation.maxExecutors"
        return (conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
                and conf.get("spark.decommission.enabled", "false").lower() == "true"
                and conf.get("spark.cores.max") is None
                and conf.get(key) == mine.get(key))

    def start(self, conf: dict[str, str], notice: str) -> None:
        self._notice = notice
        self._conf = dict(conf)
        self._detach("starting", "", lambda gen: self._start_job(gen, conf))
        self._send({"type": "spark_state", "state": "starting"})

    def _detach(self, state: str, problem: str, job: Any) -> None:
        """Cells stop seeing the current session at once; `job` runs after the last one."""
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._state, self._problem = state, problem
            self._session, self._group = None, None
            self._since = time.monotonic()
        for name in _NAMES:
            self._publish(name, _Pending(self, name))
        prev = self._job

        def run() -> None:
            if prev is not None:
                try:
                    prev.get()
                except BaseException:
                    pass
            job(gen)

        self._job = BackgroundJob(f"spark-{gen}", run).start()

    def _send(self, event: dict, gen: int | None = None) -> None:
        if gen is not None and gen != self._gen:
            return  # a later command superseded this one
        try:
            self._channel.send(event)
        except OSError:
            pass  # the kernel is gone

    # ---- background jobs (one at a time, in order) ----

    def _start_job(self, gen: int, conf: dict[str, str]) -> None:
        self._teardown()
        # The kernel's free port slots, in order: when another kernel binds this slot's
        # ports between the kernel's probe and our JVM's bind, the next slot is tried here
        # (a waiting cell cannot receive a new command from the kernel).
        candidates: list[dict | None] = list(getattr(self, "_candidates", [])) or [None]
        used: dict | None = None
        for i, ports in enumerate(candidates):
            attempt = dict(conf)
            if ports is not None:
                attempt["spark.driver.port"] = str(ports.get("driver"))
                attempt["spark.driver.blockManager.port"] = str(ports.get("block_manager"))
                attempt["spark.ui.port"] = str(ports.get("ui"))
            log_at = self._log_size()
            try:
                with self._importing:
                    session = self._build(attempt)
                used = ports
                break
            except BaseException as exc:
                message = self._explain(exc)
                self._teardown()
                # A port taken by another kernel between the kernel's probe and our bind:
                # the JVM may say so in the exception, or only in its log before it dies
                # (the UI's bind failure ends the gateway: the cell sees a py4j error).
                taken = "BindException" in message or self._log_says_bind_failed(log_at)
                if taken and i + 1 < len(candidates) and gen == self._gen:
                    continue
                with self._lock:
                    if gen == self._gen:
                        self._state, self._problem = "failed", message
                self._send({"type": "spark_state", "state": "failed", "error": message}, gen)
                return
        sc = session.sparkContext
        with self._lock:
            if gen != self._gen:
                return
            self._session, self._state = session, "ready"
            self._claimed, self._stopped_by, self._announced = False, 0, sc.applicationId
            seconds = time.monotonic() - self._since
            self._log_seen, self._gone_master = self._log_size(), None
        self._publish("spark", session)
        self._publish("sc", sc)
        self._send({"type": "spark_state", "state": "ready", "app_id": sc.applicationId,
                    "ui_url": sc.uiWebUrl, "master": sc.master,
                    "spark_version": session.version, "seconds": round(seconds, 2),
                    "log_file": self._log_file, "ports": used}, gen)
        if not self._cell_waiting and gen == self._gen:
            # Its own thread: a start job must never wait for executors (a %spark stop
            # queued behind it would too); stopping the session cancels it.
            threading.Thread(target=self._warm_up, args=(session,), name="spark-warm-up",
                             daemon=True).start()

    def _warm_up(self, session: Any) -> None:
        """One small job once the session is announced, when no cell waits for it: the
        first job of a fresh driver pays for query planning, code generation and the
        executor's first task (measured: a 10**6-row count took 4.5 s as a first job, well
        under a second afterwards). A cell that arrives meanwhile runs at once (the session
        is ready); one that already waited is not kept waiting for this."""
        try:
            # The group is this thread's own (pyspark pins local properties per thread).
            session.sparkContext.setJobGroup("sparkernel-warm-up",
                                             "sparkernel: warming up the session")
            session.range(1000, numPartitions=2).selectExpr("sum(id)").collect()
        except Exception:
            pass  # the session's own use will show what is wrong

    def _stop_job(self, gen: int) -> None:
        self._teardown()
        self._send({"type": "spark_state", "state": "stopped"}, gen)

    def _build(self, conf: dict[str, str]) -> Any:
        from pyspark import SparkConf, SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession

        from . import cds  # here, not at the top: the executor's own start stays fast

        try:  # PySpark 4: it logs every SQL error again, as JSON with the JVM's stack, on
            # stderr; the cell already shows the exception. PySpark 3.5 has no such logger.
            from pyspark.logger import PySparkLogger

            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
        except ImportError:
            pass

        self._log_file = conf.get("sparkernel.log.file") or str(self._private / "spark.log")
        props = self._props
        _write_private(props, _log4j_properties(self._log_file, self._log_level))
        pairs = {k: v for k, v in conf.items() if k.startswith("spark.")}
        pairs.setdefault("spark.ui.showConsoleProgress", "false")
        # The kernel adds to these; what the deployment's spark-defaults.conf says stays.
        defaults = cds.spark_defaults()
        for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions",
                    "spark.executor.extraClassPath"):
            if key in defaults:
                pairs.setdefault(key, defaults[key])
        java_opts = pairs.get("spark.driver.extraJavaOptions", "")
        if "log4j2.configurationFile" not in java_opts:
            java_opts = f"{java_opts} -Dlog4j2.configurationFile={props.as_uri()}"
        cds_ok, conf_dir, props_file = cds.conf_dir_plan() if self._cds else (False, None, None)
        archive = cds.archive_path(conf_dir) if cds_ok and "SharedArchiveFile" not in java_opts \
            else None
        # The archive's options first: a -Xlog of the user's still applies after them.
        pairs["spark.driver.extraJavaOptions"] = f"{cds.java_options(archive)} {java_opts}".strip()
        self._dumping = None
        if self._executor_cds is not None:
            extra, self._dumping = cds.executor_plan(
                self._executor_cds.get("dir"),
                self._executor_cds.get("spark_home") or cds.spark_home(), pairs)
            pairs.update(extra)
        # The RPC secret reaches the JVM through its environment, never its command line
        # (launch_gateway passes every pair as --conf: `ps` would show it to every local
        # user); Spark resolves the ${env:...} reference itself, as the chart's
        # spark-defaults.conf does. Only the JVM's environment keeps it, not ours.
        auth_secret = pairs.get("spark.authenticate.secret")
        if auth_secret and not auth_secret.startswith("${"):
            pairs["spark.authenticate.secret"] = "${env:%s}" % _AUTH_ENV
        else:
            auth_secret = None
        spark_conf = SparkConf(loadDefaults=False)
        for k, v in pairs.items():
            spark_conf.set(k, v)
        # The JVM is launched here rather than by the builder only to pipe its stderr.
        read_end, write_end = os.pipe()
        # Drained even while the debugger holds the cell at a breakpoint: a full pipe
        # would stall the JVM.
        untraced(threading.Thread(target=_pump, args=(read_end,), name="spark-stderr",
                                  daemon=True)).start()
        # The kernel's own session passes its java options in the conf; the environment's
        # --driver-java-options (for user-built sessions) would override them.
        submit_args = os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
        saved_conf_dir = os.environ.get("SPARK_CONF_DIR")
        if archive is not None and conf_dir:  # class-data sharing: see cds.conf_dir_plan
            os.environ["SPARK_CONF_DIR"] = conf_dir
            if props_file:
                os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {props_file} pyspark-shell"
        saved_secret = os.environ.get(_AUTH_ENV)
        if auth_secret is not None:
            os.environ[_AUTH_ENV] = auth_secret
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": write_end})
        finally:
            if auth_secret is not None:
                if saved_secret is None:
                    os.environ.pop(_AUTH_ENV, None)
                else:
                    os.environ[_AUTH_ENV] = saved_secret
            os.close(write_end)
            os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
            if submit_args is not None:
                os.environ["PYSPARK_SUBMIT_ARGS"] = submit_args
            if saved_conf_dir is None:
                os.environ.pop("SPARK_CONF_DIR", None)
            else:
                os.environ["SPARK_CONF_DIR"] = saved_conf_dir
        SparkContext._ensure_initialized(gateway=gateway)
        self._hook_sessions()
        builder = SparkSession.builder
        for k, v in pairs.items():
            builder = builder.config(k, v)
        self._live = builder.getOrCreate()
        if archive is not None and not archive.exists():
            cds.train(archive, f"-Dlog4j2.configurationFile={props.as_uri()}", conf_dir)
        return self._live

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self._log_file) if self._log_file else 0
        except OSError:
            return 0

    def _log_says_bind_failed(self, offset: int) -> bool:
        """Whether the JVM logged a failed bind since offset (its log file)."""
        try:
            with open(self._log_file, "rb") as f:
                f.seek(offset)
                tail = f.read(1 << 20)
        except (OSError, TypeError):
            return False
        return b"BindException" in tail or b"Failed to bind" in tail

    def _explain(self, exc: BaseException) -> str:
        what = _java_message(exc).rstrip(".")
        hint = next((h for key, h in _HINTS if key in what or key in repr(exc)),
                    "Check the Spark settings (%spark config).")
        log = f" Spark's log: {self._log_file}." if self._log_file else ""
        return (f"The Spark session could not start: {what}. {hint}{log} "
                "Then start it again with %spark restart.")

    def _teardown(self) -> None:
        """Stops the newest session and its JVM, so the application leaves the master and
        the next session starts with its own driver options."""
        session, self._live = self._live, None
        if "pyspark" not in sys.modules:
            return
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        # A session a cell built in this JVM goes with it, its application stopped cleanly.
        active = SparkContext._active_spark_context
        for stop in ([session.stop] if session is not None else []) + \
                ([active.stop] if active is not None and (
                    session is None or active is not session.sparkContext) else []):
            stopper = threading.Thread(target=stop, daemon=True)
            stopper.start()
            stopper.join(30)
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        SparkContext._active_spark_context = None
        gateway, SparkContext._gateway, SparkContext._jvm = SparkContext._gateway, None, None
        if gateway is None:
            return
        proc = getattr(gateway, "proc", None)
        try:
            gateway.shutdown()
        except Exception:
            pass
        if proc is not None:
            try:
                proc.stdin.close()  # the gateway exits when its stdin closes
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait()

    # ---- cells (main thread) ----

    def before_cell(self, msg: dict) -> bool:
        """Waits for the session if the cell uses it and sets the cell's job group. False
        when the cell must not run: its one error has been shown."""
        code = str(msg.get("code", ""))
        self._deferred = None
        # In the cell from here on: IPython's pre_run_cell comes later (and never for a
        # silent cell), and the job group below is set only in a cell.
        self.in_cell = True
        self._cell_count = int(msg.get("execution_count", 0) or 0)
        self._cell_code = code
        self._hook_java_errors()
        self._check_alive()
        # The names the cell reads that are still the kernel's (not rebound by the user).
        ns = self._shell.user_ns
        predefined = {n for n in uses_predefined(self._shell, code)
                      if n in self._published and ns.get(n) is self._published[n]}
        # A cell that builds its own session waits for the warm one (never two JVMs
        # starting at once, nor two threads importing pyspark), then decides (_yield_warm).
        builds = not predefined and _BUILDS.search(code) is not None
        if builds and not self._claimed:
            self._notice = ""  # about the kernel's request; plain PySpark prints nothing
        pending = any(isinstance(ns.get(n), _Pending) for n in predefined)
        if (self._state != "ready" and pending) or (self._notice and predefined) or \
                (builds and self._state == "starting"):
            try:
                self.wait(quiet=not predefined)
            except SparkUnavailable as exc:
                if predefined:  # else the cell's own session may well start
                    self._shell.showtraceback((type(exc), exc, None))  # no frames of ours
                    return False
            except KeyboardInterrupt as exc:
                self._shell.showtraceback((type(exc), exc, None))
                return False
            self._hook_java_errors()
        if builds and not self._sessions_hooked:
            try:
                with self._importing:
                    self._hook_sessions()
            except Exception:
                pass  # pyspark is not importable: the cell says so itself
        if predefined and self._session is not None:
            self._claimed = True
        self._group = None
        self._join_group(self._active_context())
        return True

    # ---- sessions a cell builds (main thread) ----

    def _active_context(self) -> Any:
        """The SparkContext cells' jobs run in, whoever built it (None when there is none)."""
        if "pyspark" not in sys.modules or not self._sessions_hooked:
            return self._session.sparkContext if self._session is not None else None
        from pyspark import SparkContext

        return SparkContext._active_spark_context

    def _join_group(self, sc: Any) -> None:
        """Puts the running cell's jobs of context `sc` in the cell's job group: its
        progress, and what an interrupt cancels."""
        if sc is None or not self.in_cell or self._cell_count <= 0:
            return
        group = f"sparkernel-{self._cell_count}"
        try:
            sc.setJobGroup(group, first_line(self._cell_code), interruptOnCancel=True)
            self._group, self._title = group, None
        except Exception:
            self._group = None

    def _user_call(self) -> bool:
        return self.in_cell and threading.current_thread() is threading.main_thread()

    def _hook_sessions(self) -> None:
        """Wraps the entry points a notebook builds sessions with (SparkSession.builder's
        getOrCreate, SparkContext(...), SparkContext.getOrCreate, SparkContext.stop), so
        the warm session gives way to a user's request (_yield_warm), a session the user
        builds becomes the kernel's to follow (_adopt), and a stop is remembered with its
        cell. The kernel's own thread passes straight through. Once per process."""
        if self._sessions_hooked:
            return
        import inspect

        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        owner = self
        init, get_ctx = SparkContext.__init__, SparkContext.getOrCreate.__func__
        stop, get_session = SparkContext.stop, SparkSession.Builder.getOrCreate
        signature = inspect.signature(init)

        def context_init(sc: Any, *args: Any, **kwargs: Any) -> None:
            if not owner._user_call():
                return init(sc, *args, **kwargs)
            try:
                bound = signature.bind(sc, *args, **kwargs).arguments
            except TypeError:
                bound = {}
            if bound.get("jsc") is None and bound.get("gateway") is None:
                request = _conf_pairs(bound.get("conf"))
                if bound.get("master"):
                    request["spark.master"] = str(bound["master"])
                if bound.get("appName"):
                    request["spark.app.name"] = str(bound["appName"])
                owner._yield_warm(request)
            # An interrupt while the context starts waits for the start to end (see
            # interrupt), then stops the context and is raised: raised inside the start, it
            # would leave the JVM's context running with no Python side, and every later
            # SparkContext of the process refused.
            owner._starting += 1
            try:
                init(sc, *args, **kwargs)
            finally:
                owner._starting -= 1
            if owner._start_interrupted and not owner._starting:
                owner._start_interrupted = False
                try:
                    stop(sc)
                except Exception:
                    pass
                raise KeyboardInterrupt
            owner._adopt(sc, None)

        def context_get(cls: Any, conf: Any = None) -> Any:
            if owner._user_call() and conf is not None:
                owner._yield_warm(_conf_pairs(conf))
            sc = get_ctx(cls, conf)
            if owner._user_call():
                owner._adopt(sc, None)
            return sc

        def context_stop(sc: Any) -> None:
            if owner._user_call():
                owner._note_stop(sc)
            return stop(sc)

        def session_get(builder: Any) -> Any:
            if not owner._user_call():
                return get_session(builder)
            owner._yield_warm(dict(getattr(builder, "_options", {}) or {}))
            session = get_session(builder)
            owner._adopt(session.sparkContext, session)
            return session

        self._hook_titles()
        SparkContext.__init__ = context_init  # type: ignore[method-assign]
        SparkContext.getOrCreate = classmethod(context_get)  # type: ignore[assignment]
        SparkContext.stop = context_stop  # type: ignore[method-assign]
        SparkSession.Builder.getOrCreate = session_get  # type: ignore[method-assign]
        self._sessions_hooked = True

    def _hook_titles(self) -> None:
        """Job titles that speak of the user's code: before a JVM call from a cell's line
        (main thread), the active context's job description becomes that line, e.g.
        `count at cell [3] line 14: raw_rows = raw.count()`, set once per line and
        method (one more JVM call then). Without it a job is named after a JVM frame
        (`$anonfun$withThreadLocalCaptured$2 at CompletableFuture.java:1768`) or our own
        file, and every job of a cell carried the cell's first line."""
        import py4j.java_gateway as gateway
        from pyspark import SparkContext

        owner = self
        call = gateway.JavaMember.__call__

        def member_call(member: Any, *args: Any) -> Any:
            if owner._titling or not owner.in_cell or owner._fixed_title \
                    or threading.current_thread() is not threading.main_thread():
                return call(member, *args)
            sc = SparkContext._active_spark_context
            jsc = getattr(sc, "_jsc", None)
            if jsc is not None:
                title = _cell_site(sys._getframe(1))
                if title is not None and (id(jsc), title) != owner._title:
                    owner._titling = True
                    try:
                        jsc.setLocalProperty("spark.job.description", title)
                        owner._title = (id(jsc), title)
                    except Exception:
                        pass
                    finally:
                        owner._titling = False
            return call(member, *args)

        gateway.JavaMember.__call__ = member_call  # type: ignore[method-assign]

    def _yield_warm(self, request: dict[str, str]) -> None:
        """Until a cell uses the predefined `spark`/`sc`, a request that names something
        the warm session does not have (an app name, another master, a static setting)
        gets its own session, as on plain PySpark: the warm context stops here and the
        user's starts in the same JVM (the JVM's start is what the warm-up saves). A
        request that names nothing new gets the warm session, which is then the user's."""
        session = self._session
        if self._claimed or session is None or self._state != "ready":
            return
        sc = session.sparkContext
        if self._active_context() is not sc or sc._jsc is None:
            return
        try:
            differs = _differences(session, request)
        except Exception:
            return  # the JVM is going away: the request fails on its own
        if not differs:
            self._claimed = True
            return
        name = request.get("spark.app.name")
        print(f"sparkernel: starting this cell's own Spark session"
              f"{f' {name!r}' if name else ''} in the kernel's running JVM (the warm session "
              f"it replaces was never used; set {', '.join(differs[:3])}).", flush=True)
        problem = (f"The kernel's unused Spark session gave way to the one cell "
                   f"[{self._cell_count}] builds; use that one, or %spark restart.")
        with self._lock:
            self._session, self._claimed = None, True
            self._state, self._problem = "stopped", problem
        self._live = None  # the JVM stays: it hosts the user's session
        try:
            session.stop()
        except Exception:
            pass
        ns = self._shell.user_ns
        for name, value in (("spark", session), ("sc", sc)):
            if ns.get(name) is value and self._published.get(name) is value:
                self._publish(name, _Pending(self, name))
        self._send({"type": "spark_state", "state": "stopped"})

    def _adopt(self, sc: Any, session: Any) -> None:
        """A session a cell built (or got back) is the one the kernel follows: the
        predefined names point to it, its jobs join the cell's group, and the kernel
        learns its application (progress, the WAITING report, cleanup)."""
        if sc is None or getattr(sc, "_jsc", None) is None:
            return
        if session is None:
            from pyspark.sql import SparkSession

            session = SparkSession._instantiatedSession
            if session is not None and session.sparkContext is not sc:
                session = None
        self._claimed = True
        if session is not None and session is not self._session:
            with self._lock:
                self._session, self._state, self._problem = session, "ready", ""
                self._stopped_by = 0
            self._publish("spark", session)
        self._publish("sc", sc)
        self._join_group(sc)
        try:
            app = sc.applicationId
        except Exception:
            return
        if app and app != self._announced:
            self._announced = app
            port = _port_of(sc.uiWebUrl)
            self._send({"type": "spark_state", "state": "ready", "app_id": app,
                        "ui_url": sc.uiWebUrl or "", "master": sc.master,
                        "spark_version": sc.version, "seconds": 0,
                        "log_file": self._log_file,
                        "ports": {"ui": port} if port else None, "switch": True})

    def _note_stop(self, sc: Any) -> None:
        session = self._session
        if session is not None and session.sparkContext is sc:
            self._stopped_by = self._cell_count

    def end_cell(self) -> None:
        """After the cell, whatever became of it (main thread): post_run_cell does not fire
        for a silent cell nor for one before_cell stopped."""
        if self.in_cell:
            self._after_cell()

    def _after_cell(self) -> None:
        self.in_cell = False
        self._cell_waiting = False
        self._deferred = None
        if self._dumping is not None:  # this session's executors dump the archive
            from . import cds

            try:
                cds.promote(self._dumping)
            except OSError:
                pass

    def wait(self, quiet: bool = False) -> Any:
        """The ready session, waiting for it if it is starting (main thread, in a cell);
        `quiet`: for a cell that builds its own session, which must not hear about ours."""
        if self._notice and not quiet:
            print(self._notice, flush=True)
            self._notice = ""
        job = self._job
        quiet, self._quiet_wait = quiet or self._quiet_wait, False
        if self._state == "starting" and job is not None:
            if not quiet:
                waited = time.monotonic() - self._since
                print("Waiting for the Spark session to start\u2026" if waited < 1 else
                      f"Waiting for the Spark session (starting for {waited:.0f} s)\u2026",
                      flush=True)
            self._cell_waiting = True
            try:
                job.get()
            except KeyboardInterrupt:
                raise
            except BaseException:
                pass  # the job recorded what went wrong
        session = self._session
        if session is None:
            raise SparkUnavailable(self._problem or _NEVER) from None
        return session

    def describe(self) -> str:
        if self._state == "starting":
            return f"the Spark session is starting ({time.monotonic() - self._since:.1f} s)"
        return self._problem or _NEVER

    def interrupt(self, frame: Any) -> bool:
        """Cancels the cell's job group from a helper thread (the main thread's py4j
        connection is busy with the running call). A KeyboardInterrupt raised inside py4j's
        send_command makes py4j tear down its connections, which races with the JVM (we saw
        Py4JNetworkError instead of the interrupt, and py4j errors on stderr): when the
        cell waits in a JVM call, the interrupt is raised instead as that call returns,
        which the cancel makes prompt. A second ^C, or 3 s without an answer, raises at
        once."""
        if self._starting:  # a context starting: raised once it has started and stopped
            if self._start_interrupted:
                return False  # a second ^C: at once
            self._start_interrupted = True
            return True
        if self._deferred is not None:
            self._deferred = None
            return False
        sc, group = self._active_context(), self._group
        if sc is None or group is None:
            return False
        helper = threading.Thread(target=sc.cancelJobGroup, args=(group,),
                                  name="spark-cancel", daemon=True)
        helper.start()
        helper.join(5)
        if not _in_py4j_call(frame):
            return False
        self._hook_return_value()
        token = self._deferred = object()
        timer = threading.Timer(3.0, self._escalate, args=(token,))
        timer.daemon = True
        timer.start()
        return True

    def _escalate(self, token: object) -> None:
        if self._deferred is token:
            os.kill(os.getpid(), signal.SIGINT)

    def _hook_return_value(self) -> None:
        """py4j's JavaMember calls java_gateway.get_return_value with every answer; pyspark
        wraps it too (and re-wraps it for every new SparkSession), so this runs per use."""
        import py4j.java_gateway as gateway

        current = gateway.get_return_value
        if getattr(current, "sparkernel", False):
            return

        def get_return_value(*args: Any, **kwargs: Any) -> Any:
            if (self._deferred is not None
                    and threading.current_thread() is threading.main_thread()):
                self._deferred = None
                raise KeyboardInterrupt
            return current(*args, **kwargs)

        get_return_value.sparkernel = True  # type: ignore[attr-defined]
        gateway.get_return_value = get_return_value

    def _check_alive(self) -> None:
        """A `spark.stop()` in a cell or a dead JVM: cells get a clear error, not py4j's.
        A session the cluster dropped (master restarted, application killed) is revived."""
        session = self._session
        if session is None:
            if (self._gone_master and self._state == "failed" and self._conf is not None
                    and _master_answers(self._gone_master)):
                self._quiet_wait = True  # the master is back: see _cluster_dropped
                self.start(self._conf, "The Spark master is back; a new Spark session is "
                                       "starting\u2026")
            return
        from pyspark import SparkContext

        proc = getattr(SparkContext._gateway, "proc", None)
        dead = proc is None or proc.poll() is not None
        if not dead and session.sparkContext._jsc is not None:
            self._cluster_dropped(session)
            return
        if dead and self._conf is not None:
            # The JVM died under the session (killed, OOM): what a user expects is a
            # working `spark` again, as %spark restart would give, and to be told once.
            self._quiet_wait = True
            self.start(self._conf, "The previous Spark driver (JVM) died; a new Spark "
                                   "session is starting\u2026")
            return
        if not dead:
            self._user_stopped(session)
            return
        self._detach("failed", f"The Spark driver (JVM) exited. Spark's log: "
                               f"{self._log_file}. Start a new session with %spark restart.",
                     lambda gen: self._teardown())
        self._send({"type": "spark_state", "state": "failed", "error": self._problem})

    def _user_stopped(self, session: Any) -> None:
        """The cell's code stopped the session `spark` refers to: the notebook's own
        business, as on plain PySpark. The JVM stays (the next builder starts its session
        there) and no cell is refused; only a later use of that stopped `spark` or `sc`
        gets one error that says which cell stopped it and what to do."""
        by = f" by cell [{self._stopped_by}]" if self._stopped_by else ""
        problem = (f"The Spark session `spark` was stopped{by}. Build a new one "
                   "(SparkSession.builder.getOrCreate()) or run %spark restart.")
        with self._lock:
            self._session, self._state, self._problem = None, "stopped", problem
            self._group = None
        ns = self._shell.user_ns
        for name, value in (("spark", session), ("sc", session.sparkContext)):
            if ns.get(name) is value and self._published.get(name) is value:
                self._publish(name, _Pending(self, name))
        self._send({"type": "spark_state", "state": "stopped"})

    def _hook_java_errors(self) -> None:
        """Java errors a cell does not catch go through _java_error (IPython's custom
        exception handler: run_code calls it instead of showing the traceback). Once
        pyspark is loaded, and never while the session's thread imports it: PySpark 3.5's
        modules import each other in a cycle, and two threads importing them in another
        order get a partly initialised module (ImportError)."""
        if self._java_errors_hooked or "py4j.protocol" not in sys.modules \
                or not self._importing.acquire(blocking=False):
            return
        try:
            from py4j.protocol import Py4JJavaError
            from pyspark.errors.exceptions.captured import CapturedException

            self._java_errors_hooked = True
            self._shell.set_custom_exc((Py4JJavaError, CapturedException), self._java_error)
        finally:
            self._importing.release()

    def _java_error(self, shell: Any, etype: type, value: BaseException, tb: Any,
                    tb_offset: int | None = None) -> None:
        """A full disk becomes SparkDiskFull; any other Java error shows as before."""
        try:
            text = str(value)
        except Exception:  # Py4JJavaError asks the JVM, which may be gone
            text = ""
        if _DISK_FULL not in text:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return
        conf = self._conf or {}
        local_dir = conf.get("spark.local.dir") or "/tmp"
        master = conf.get("spark.master") or "local[*]"
        where = (f"spark.local.dir ({local_dir}) on this machine"
                 if master.startswith("local") else
                 f"each worker's local directories (its SPARK_LOCAL_DIRS, which executors "
                 f"use instead of spark.local.dir), or this driver's spark.local.dir "
                 f"({local_dir})")
        log = f" Full stacks in Spark's log: {self._log_file}." if self._log_file else ""
        err = SparkDiskFull(
            f"The disk is full: Spark could not write a job's shuffle or spill files "
            f"({_DISK_FULL}). They go under {where}. Free space there, or give Spark a "
            f"bigger disk (%spark config spark.local.dir=/path/to/big/disk, then %spark "
            f"restart), or make the job write less (select fewer columns and filter before "
            f"a shuffle). The session still works. Spark said: "
            f"{_java_message(value).rstrip('.')}.{log}")
        shell.showtraceback((SparkDiskFull, err, None))

    def _cluster_dropped(self, session: Any) -> None:
        """A live JVM whose application the cluster no longer runs. Without recovery mode
        a restarted standalone master knows no application; the driver only logs
        "Disconnected from Spark cluster! Waiting for reconnection..." and waits forever
        (its app client re-registers only when a recovering master asks it to), the new
        master has the worker kill its executors, and every job then waits for executors
        that never come. An application the master killed (UI, "Master removed our
        application") leaves a stopped SparkContext in a live JVM. Either way the user
        gets a new session, as after a JVM death, and one line saying why; while the
        master does not answer, a clear error and a new session at the first cell after
        it is back."""
        why = None
        try:
            if session.sparkContext._jsc.sc().isStopped():
                why = "The cluster stopped this notebook's Spark application"
        except Exception:
            return  # the JVM is going away: the next cell sees it dead
        master = str(self._conf.get("spark.master", "")) if self._conf else ""
        if why is None and master.startswith("spark://") \
                and self._log_since_ready(b"Disconnected from Spark cluster"):
            why = ("The connection to the Spark master was lost (a restart?), and with it "
                   "this session's application")
        if why is None:
            return
        if self._conf is not None and (not master.startswith("spark://")
                                       or _master_answers(master)):
            self._quiet_wait = True
            self.start(self._conf, f"{why}; a new Spark session is starting\u2026")
            return
        self._gone_master = master or None
        problem = (f"{why}, and the master ({master}) does not answer now. The next cell "
                   "starts a new session once it is back (or use %spark restart).")
        self._detach("failed", problem, lambda gen: self._teardown())
        self._send({"type": "spark_state", "state": "failed", "error": problem})

    def _log_since_ready(self, needle: bytes) -> bool:
        """Whether Spark's log got `needle` since the session was ready (read once)."""
        try:
            with open(self._log_file, "rb") as f:
                f.seek(self._log_seen)
                tail = b""
                while chunk := f.read(1 << 20):
                    if needle in tail + chunk:
                        return True
                    tail = chunk[-len(needle):]
                    self._log_seen += len(chunk)
        except (OSError, TypeError):
            pass
        return False

    def _publish(self, name: str, value: Any) -> None:
        """Sets `spark` or `sc` unless the user has put something else there."""
        ns = self._shell.user_ns
        if name not in ns or ns[name] is self._published.get(name):
            ns[name] = value
            self._published[name] = value

    # ---- %%sql ----

    def sql_magic(self, line: str, cell: str | None = None) -> None:
        """%%sql [-n ROWS]: runs the cell in Spark SQL and shows up to ROWS rows (50)."""
        m = re.match(r"\s*(?:-n\s+(\d+)\s*)?(.*)\Z", line, re.S)
        limit = int(m.group(1)) if m and m.group(1) else SQL_ROWS
        query = cell if cell is not None else (m.group(2) if m else line)
        session = self.wait()
        self._fixed_title = True
        try:
            session.sparkContext.setJobDescription(f"%%sql: {first_line(query)}")
            self._title = None
            df = session.sql(query)
            rows = df.take(limit + 1)
        except Exception as exc:
            raise SparkSQLError(_sql_message(exc)) from None
        finally:
            self._fixed_title = False
        from IPython.display import display

        display(_table(df.columns, rows, limit), raw=True)

    # ---- exit ----

    def shutdown(self) -> None:
        """At exit (EOF on the command pipe, SIGTERM): stop the session cleanly."""
        with self._lock:
            self._gen += 1
            self._session = None
        job = self._job
        if job is not None:
            try:
                job.get(20)
            except BaseException:
                pass
        self._teardown()


def _master_answers(master: str, timeout: float = 2.0) -> bool:
    """Whether any master of a spark://h1:p1,h2:p2 URL accepts a connection."""
    import socket

    for hostport in master[len("spark://"):].split(","):
        host, _, port = hostport.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def _sql_message(exc: BaseException) -> str:
    """Spark's message up to the logical plan or the JVM stack, at most 15 lines."""
    lines: list[str] = []
    for line in str(exc).strip().splitlines():
        if line.startswith(("'", "+-", ":", "\tat ", "JVM stacktrace")):
            break
        lines.append(line)
    return "\n".join(lines[:15]).strip() or type(exc).__name__


def _table(columns: list[str], rows: list[Any], limit: int) -> dict:
    shown = rows[:limit]
    count = (f"more than {limit} rows (showing {limit})" if len(rows) > limit
             else f"{len(rows)} row{'' if len(rows) == 1 else 's'}")
    cells = [["null" if v is None else str(v) for v in row] for row in shown]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>"
                   for r in cells)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    text = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)),
            "-+-".join("-" * w for w in widths)]
    text += [" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return {"text/html": f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                         f"</table><p>{count}</p>",
            "text/plain": "\n".join(text + [count])}
