"""The errors the Spark side shows in cells, and a Java error's message in one line."""
from __future__ import annotations

from .cell import first_line

# Where users have always met these (plain Python tracebacks, reprs, pickles): spark.py
# exports them under that name.
_PUBLIC_MODULE = "sparkernel_executor.spark"


class SparkUnavailable(Exception):
    """No session can serve the cell; the message says why and what to do."""

    __module__ = _PUBLIC_MODULE

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of frames
        return [f"{type(self).__name__}: {self}"]


class SparkSQLError(SparkUnavailable):
    """A %%sql statement failed; the message is Spark's, without the JVM's stack."""

    __module__ = _PUBLIC_MODULE


class SparkDiskFull(SparkUnavailable):
    """A job ran out of disk space for its shuffle or spill files: one paragraph that
    says where and what to do, instead of the JVM's stacks (hooks.Hooks._java_error)."""

    __module__ = _PUBLIC_MODULE


class SparkMasterUnreachable(SparkUnavailable):
    """A session a cell built could not register with its master (Spark's standalone
    client gave up: "All masters are unresponsive"): one paragraph that names the master
    and says what to do, instead of whichever exception the stopping context raised."""

    __module__ = _PUBLIC_MODULE


def java_message(exc: BaseException) -> str:
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
