"""A notebook's py4j log is the notebook's. py4j logs every JVM call at DEBUG (loggers
`py4j.clientserver` and `py4j.java_gateway`); a notebook that turns DEBUG on sees its own
calls there, as on ipykernel, and not the kernel's: a cell's job tag and line titles, its
job list, the session check, and whatever the kernel's threads call (the warm session, the
control thread's shares, an interrupt's cancel). Those run inside `kernel_calls()` or on a
thread marked by `own_thread`, and a filter on both loggers drops their records. The filter
only runs for records a logger would emit, so it costs nothing while DEBUG is off.

One record comes later and from elsewhere: py4j's pinned-thread mode gives each thread a
connection of its own, and closes it when the thread has ended and the garbage collector
takes the connection, logging "Closing down clientserver connection" at INFO on whatever
thread runs the collection, often a cell's (a notebook with `logging.basicConfig(level=
logging.INFO)` would see it in a cell, where ipykernel, which has no threads of its own
calling the JVM, shows nothing). A kernel thread marks its connection when it ends, and the
filter drops the close of a marked connection. The same record comes from the child of a
fork (`!cmd`, pexpect, os.fork): the child drops the other threads' states and with them
their connections, each close logged before the child execs. Under ipykernel that write
lands in the buffer of ipykernel's stream, which nobody flushes in the child; here
sys.stderr writes to the cell's pipe at once, so the filter drops py4j's closing records
in any process but the executor's own."""
from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

LOGGERS = ("py4j.clientserver", "py4j.java_gateway")
_local = threading.local()


_CLOSING = "Closing down clientserver connection"
_PID = os.getpid()  # the executor's; a forked child has another


def _closing_ours() -> bool:
    """Whether the connection whose close() is logging was one of the kernel's threads'."""
    frame = sys._getframe(2)
    for _ in range(12):  # filter <- Filterer.filter <- Logger.handle <- ... <- close
        if frame is None:
            return False
        if frame.f_code.co_name == "close" and "self" in frame.f_locals:
            return getattr(frame.f_locals["self"], "sparkernel_own", False)
        frame = frame.f_back
    return False


class _NotTheKernels(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "depth", 0):
            return False
        if getattr(threading.current_thread(), "sparkernel_own", False):
            return False
        return record.msg != _CLOSING or (os.getpid() == _PID and not _closing_ours())


def _mark_connection() -> None:
    """On a kernel thread that ends: its py4j connection (pinned-thread mode) is the
    kernel's, so its later close is not logged into a cell."""
    context = sys.modules.get("pyspark.context")
    gateway = getattr(getattr(context, "SparkContext", None), "_gateway", None)
    get = getattr(getattr(gateway, "_gateway_client", None), "get_thread_connection", None)
    try:
        connection = get() if get is not None else None
        if connection is not None:
            connection.sparkernel_own = True
    except Exception:  # noqa: BLE001 - a best effort at a thread's end
        pass


@contextmanager
def kernel_calls() -> Iterator[None]:
    """JVM calls the kernel makes on a cell's thread: kept out of the notebook's log."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def own_thread(thread: threading.Thread) -> threading.Thread:
    """Marks one of the kernel's threads: its JVM calls are kept out of the notebook's log."""
    thread.sparkernel_own = True  # type: ignore[attr-defined]
    run = thread.run

    def run_then_mark() -> None:
        try:
            run()
        finally:
            _mark_connection()

    thread.run = run_then_mark  # type: ignore[method-assign]
    return thread


def install() -> None:
    only_the_notebooks = _NotTheKernels()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(only_the_notebooks)
