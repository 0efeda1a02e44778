"""A notebook's py4j log is the notebook's. py4j logs every JVM call at DEBUG (loggers
`py4j.clientserver` and `py4j.java_gateway`); a notebook that turns DEBUG on sees its own
calls there, as on ipykernel, and not the kernel's: a cell's job tag and line titles, its
job list, the session check, and whatever the kernel's threads call (the warm session, the
control thread's shares, an interrupt's cancel). Those run inside `kernel_calls()` or on a
thread marked by `own_thread`, and a filter on both loggers drops their records. The filter
only runs for records a logger would emit, so it costs nothing while DEBUG is off."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

LOGGERS = ("py4j.clientserver", "py4j.java_gateway")
_local = threading.local()


class _NotTheKernels(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "depth", 0):
            return False
        return not getattr(threading.current_thread(), "sparkernel_own", False)


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
    return thread


def install() -> None:
    only_the_notebooks = _NotTheKernels()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(only_the_notebooks)
