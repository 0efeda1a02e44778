"""A job on a background thread whose result (or exception) is awaited by whoever needs
it: the Spark session's start and stop jobs, so the user's first cell does not pay for the
start, and each job waits for the one before."""
from __future__ import annotations

import threading
from typing import Any, Callable

from .quiet import own_thread


class BackgroundJob:
    def __init__(self, name: str, build: Callable[[], Any]) -> None:
        self.name = name
        self._build = build
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        # "warm-": the threads' name before this class had its own (thread dumps, debugger).
        self._thread = own_thread(threading.Thread(target=self._run, name=f"warm-{name}",
                                                   daemon=True))

    def start(self) -> "BackgroundJob":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._value = self._build()
        except BaseException as exc:  # reported to the cell that asks for the value
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name} is still starting")
        if self._error is not None:
            raise self._error
        return self._value
