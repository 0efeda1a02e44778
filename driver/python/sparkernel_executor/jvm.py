"""The driver JVM of the kernel's sessions: its launch, Spark's log4j configuration, its
stderr, and Spark's log file.

How the JVM is kept quiet (pyspark 4.0.1): pyspark launches the JVM with spark-submit and
passes every conf pair as `--conf`; in client mode the launcher puts
`spark.driver.extraJavaOptions` on the JVM's command line, so
`-Dlog4j2.configurationFile=file:...` there selects our log4j2.properties (everything to
a log file, ERROR also to stderr). The gateway's own "Setting default log level" lines are
silenced by giving its logger (PythonGatewayServer) the root's level in that file. The one
line the JDK itself prints ("WARNING: Using incubator modules") cannot be switched off, so
the JVM's stderr is a pipe that a thread forwards to fd 2 without that line."""
from __future__ import annotations

import atexit
import logging
import os
import pathlib
import tempfile
import threading
import time
from typing import Any

from .debugger import untraced

_JDK_NOISE = (b"WARNING: Using incubator modules",)
_JAVA_FRAMES = (b"\tat ", b"\t... ")  # stack frame lines of a logged Java exception
_GAVE_UP = b"All masters are unresponsive"  # the standalone client's last word
_AUTH_ENV = "_SPARK_AUTH_SECRET"  # where Spark's launcher and workers pass the secret
_LOG_LEVELS = ("trace", "debug", "info", "warn", "error")


class PerContext:
    """JVM objects made from one SparkContext and kept while it lives, so that a call
    made every cell costs only its own JVM call: made again for another context (its
    `_jsc` differs), forgotten after a failure (the context is going away)."""

    def __init__(self, make: Any) -> None:
        self._make = make  # SparkContext -> the objects
        self._key: Any = None
        self._value: Any = None

    def get(self, sc: Any) -> Any:
        jsc = sc._jsc
        if self._key is not jsc or self._key is None:
            self._value, self._key = self._make(sc), jsc
        return self._value

    def forget(self) -> None:
        self._key = self._value = None


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


# Loggers whose lines go to the log file only, never a cell: what they say is no error of
# the cell's (ipykernel + PySpark's cell shows nothing of it), or the cell's exception says
# it already.
_FILE_ONLY = (
    # An executor's one-way message that reaches the driver after the context it was meant
    # for has stopped ("Could not find CoarseGrainedScheduler"): the kernel's own warm
    # session replaced by the one a notebook builds, with decommissioning executors still
    # reporting. RPC plumbing (a cell that builds a session showed it).
    ("rpc", "org.apache.spark.network.server.TransportRequestHandler"),
    # A failed task ("Exception in task ...", in local mode) and the job it aborts ("Task 1
    # in stage 4.0 failed 4 times; aborting job"): the exception the cell raises says both,
    # with the task's own error; a task that failed and then succeeded on a retry is no
    # error of the cell's (ipykernel's cell of a failing UDF shows the exception alone).
    ("task", "org.apache.spark.scheduler.TaskSetManager"),
    ("taskrun", "org.apache.spark.executor.Executor"),
    # The context cleaner's background removal of a broadcast, RDD or shuffle no job needs
    # any more ("Error cleaning broadcast 64 ... does not exist", seen after a
    # CrossValidator fit): housekeeping at whatever moment the JVM's collector chose.
    ("cleaner", "org.apache.spark.ContextCleaner"),
    # A write that fails logs its abort ("Aborting job 6fbd...", with the job's whole
    # error; DataSource V2's "Data source write support ... is aborting", also when a
    # streaming query stops) and then throws what the cell raises.
    ("filewrite", "org.apache.spark.sql.execution.datasources.FileFormatWriter"),
    ("v2write", "org.apache.spark.sql.execution.datasources.v2"),
    ("rddwrite", "org.apache.spark.internal.io.SparkHadoopWriter"),
    # A streaming query that fails in the background logs "Query ... terminated with
    # error" at whatever moment, into whichever cell runs; its error is the query's
    # (awaitTermination() raises it, exception() returns it).
    ("streaming", "org.apache.spark.sql.execution.streaming"),
)


