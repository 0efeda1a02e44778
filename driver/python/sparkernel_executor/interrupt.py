"""Interrupts of a cell that runs Spark jobs.

The JVM never sees ^C. The executor has its own session and the kernel signals its pid
alone; pyspark starts the JVM with SIGINT ignored (launch_gateway's preexec_fn;
/proc/<jvm>/status SigIgn shows it); and the context is built off the main thread, so
pyspark installs no SIGINT handler of its own (it does only on the main thread). The
executor's handler calls `Interrupt.interrupt`: the jobs of the cell's tag are cancelled, and
the KeyboardInterrupt is raised as the JVM call the cell waits in returns (its docstring says
why)."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Callable

from .cell import Cell
from .quiet import own_thread


def _in_py4j_call(frame: Any) -> bool:
    while frame is not None:
        if (frame.f_code.co_name == "send_command"
                and str(frame.f_globals.get("__name__", "")).startswith("py4j.")):
            return True
        frame = frame.f_back
    return False


class DropPy4jInterrupt(logging.Filter):
    """When a KeyboardInterrupt lands inside a JVM call, py4j logs it with a traceback
    (on the root logger) and often a failed socket shutdown: the cell shows the interrupt."""

    MESSAGES = ("KeyboardInterrupt while sending command.",
                "Exception occurred while shutting down connection")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.MESSAGES


class Interrupt:
    def __init__(self, cell: Cell, context: Callable[[], Any]) -> None:
        self._cell = cell
        self._context = context  # the SparkContext the cell's jobs run in, or None
        self.deferred: object | None = None  # an interrupt waiting for a JVM call
        self._starting = 0  # a cell's SparkContext is starting (nested: the builder's)
        self._start_interrupted = False

    def interrupt(self, frame: Any) -> bool:
        """Called by the executor's SIGINT handler (main thread) with the interrupted
        frame; True when the KeyboardInterrupt is to be raised later rather than now.
        Cancels the jobs of the cell's tag from a helper thread (the main thread's py4j
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
        if self.deferred is not None:
            self.deferred = None
            return False
        sc, tag = self._context(), self._cell.tag
        if sc is None or tag is None:
            return False
        helper = own_thread(threading.Thread(target=sc.cancelJobsWithTag, args=(tag,),
                                             name="spark-cancel", daemon=True))
        helper.start()
        helper.join(5)
        if not _in_py4j_call(frame):
            return False
        self._hook_return_value()
        token = self.deferred = object()
        timer = threading.Timer(3.0, self._escalate, args=(token,))
        timer.daemon = True
        timer.start()
        return True

    def guard_start(self, start: Callable[[], None], stop: Callable[[], None]) -> None:
        """Runs a cell's SparkContext start so that an interrupt waits for the start to end
        (see interrupt), then stops the context and is raised: raised inside the start, it
        would leave the JVM's context running with no Python side, and every later
        SparkContext of the process refused.

        A context started on the main thread installs PySpark's own SIGINT handler
        (cancelAllJobs, then KeyboardInterrupt) over the executor's. Called from inside the
        JVM call a cell waits in, its cancelAllJobs is a second command on the main
        thread's busy py4j connection: it fails (a reentrant read), the cell shows a
        Py4JError with py4j's tracebacks, and the job runs on, holding the executors for
        the next cell. The executor's handler is put back at once; ipykernel too replaces
        PySpark's with its own, at the end of the cell that built the context."""
        main = threading.current_thread() is threading.main_thread()
        handler = signal.getsignal(signal.SIGINT) if main else None
        self._starting += 1
        try:
            start()
        finally:
            self._starting -= 1
            if main and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
                signal.signal(signal.SIGINT, handler)
        if self._start_interrupted and not self._starting:
            self._start_interrupted = False
            try:
                stop()
            except Exception:
                pass
            raise KeyboardInterrupt

    def _escalate(self, token: object) -> None:
        if self.deferred is token:
            os.kill(os.getpid(), signal.SIGINT)

    def _hook_return_value(self) -> None:
        """py4j's JavaMember calls java_gateway.get_return_value with every answer; pyspark
        wraps it too (and re-wraps it for every new SparkSession), so this runs per use."""
        import py4j.java_gateway as gateway

        current = gateway.get_return_value
        if getattr(current, "sparkernel", False):
            return

        def get_return_value(*args: Any, **kwargs: Any) -> Any:
            if (self.deferred is not None
                    and threading.current_thread() is threading.main_thread()):
                self.deferred = None
                raise KeyboardInterrupt
            return current(*args, **kwargs)

        get_return_value.sparkernel = True  # type: ignore[attr-defined]
        gateway.get_return_value = get_return_value
