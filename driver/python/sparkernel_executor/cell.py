"""The running cell as the Spark side sees it: whether one runs, its number and code, its
Spark job group (its progress, and what an interrupt cancels) and its jobs' last title."""
from __future__ import annotations

import threading
from typing import Any


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
        self.group: str | None = None
        self.title: tuple[int, str] | None = None  # the context's last title
        self.fixed_title = False  # %%sql titles its jobs itself
        self.jvm_used = False  # a JVM call from this thread since the job group was set
        # The job description the notebook set (setJobDescription, setJobGroup's, or the
        # local property), with its context's id: it stays the jobs' description, cell
        # after cell, as on PySpark; the kernel's titles give way to it.
        self.described: tuple[int, str] | None = None
        self.joining = False  # the kernel's own setJobGroup is running

    def user_call(self) -> bool:
        """Whether the caller is the cell's own code (main thread, in a cell)."""
        return self.running and threading.current_thread() is threading.main_thread()

    def join_group(self, sc: Any) -> None:
        """Puts the running cell's jobs of context `sc` in the cell's job group: its
        progress, and what an interrupt cancels."""
        if sc is None or not self.running or self.count <= 0:
            return
        group = f"sparkernel-{self.count}"
        text = self.described[1] if self.described is not None and \
            self.own_description(getattr(sc, "_jsc", None)) else first_line(self.code)
        self.joining = True
        try:
            sc.setJobGroup(group, text, interruptOnCancel=True)
            self.group, self.title, self.jvm_used = group, None, False
        except Exception:
            self.group = None
        finally:
            self.joining = False

    def own_description(self, jsc: Any) -> bool:
        """Whether the notebook set its own job description in context `jsc`."""
        return self.described is not None and self.described[0] == id(jsc)
