"""What the executor wraps in PySpark and py4j: the entry points a notebook builds
sessions with (handed to user_sessions.py), job titles from the cell's line, and Java
errors a cell does not catch."""
from __future__ import annotations

import functools
import select
import sys
import threading
import time
from typing import Any

from .cell import OUR_TAG, QUIET_TAG, Cell
from .errors import SparkDiskFull, SparkMasterUnreachable, java_message
from .interrupt import Interrupt
from .jvm import Heard, Jvm, console_follows
from .quiet import kernel_calls
from .session import Session, master_answers
from .user_sessions import UserSessions, conf_pairs

_DISK_FULL = "No space left on device"
_ACCUMULATOR_POLL_S = 0.05


class _ShortSelect:
    """The `select` module as PySpark's accumulator server sees it: its waits end within
    _ACCUMULATOR_POLL_S (data that arrives still ends them at once)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(select, name)

    @staticmethod
    def select(r: Any, w: Any, x: Any, timeout: float | None = None) -> Any:
        wait = _ACCUMULATOR_POLL_S if timeout is None else min(timeout, _ACCUMULATOR_POLL_S)
        return select.select(r, w, x, wait)


def prompt_accumulator_stop() -> None:
    """Every SparkContext.stop() waits for PySpark's accumulator server to notice it: its
    accept loop looks every 0.5 s (socketserver's poll), and the connection the JVM keeps
    open once a job has sent updates is read with a 1 s select, so a stop waited up to
    1.5 s, 0.5-0.9 s measured, on ipykernel as here: in a cell's spark.stop() and at the
    kernel's shutdown. Both loops wake every 50 ms here instead; updates are read as they
    arrive, as before, and nothing else changes. A PySpark built otherwise is left as
    it is."""
    try:
        from pyspark import accumulators
    except ImportError:
        return
    server = getattr(accumulators, "AccumulatorServer", None)
    if server is None or getattr(accumulators, "select", None) is not select or \
            getattr(server, "serve_forever", None) is None:
        return
    forever = server.serve_forever

    def serve_forever(self: Any, poll_interval: float = _ACCUMULATOR_POLL_S) -> None:
        forever(self, min(poll_interval, _ACCUMULATOR_POLL_S))

    server.serve_forever = serve_forever
    accumulators.select = _ShortSelect()  # type: ignore[assignment]


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


class Hooks:
    def __init__(self, shell: Any, cell: Cell, session: Session, jvm: Jvm,
                 interrupt: Interrupt, built: UserSessions) -> None:
        self._shell = shell
        self._cell = cell
        self._session = session
        self._jvm = jvm
        self._interrupt = interrupt
        self._built = built
        self._java_errors_hooked = False
        self._titling = False  # a title is being set (its own JVM call)
        # The context a cell's code last started, and when (time.monotonic()): a Java
        # error after its master gave up on it is explained (_java_error).
        self._user_context: tuple[float, Any] = (0.0, None)

    def install_sessions(self) -> None:
        """Wraps the entry points a notebook builds sessions with (SparkSession.builder's
        getOrCreate, SparkContext(...), SparkContext.getOrCreate, SparkContext.stop), so
        the warm session gives way to a user's request (yield_warm), a session the user
        builds becomes the kernel's to follow (adopt), and a stop is remembered with its
        cell. The kernel's own thread passes straight through. Once per process. The
        caller holds session.importing."""
        self._hook_java_errors()
        if self._session.follows_built:
            return
        prompt_accumulator_stop()
        import inspect

        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        cell, built, interrupt = self._cell, self._built, self._interrupt
        init, get_ctx = SparkContext.__init__, SparkContext.getOrCreate.__func__
        stop, get_session = SparkContext.stop, SparkSession.Builder.getOrCreate
        signature = inspect.signature(init)

        def context_init(sc: Any, *args: Any, **kwargs: Any) -> None:
            if not cell.user_call():
                return init(sc, *args, **kwargs)
            try:
                bound = signature.bind(sc, *args, **kwargs).arguments
            except TypeError:
                bound = {}
            if bound.get("jsc") is None and bound.get("gateway") is None:
                launch = conf_pairs(bound.get("conf"))  # what plain PySpark launches with
                request = dict(launch)
                if bound.get("master"):
                    request["spark.master"] = str(bound["master"])
                if bound.get("appName"):
                    request["spark.app.name"] = str(bound["appName"])
                built.yield_warm(request, launch, bound.get("conf"))
            self._user_context = (time.monotonic(), sc)
            interrupt.guard_start(lambda: init(sc, *args, **kwargs), lambda: stop(sc))
            built.adopt(sc, None)

        def context_get(cls: Any, conf: Any = None) -> Any:
            if cell.user_call():  # without conf: the warm context, once it is there
                built.yield_warm(conf_pairs(conf), conf=conf)
            sc = get_ctx(cls, conf)
            if cell.user_call():
                built.adopt(sc, None)
            return sc

        def context_stop(sc: Any) -> None:
            if cell.user_call():
                built.note_stop(sc)
            return stop(sc)

        def session_get(builder: Any) -> Any:
            if not cell.user_call():
                return get_session(builder)
            built.yield_warm(dict(getattr(builder, "_options", {}) or {}))
            session = get_session(builder)
            built.adopt(session.sparkContext, session)
            return session

        self._install_titles()
        self._install_log_level()
        SparkContext.__init__ = context_init  # type: ignore[method-assign]
        SparkContext.getOrCreate = classmethod(context_get)  # type: ignore[assignment]
        SparkContext.stop = context_stop  # type: ignore[method-assign]
        SparkSession.Builder.getOrCreate = session_get  # type: ignore[method-assign]
        self._session.follows_built = True

    def _install_log_level(self) -> None:
        """`sc.setLogLevel(level)` shows what the notebook asked for: Spark sets the root
        logger's level, and the console (the cell) follows it, where the kernel's quiet
        default shows errors only. ipykernel + PySpark's cell shows the JVM's lines at the
        level set (its JVM writes to the kernel's captured stderr)."""
        from pyspark import SparkContext

        set_level = SparkContext.setLogLevel

        def set_log_level(sc: Any, logLevel: str) -> None:  # PySpark's parameter name
            set_level(sc, logLevel)
            console_follows(sc._jvm, logLevel)

        functools.update_wrapper(set_log_level, set_level)
        SparkContext.setLogLevel = set_log_level  # type: ignore[method-assign]

    def _follow_capture(self) -> None:
        """A job a cell starts while its output is captured (%%capture, IPython's
        capture_output, which swaps the shell's display publisher) carries QUIET_TAG as
        well as the cell's tag: the kernel displays no progress for it, as plain
        PySpark's cell shows nothing, and an interrupt still cancels it. The tag goes on
        and off at the cell's first JVM call after the capture starts or ends."""
        # Imported here: at the executor's start, importing IPython's package would load
        # its terminal front end, which main.py defers. Loaded by now, so a dict lookup.
        from IPython.core.displaypub import CapturingDisplayPublisher

        cell = self._cell
        quiet = isinstance(getattr(self._shell, "display_pub", None), CapturingDisplayPublisher)
        if quiet == cell.quiet or cell.tag is None:
            return  # every JVM call of a cell passes here: nothing more unless it changed
        from pyspark import SparkContext

        jsc = getattr(SparkContext._active_spark_context, "_jsc", None)
        if jsc is None:
            return
        self._titling = True
        try:
            with kernel_calls():
                (jsc.addJobTag if quiet else jsc.removeJobTag)(QUIET_TAG)
            cell.quiet = quiet
        except Exception:
            pass
        finally:
            self._titling = False

    def _install_titles(self) -> None:
        """Job titles that speak of the user's code: before a JVM call from a cell's line
        (main thread), the active context's job description becomes that line, e.g.
        `count at cell [3] line 14: raw_rows = raw.count()`, set once per line and
        method (one more JVM call then). Without it a job is named after a JVM frame
        (`$anonfun$withThreadLocalCaptured$2 at CompletableFuture.java:1768`) or our own
        file, and every job of a cell carried the cell's first line. A description the
        notebook sets itself (setJobDescription, setJobGroup, the local property) is
        left alone until it clears it, as on PySpark."""
        import py4j.java_gateway as gateway
        from pyspark import SparkContext

        owner, cell = self, self._cell
        call = gateway.JavaMember.__call__
        set_desc, set_group = SparkContext.setJobDescription, SparkContext.setJobGroup
        set_prop, get_prop = SparkContext.setLocalProperty, SparkContext.getLocalProperty
        set_interrupt = SparkContext.setInterruptOnCancel
        get_tags, clear_tags = SparkContext.getJobTags, SparkContext.clearJobTags

        def noted(sc: Any, value: Any) -> None:
            if cell.user_call() and not cell.joining and not cell.fixed_title:  # %%sql's
                jsc = getattr(sc, "_jsc", None)
                cell.described = (id(jsc), str(value)) \
                    if value is not None and jsc is not None else None
                cell.title = None

        def interrupt_noted(sc: Any) -> None:
            """The notebook set interruptOnCancel itself: its value is the one kept."""
            if not cell.joining and cell.interrupt_set == id(getattr(sc, "_jsc", None)):
                cell.interrupt_set = None

        def set_job_description(sc: Any, value: Any) -> None:
            set_desc(sc, value)
            noted(sc, value)

        def set_job_group(sc: Any, groupId: Any, description: Any,  # PySpark's names:
                          interruptOnCancel: bool = False) -> None:  # keyword calls
            set_group(sc, groupId, description, interruptOnCancel)
            noted(sc, description)
            interrupt_noted(sc)

        def set_interrupt_on_cancel(sc: Any, interruptOnCancel: bool) -> None:
            set_interrupt(sc, interruptOnCancel)
            interrupt_noted(sc)

        def set_local_property(sc: Any, key: Any, value: Any) -> None:
            set_prop(sc, key, value)
            if key == "spark.job.description":
                noted(sc, value)
            elif key == "spark.job.interruptOnCancel":
                interrupt_noted(sc)

        def get_local_property(sc: Any, key: Any) -> Any:
            """What the notebook set, as on PySpark: the kernel's own tag, titles and
            interruptOnCancel are not the notebook's."""
            value = get_prop(sc, key)
            if value is not None and cell.user_call():
                jsc = getattr(sc, "_jsc", None)
                if key == "spark.job.description" and not cell.own_description(jsc):
                    return None
                if key == "spark.job.interruptOnCancel" and cell.interrupt_set == id(jsc):
                    return None
                if key == "spark.job.tags":
                    return ",".join(t for t in value.split(",") if not OUR_TAG.match(t)) \
                        or None
            return value

        def get_job_tags(sc: Any) -> Any:
            tags = get_tags(sc)
            return {t for t in tags if not OUR_TAG.match(t)} if cell.user_call() else tags

        def clear_job_tags(sc: Any) -> None:
            """The notebook's tags go; the cell's stays (its progress and interrupt)."""
            clear_tags(sc)
            cell.quiet = False  # gone with the notebook's: added again while capturing
            if cell.user_call() and cell.tag is not None:
                try:
                    with kernel_calls():
                        sc._jsc.addJobTag(cell.tag)
                except Exception:
                    pass

        def member_call(member: Any, *args: Any) -> Any:
            if not cell.running or threading.current_thread() is not threading.main_thread():
                return call(member, *args)
            cell.jvm_used = True  # a job may start: the cell's jobs are worth listing
            if not owner._titling:
                owner._follow_capture()
            if owner._titling or cell.fixed_title:
                return call(member, *args)
            sc = SparkContext._active_spark_context
            jsc = getattr(sc, "_jsc", None)
            if jsc is not None and not cell.own_description(jsc):
                title = _cell_site(sys._getframe(1))
                if title is not None and (id(jsc), title) != cell.title:
                    owner._titling = True
                    try:
                        with kernel_calls():
                            jsc.setLocalProperty("spark.job.description", title)
                        cell.title = (id(jsc), title)
                    except Exception:
                        pass
                    finally:
                        owner._titling = False
            return call(member, *args)

        gateway.JavaMember.__call__ = member_call  # type: ignore[method-assign]
        SparkContext.setJobDescription = set_job_description  # type: ignore[method-assign]
        SparkContext.setJobGroup = set_job_group  # type: ignore[method-assign]
        SparkContext.setLocalProperty = set_local_property  # type: ignore[method-assign]
        SparkContext.getLocalProperty = get_local_property  # type: ignore[method-assign]
        SparkContext.setInterruptOnCancel = set_interrupt_on_cancel  # type: ignore
        SparkContext.getJobTags = get_job_tags  # type: ignore[method-assign]
        SparkContext.clearJobTags = clear_job_tags  # type: ignore[method-assign]

    def install_java_errors(self) -> None:
        """Java errors a cell does not catch go through _java_error (IPython's custom
        exception handler: run_code calls it instead of showing the traceback). Once
        pyspark is loaded, and never while the session's thread imports it: PySpark 3.5's
        modules import each other in a cycle, and two threads importing them in another
        order get a partly initialised module (ImportError)."""
        importing = self._session.importing
        if self._java_errors_hooked or "py4j.protocol" not in sys.modules \
                or not importing.acquire(blocking=False):
            return
        try:
            self._hook_java_errors()
        finally:
            importing.release()

    def _hook_java_errors(self) -> None:
        """install_java_errors with session.importing held by the caller: also from
        install_sessions, on the session's thread, so that a cell that runs while the warm
        session's JVM starts (the lock held all along) gets its Java errors explained."""
        if self._java_errors_hooked:
            return
        self._java_errors_hooked = True
        try:
            from py4j.protocol import Py4JJavaError
            from pyspark.errors.exceptions.captured import CapturedException
        except ImportError:  # a PySpark without pyspark.errors: its errors show as they are
            return
        self._shell.set_custom_exc((Py4JJavaError, CapturedException), self._java_error)

    def _java_error(self, shell: Any, etype: type, value: BaseException, tb: Any,
                    tb_offset: int | None = None) -> None:
        """A full disk becomes SparkDiskFull, a master that never answered a session the
        cell's code started SparkMasterUnreachable; any other Java error shows as before."""
        try:
            text = str(value)
        except Exception:  # Py4JJavaError asks the JVM, which may be gone
            text = ""
        master, sc = self._master_gave_up()
        if master:
            err = self._unreachable(master, value)
            # The JVM stopped the context; PySpark's Python side still holds it as the
            # active one, so the next builder would get it back and fail again (plain
            # PySpark's notebook then needs a restart). Stopped here too: the cell run
            # again builds a new session.
            self._user_context = (0.0, None)
            try:
                sc.stop()
            except Exception:
                pass
            shell.showtraceback((SparkMasterUnreachable, err, None))
            return
        if _DISK_FULL not in text:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return
        conf = self._session.conf or {}
        local_dir = conf.get("spark.local.dir") or "/tmp"
        master = conf.get("spark.master") or "local[*]"
        where = (f"spark.local.dir ({local_dir}) on this machine"
                 if master.startswith("local") else
                 f"each worker's local directories (its SPARK_LOCAL_DIRS, which executors "
                 f"use instead of spark.local.dir), or this driver's spark.local.dir "
                 f"({local_dir})")
        log_file = self._jvm.log_file
        log = f" Full stacks in Spark's log: {log_file}." if log_file else ""
        err = SparkDiskFull(
            f"The disk is full: Spark could not write a job's shuffle or spill files "
            f"({_DISK_FULL}). They go under {where}. Free space there, or give Spark a "
            f"bigger disk (%spark config spark.local.dir=/path/to/big/disk, then %spark "
            f"restart), or make the job write less (select fewer columns and filter before "
            f"a shuffle). The session still works. Spark said: "
            f"{java_message(value).rstrip('.')}.{log}")
        shell.showtraceback((SparkDiskFull, err, None))

    def _master_gave_up(self) -> tuple[str, Any]:
        """The spark:// master and the context a cell's code last started, when Spark's
        standalone client gave up registering it since (its context is then stopped, and
        the cell fails with whichever exception the stopping context raised); else ""."""
        started, sc = self._user_context
        if not started or Heard.masters_gave_up < started:
            return "", None
        try:
            master = str(sc._conf.get("spark.master") or "")
        except Exception:
            return "", None
        return (master, sc) if master.startswith("spark://") else ("", None)

    def _unreachable(self, master: str, value: BaseException) -> SparkMasterUnreachable:
        now = ("Something accepts connections there now, but it did not register the "
               "application: a master that started late (run the cell again), or another "
               "service, such as the master's web UI (port 8080 by default)."
               if master_answers(master, 1.0) else "It does not answer now either.")
        log_file = self._jvm.log_file
        log = f" Spark's log: {log_file}." if log_file else ""
        return SparkMasterUnreachable(
            f"The Spark master at {master} did not answer: Spark gave up registering the "
            f"session's application after its retries (about a minute) and stopped the "
            f"session. {now} Check the master URL given to the builder or SparkContext (the "
            f"spark://host:port the master's web UI shows at its top; port 7077 unless the "
            f"master was started with another) and that the master is running and "
            f"reachable from here (for example nc -vz <host> <port>), then run the cell "
            f"again: it builds a new session. Spark said: "
            f"{java_message(value).rstrip('.')}.{log}")
