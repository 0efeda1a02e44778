"""The frame protocol with the kernel: a 4-byte big-endian length, then UTF-8 JSON.

Commands arrive on one pipe, events leave on another. A frame is never torn by an
interrupt: SIGINT is held back while a frame is written or read, and only the wait for
the next command can be interrupted."""
from __future__ import annotations

import json
import math
import os
import select
import signal
import struct
import threading
from typing import Any, Callable

_HEADER = struct.Struct(">I")


def _clean(value: Any) -> Any:
    """Replaces NaN and infinities (which JSON cannot carry) with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(obj: dict) -> bytes:
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=repr)
    except ValueError:
        text = json.dumps(_clean(obj), ensure_ascii=False, allow_nan=False, default=repr)
    data = text.encode("utf-8", "replace")
    return _HEADER.pack(len(data)) + data


class _SigintHeld:
    """Holds SIGINT back (main thread only: Python runs handlers there)."""

    def __enter__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc: object) -> None:
        if self.main:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


class Channel:
    def __init__(self, cmd_fd: int, event_fd: int, wakeup_fd: int | None = None) -> None:
        self._cmd = cmd_fd
        self._event = event_fd
        # Read end of signal.set_wakeup_fd's pipe: a SIGTERM or SIGINT that the kernel
        # delivers to another thread of ours must still end the main thread's wait.
        self._wakeup = wakeup_fd
        self._lock = threading.Lock()
        self._buf = bytearray()
        # Commands read while input() waited for its answer, handled after the cell.
        self.deferred: list[dict] = []

    def send(self, obj: dict) -> None:
        frame = memoryview(encode(obj))
        with _SigintHeld(), self._lock:
            while frame:
                frame = frame[os.write(self._event, frame):]

    def _next_frame(self) -> dict | None | bool:
        if len(self._buf) < 4:
            return False
        (n,) = _HEADER.unpack_from(self._buf)
        if len(self._buf) < 4 + n:
            return False
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        return json.loads(body)

    def recv(self, idle: Callable[[list[int]], None] | None = None) -> dict | None:
        """The next command, or None when the kernel has closed the pipe. Only the wait
        (select) can raise KeyboardInterrupt; bytes read are never lost. idle, when
        given, is what runs while nothing is readable (the event loop between cells)."""
        while True:
            frame = self._next_frame()
            if frame is not False:
                return frame  # type: ignore[return-value]
            fds = [self._cmd] if self._wakeup is None else [self._cmd, self._wakeup]
            if idle is not None:
                idle(fds)
            ready, _, _ = select.select(fds, [], [])
            if self._wakeup in ready:
                try:
                    os.read(self._wakeup, 512)  # Python runs the handler on its way back
                except BlockingIOError:
                    pass
                if self._cmd not in ready:
                    continue
            with _SigintHeld():
                chunk = os.read(self._cmd, 1 << 16)
                if not chunk:
                    return None
                self._buf += chunk
