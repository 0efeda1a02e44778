"""Background warm-up: a value (the SparkSession, in the driver issue) built on a thread
when the executor starts, so the user's first cell does not pay for it, and awaited by
the first cell that needs it."""
from __future__ import annotations

import threading
from typing import Any, Callable


class Warm:
    def __init__(self, name: str, build: Callable[[], Any]) -> None:
        self.name = name
        self._build = build
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"warm-{name}", daemon=True)

    def start(self) -> "Warm":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._value = self._build()
        except BaseException as exc:  # reported to the cell that asks for the value
            self._error = exc
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name} is still starting")
        if self._error is not None:
            raise self._error
        return self._value
