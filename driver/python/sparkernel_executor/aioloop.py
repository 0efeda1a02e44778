"""The event loop between cells, as ipykernel has one (issue 17, item 8).

ipykernel runs every cell inside its asyncio loop, and the loop runs while the kernel
waits for the next request. Notebooks depend on both: `asyncio.run()` and
`loop.run_until_complete()` refuse inside a cell ("already running"), top-level `await`
runs on that loop, and a task started with `asyncio.ensure_future` goes on running between
cells. Here the executor waits for its next command by running one persistent loop until
the command pipe is readable (asyncio's own selector, no thread), and a cell runs with
that loop marked as running in this thread, which is what asyncio.get_running_loop(),
asyncio.run() and loop.is_running() consult. A cell with top-level await is run on the loop
itself (IPython's loop_runner).

Written by hand, and small, because neither IPython (its own loop only runs during an
`await` cell) nor the standard library offers "a loop that runs while we block on a pipe".
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from asyncio import events
from typing import Any, Iterator


class CellLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def wait(self, fds: list[int]) -> None:
        """Runs the loop (the notebook's tasks, callbacks from other threads) until one
        of fds is readable."""
        loop = self.loop
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        for fd in fds:
            loop.add_reader(fd, wake)
        try:
            loop.run_until_complete(ready)
        finally:
            for fd in fds:
                loop.remove_reader(fd)

    def _mark(self, running: bool) -> None:
        """Whether the loop counts as running in this thread. BaseEventLoop keeps its
        running thread in _thread_id (is_running() reads it), which run_forever sets."""
        events._set_running_loop(self.loop if running else None)
        self.loop._thread_id = threading.get_ident() if running else None  # type: ignore

    @contextlib.contextmanager
    def cell(self) -> Iterator[None]:
        """The loop counts as running while a cell runs, as in ipykernel."""
        self._mark(True)
        try:
            yield
        finally:
            self._mark(False)

    def run(self, coro: Any) -> Any:
        """IPython's loop_runner: a cell with top-level await runs on this loop (unmarked
        first: run_until_complete refuses a loop that counts as running)."""
        self._mark(False)
        try:
            return self.loop.run_until_complete(coro)
        finally:
            self._mark(True)