def _log4j_properties(log_file: str, level: str = "warn") -> str:
    """Spark's INFO logging costs a short job more than its work (measured: 300 ms instead
    of 170 ms for spark.range(100).count()), so the file gets WARN unless asked."""
    path = log_file.replace("\\", "\\\\")
    return f"""\
# Written by sparkernel: Spark's log goes to a file, only errors to the cell.
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.console.level = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss.SSS}} %p %c{{1}}: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
# A context that fails to start logs why, then throws it: the cell shows the exception
# (a bad master URL, a port in use), so the log's copy stays in the file.
appender.console.filter.init.type = RegexFilter
appender.console.filter.init.regex = Error initializing SparkContext[.].*
appender.console.filter.init.onMatch = DENY
appender.console.filter.init.onMismatch = NEUTRAL
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
""" + "".join(f"""logger.{key}.name = {name}
logger.{key}.additivity = false
logger.{key}.appenderRef.file.ref = file
""" for key, name in _FILE_ONLY)


# Levels a notebook sets to see more of the JVM's log than Spark's own default (WARN).
_VERBOSE = ("INFO", "DEBUG", "TRACE", "ALL")


def console_follows(jvm: Any, level: str) -> None:
    """What reaches a cell after the notebook's setLogLevel(level): a level more verbose
    than WARN (INFO, DEBUG, TRACE, ALL) is the notebook asking to see the JVM's log, and
    the console appender's threshold takes it; WARN (Spark's own default, which notebooks
    set to quiet an application's INFO), ERROR and the rest keep the kernel's quiet
    default, errors only. The console's filter stays, and so do the loggers that go to
    the file only, at every level."""
    wanted = str(level).upper()
    try:
        core = jvm.org.apache.logging.log4j
        ctx = core.LogManager.getContext(False)
        config = ctx.getConfiguration()
        console = config.getAppender("console")
        if console is None:  # a log4j configuration of the user's own
            return
        threshold = core.Level.toLevel(wanted if wanted in _VERBOSE else "ERROR")
        root = config.getRootLogger()
        root.removeAppender("console")
        root.addAppender(console, threshold, None)
        ctx.updateLoggers()
    except Exception:
        pass  # another logging backend: Spark's own setLogLevel has done its part


class Heard:
    """What the JVM's stderr said that the cells' errors explain (hooks.Hooks._java_error):
    when the standalone client last gave up on its masters (time.monotonic(), 0 never)."""

    masters_gave_up = 0.0


def _pump(fd: int) -> None:
    """The JVM's stderr to fd 2, without the JDK's incubator warning. Read from before
    the launch, so nothing the JVM says while starting is lost or blocks it. ERROR lines
    keep their exception's message and causes but not its stack frames (in Spark's log in
    full): a failing local-mode job logged a 40-line stack per task into the cell (a full
    disk under spark.local.dir: over 100 lines before the error itself)."""
    with open(fd, "rb") as stream:
        for line in iter(stream.readline, b""):
            if _GAVE_UP in line:
                Heard.masters_gave_up = time.monotonic()
            if not line.startswith(_JDK_NOISE) and not line.startswith(_JAVA_FRAMES):
                try:
                    os.write(2, line)
                except OSError:
                    pass


