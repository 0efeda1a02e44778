"""The running cell as the Spark side sees it: whether one runs, its number and code, its
Spark job tag (its progress, and what an interrupt cancels) and its jobs' last title."""
from __future__ import annotations

import re
import threading
from typing import Any

from .quiet import kernel_calls

# The kernel's job tags: one per cell, `sparkernel-<execution count>`, and the one a job
# started while the cell's output is captured also carries (no progress display for it:
# driver/progress.h, PROGRESS_QUIET_TAG).
QUIET_TAG = "sparkernel-quiet"
OUR_TAG = re.compile(r"sparkernel-(\d+|quiet)\Z")


def first_line(text: str, limit: int = 80) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


class Cell:
    def __init__(self) -> None:
        self.running = False
        self.count = 0
        self.code = ""
        self.binds: set[str] = set()  # which of `spark` and `sc` its code binds
        self.started = 0.0  # time.monotonic() at its start
        self.waiting = False  # waits for the session being started
        self.tag: str | None = None  # the job tag of the cell's jobs in its context
        self.title: tuple[int, str] | None = None  # the context's last title
        self.fixed_title = False  # %%sql titles its jobs itself
        self.jvm_used = False  # a JVM call from this thread since the job tag was set
        self.quiet = False  # this thread's jobs carry QUIET_TAG (output being captured)
        # The job description the notebook set (setJobDescription, setJobGroup's, or the
        # local property), with its context's id: it stays the jobs' description, cell
        # after cell, as on PySpark; the kernel's titles give way to it.
        self.described: tuple[int, str] | None = None
        self.joining = False  # the kernel's own tagging is running
        # The context (its id) where the kernel set spark.job.interruptOnCancel, the
        # notebook having set none: shown to the notebook as unset, as on PySpark.
        self.interrupt_set: int | None = None

    def user_call(self) -> bool:
        """Whether the caller is the cell's own code (main thread, in a cell)."""
        return self.running and threading.current_thread() is threading.main_thread()

    def join_tag(self, sc: Any) -> None:
        """Tags the running cell's jobs of context `sc` `sparkernel-<n>` (the tag of the
        cell before is removed): the kernel follows the cell's progress and an interrupt
        cancels its jobs by that tag. A Spark job tag, not a job group: a group the notebook
        sets stays its own from cell to cell, as on PySpark. Its jobs are interrupted on
        cancel, unless the notebook said otherwise; their description is the cell's first
        line until a line of the cell titles them, unless the notebook set its own."""
        jsc = getattr(sc, "_jsc", None)
        if jsc is None or not self.running or self.count <= 0:
            return
        tag = f"sparkernel-{self.count}"
        self.joining = True
        try:
            with kernel_calls():
                self._tag(jsc, tag)
            self.tag, self.title, self.jvm_used, self.quiet = tag, None, False, False
        except Exception:
            self.tag = None
        finally:
            self.joining = False

    def _tag(self, jsc: Any, tag: str) -> None:
        # The tags of this thread's jobs, comma-separated: one call for all of them.
        for old in (jsc.getLocalProperty("spark.job.tags") or "").split(","):
            if OUR_TAG.match(old) and old != tag:
                jsc.removeJobTag(old)  # an earlier cell's
        jsc.addJobTag(tag)
        key = "spark.job.interruptOnCancel"
        if self.interrupt_set != id(jsc) and jsc.getLocalProperty(key) is None:
            jsc.setLocalProperty(key, "true")
            self.interrupt_set = id(jsc)
        if not self.own_description(jsc):
            jsc.setLocalProperty("spark.job.description", first_line(self.code))

    def own_description(self, jsc: Any) -> bool:
        """Whether the notebook set its own job description in context `jsc`."""
        return self.described is not None and self.described[0] == id(jsc)
