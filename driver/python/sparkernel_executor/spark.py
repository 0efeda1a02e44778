"""The Spark side of the executor as its loop sees it: the kernel's commands and control
commands by name, a cell's begin and end, and the SIGINT and exit hooks. The parts:
session.py (the session's life), jvm.py (the driver JVM, its logs), interrupt.py,
sql.py (%%sql), share.py (executors given back), hooks.py (what is wrapped in PySpark) and
user_sessions.py (sessions a notebook builds)."""
from __future__ import annotations

import atexit
import logging
import time
from typing import Any, Callable

from .cell import Cell
from .errors import SparkDiskFull, SparkMasterUnreachable, SparkSQLError, SparkUnavailable
from .frames import Channel
from .hooks import Hooks
from .interrupt import DropPy4jInterrupt, Interrupt
from .jvm import Jvm, PerContext
from .quiet import kernel_calls
from .session import Pending, Session
from .share import Share
from .sql import Sql
from .user_sessions import (UserSessions, binds, builds_session, first_launch_of, may_import,
                            uses_predefined)

__all__ = ["Spark", "SparkDiskFull", "SparkMasterUnreachable", "SparkSQLError",
           "SparkUnavailable", "cancel_cell_jobs", "stop_spark"]

_instance: "Spark | None" = None


def cancel_cell_jobs(frame: Any = None) -> bool:
    """Called by the executor's SIGINT handler (main thread) with the interrupted frame.
    Cancels the cell's Spark jobs; True when the KeyboardInterrupt is to be raised as the
    JVM call the cell waits in returns, rather than now (see Interrupt.interrupt)."""
    return _instance is not None and _instance._interrupt.interrupt(frame)


def stop_spark() -> None:
    """Stops the kernel's session and its JVM (the executor is about to exit)."""
    if _instance is not None:
        _instance._session.shutdown()