class Jvm:
    def __init__(self) -> None:
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
        # What the environment said when the kernel started: a cell that sets another
        # asks for a JVM launched with it, as plain PySpark's next launch would be.
        self.submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS")
        self.log_file = ""
        self._log_seen = 0  # how far log_since_ready has read the log (set when ready)
        self._log_level = "warn"  # of Spark's log file (sparkernel.log.level)
        self._cds = False  # class-data sharing for the driver JVM (cds.py)
        self._executor_cds: dict | None = None  # and for the executors': dir, spark_home
        self._archive: pathlib.Path | None = None  # the driver's, mapped or to be trained
        self._conf_dir: str | None = None  # the empty SPARK_CONF_DIR the archive needs
        self._dumping: pathlib.Path | None = None  # the archive this session's executors dump
        self._cache_dir: str | None = None  # sparkernel.cache.dir, from the kernel

    def configure(self, msg: dict) -> None:
        """The JVM's part of a spark_start: class-data sharing and the log's level."""
        self._cds = bool(msg.get("cds", False))
        ecds = msg.get("executor_cds")
        self._executor_cds = ecds if isinstance(ecds, dict) else None
        cache = msg.get("cache_dir")
        self._cache_dir = cache if isinstance(cache, str) and cache else None
        level = str(msg.get("log_level") or "warn").lower()
        self._log_level = level if level in _LOG_LEVELS else "warn"

    def launch(self, conf: dict[str, str],
               submit_args: str | None = None) -> tuple[Any, dict[str, str]]:
        """Starts the driver JVM for a session with `conf`; returns its py4j gateway and the
        spark.* settings for the session's builder. `submit_args`: a notebook's own
        PYSPARK_SUBMIT_ARGS, for a JVM launched for the session a cell builds."""
        from pyspark import SparkConf
        from pyspark.java_gateway import launch_gateway

        from . import cds  # here, not at the top: the executor's own start stays fast
        cds.use_cache_dir(self._cache_dir)

        try:  # PySpark 4: it logs every SQL error again, as JSON with the JVM's stack, on
            # stderr; the cell already shows the exception. PySpark 3.5 has no such logger.
            from pyspark.logger import PySparkLogger

            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
        except ImportError:
            pass

        self.log_file = conf.get("sparkernel.log.file") or str(self._private / "spark.log")
        props = self._props
        _write_private(props, _log4j_properties(self.log_file, self._log_level))
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
        self._archive, self._conf_dir = archive, conf_dir
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
        # Every pair becomes a system property of the JVM, the defaults of every SparkConf
        # made in it, a cell's own sessions' too, except the master and the app name: those
        # the kernel's session passes to its builder, and a session a cell builds without
        # naming them gets what plain PySpark's JVM would give it (spark-submit's: the
        # deployment's spark-defaults.conf or MASTER, else local[*]; "pyspark-shell"), not
        # the kernel's cluster and name.
        spark_conf = SparkConf(loadDefaults=False)
        for k, v in pairs.items():
            if k not in ("spark.master", "spark.app.name"):
                spark_conf.set(k, v)
        # The JVM is launched here rather than by the builder only to pipe its stderr.
        read_end, write_end = os.pipe()
        # Drained even while the debugger holds the cell at a breakpoint: a full pipe
        # would stall the JVM.
        untraced(threading.Thread(target=_pump, args=(read_end,), name="spark-stderr",
                                  daemon=True)).start()
        # The kernel's own session passes its java options in the conf; the environment's
        # --driver-java-options (for user-built sessions) would override them.
        saved_args = os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
        args = submit_args or "pyspark-shell"
        saved_conf_dir = os.environ.get("SPARK_CONF_DIR")
        if archive is not None and conf_dir:  # class-data sharing: see cds.conf_dir_plan
            os.environ["SPARK_CONF_DIR"] = conf_dir
            if props_file:
                args = f"--properties-file {props_file} {args}"
        if args != "pyspark-shell":
            os.environ["PYSPARK_SUBMIT_ARGS"] = args
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
            if saved_args is not None:
                os.environ["PYSPARK_SUBMIT_ARGS"] = saved_args
            if saved_conf_dir is None:
                os.environ.pop("SPARK_CONF_DIR", None)
            else:
                os.environ["SPARK_CONF_DIR"] = saved_conf_dir
        return gateway, pairs

    def train_archive(self) -> None:
        """Once the session runs: the driver's class-data archive, when it has none yet."""
        archive = self._archive
        if archive is not None and not archive.exists():
            from . import cds

            cds.train(archive, f"-Dlog4j2.configurationFile={self._props.as_uri()}",
                      self._conf_dir)

    def promote_dump(self) -> None:
        """After a cell: a finished dump of the executors' archive moves into place."""
        if self._dumping is not None:  # this session's executors dump the archive
            from . import cds

            try:
                cds.promote(self._dumping)
            except OSError:
                pass

    def stop(self) -> None:
        """Shuts the gateway down and waits for its JVM (which exits when its stdin closes)."""
        from pyspark import SparkContext

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

    # ---- Spark's log file ----

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_file) if self.log_file else 0
        except OSError:
            return 0

    def log_says_bind_failed(self, offset: int) -> bool:
        """Whether the JVM logged a failed bind since offset (its log file)."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                tail = f.read(1 << 20)
        except (OSError, TypeError):
            return False
        return b"BindException" in tail or b"Failed to bind" in tail

    def mark_ready(self) -> None:
        """The session is ready: log_since_ready reads the log from here."""
        self._log_seen = self.log_size()

    def log_since_ready(self, needle: bytes) -> bool:
        """Whether Spark's log got `needle` since the session was ready (read once)."""
        try:
            with open(self.log_file, "rb") as f:
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