class Spark:
    def __init__(self, channel: Channel, shell: Any) -> None:
        global _instance
        _instance = self
        self._shell = shell
        self._cell = Cell()
        # The job list's two JVM objects: the context's status tracker (Scala's: the Java
        # one cannot list a tag's jobs), java.util.Arrays.
        self._tracker = PerContext(lambda sc: (sc._jsc.sc().statusTracker(),
                                               sc._jvm.java.util.Arrays))
        self._jvm = Jvm()
        self._session = Session(channel, shell, self._cell, self._jvm,
                                on_import=lambda: self._hooks.install_sessions())
        self._interrupt = Interrupt(self._cell, self._session.active_context)
        self._hooks = Hooks(shell, self._cell, self._session, self._jvm, self._interrupt,
                            UserSessions(self._session, self._cell, self._jvm))
        share = Share(self._session, self._cell)
        sql = Sql(self._session.wait, self._cell)
        # The kernel's commands (main thread, between cells): answered by spark_state
        # events, not by a reply.
        self.commands: dict[str, Callable[[dict], None]] = {
            "spark_start": self._session.on_start, "spark_stop": self._session.on_stop,
            "spark_refused": self._session.on_refused, "spark_give_back": share.give_back,
        }
        # The control pipe's (its thread, at any time, a cell running or not).
        self.control: dict[str, Callable[[dict], None]] = {
            "spark_shrink": share.shrink, "spark_grow": share.grow,
        }
        shell.events.register("pre_run_cell",
                              lambda *a: setattr(self._cell, "running", True))
        shell.events.register("post_run_cell", lambda *a: self._after_cell())
        shell.register_magic_function(sql.sql_magic, magic_kind="line_cell",
                                      magic_name="sql")
        for logger in ("", "py4j.clientserver"):
            logging.getLogger(logger).addFilter(DropPy4jInterrupt())
        atexit.register(self._session.shutdown)

    def before_cell(self, msg: dict) -> bool:
        """Waits for the session if the cell uses it and tags the cell's jobs. False
        when the cell must not run: its one error has been shown."""
        code = str(msg.get("code", ""))
        session, cell = self._session, self._cell
        self._interrupt.deferred = None
        # In the cell from here on: IPython's pre_run_cell comes later (and never for a
        # silent cell), and the job tag below is set only in a cell.
        cell.running = True
        cell.count = int(msg.get("execution_count", 0) or 0)
        cell.code = code
        cell.binds = binds(self._shell, code)
        cell.started = time.monotonic()
        if session.state == "starting" and not session.hooked.is_set() and (
                may_import(code) or builds_session(code)):
            # At the kernel's start its session's thread imports pyspark and then hooks it:
            # a cell importing pyspark meanwhile, or a module that does, would race that
            # import (pyspark's modules import each other in a cycle: a partly initialised
            # module, ImportError, seen with PySpark 4) and could build a session before
            # the hooks are in. Half a second at most, once. A session the cell builds
            # then waits in the hooked entry point, for the JVM only when it names another
            # app or master (yield_warm), not here for the whole warm session.
            session.hooked.wait(30)
        self._hooks.install_java_errors()
        session.check_alive()
        # The names the cell reads that are still the kernel's (not rebound by the user).
        ns = self._shell.user_ns
        predefined = {n for n in uses_predefined(self._shell, code) if session.is_published(n)}
        # A cell that may build its own session: the notice of ours is not for it.
        builds = not predefined and builds_session(code)
        if builds and not session.claimed:
            session.notice = ""  # about the kernel's request; plain PySpark prints nothing
        # A session the user stopped gates nothing: the cell runs, as on PySpark, and its
        # first use of the stopped `spark` raises the one clear error (Pending), while a
        # second spark.stop() does nothing, as PySpark's.
        pending = any(isinstance(ns.get(n), Pending) for n in predefined)
        if (session.state not in ("ready", "stopped") and pending) or \
                (session.notice and predefined):
            try:
                session.wait(quiet=not predefined)
            except SparkUnavailable as exc:
                if predefined:  # else the cell's own session may well start
                    self._shell.showtraceback((type(exc), exc, None))  # no frames of ours
                    return False
            except KeyboardInterrupt as exc:
                self._shell.showtraceback((type(exc), exc, None))
                return False
            self._hooks.install_java_errors()
        if builds and not session.follows_built:
            try:
                with session.importing:
                    self._hooks.install_sessions()
            except Exception:
                pass  # pyspark is not importable: the cell says so itself
        if predefined and session.current is not None:
            if not session.claimed:  # the first session used: the JVM's, as if launched for it
                first_launch_of(session.current)
            session.claimed = True
        cell.tag = None
        cell.join_tag(session.active_context())
        return True

    def end_cell(self) -> None:
        """After the cell, whatever became of it (main thread): post_run_cell does not fire
        for a silent cell nor for one before_cell stopped."""
        if self._cell.running:
            self._after_cell()

    def _after_cell(self) -> None:
        self._report_jobs()
        self._session.release(self._cell.binds)
        self._cell.binds = set()
        self._cell.running = False
        self._cell.waiting = False
        self._interrupt.deferred = None
        self._jvm.promote_dump()

    def _report_jobs(self) -> None:
        """Tells the kernel the cell's Spark jobs (a cell_jobs event, ahead of the reply):
        its last look at them then asks the driver only for those it has not seen end,
        rather than for every job of the application. Only after a cell long enough for a
        job to have been displayed (0.2 s) that called the JVM after its job tag was set
        (a job needs a call): a quick cell or one of plain Python costs no JVM call. Jobs
        of the tag started only by other threads are not listed: the kernel then asks
        for every job, as without this report."""
        cell = self._cell
        if not cell.running or not cell.tag or not cell.jvm_used \
                or time.monotonic() - cell.started < 0.2:
            return
        sc = self._session.active_context()
        if sc is None:
            return
        try:
            # Two JVM calls whatever the number of jobs (iterating the int[] py4j hands
            # back would be one call per job), the tracker and the class kept per context.
            with kernel_calls():
                tracker, arrays = self._tracker.get(sc)
                text = arrays.toString(tracker.getJobIdsForTag(cell.tag))
            ids = sorted(int(i) for i in text.strip("[]").split(",") if i.strip())
        except Exception:
            self._tracker.forget()
            return  # the context is stopping: the kernel asks for every job instead
        self._session.send({"type": "cell_jobs", "tag": cell.tag, "ids": ids})
