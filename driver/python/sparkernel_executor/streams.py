"""sys.stdout and sys.stderr for the shell: text goes to the kernel as "stream" frames on
the same pipe as display data and results, so a print and a display stay in order. A
background thread flushes what a running cell has written every 50 ms. Bytes written to
fd 1 and 2 directly (C extensions, subprocesses, the JVM) reach the kernel through the
pipes it captured."""
from __future__ import annotations

import io
import threading
import time

from .frames import Channel

FLUSH_SIZE = 1 << 16


class FrameStream(io.TextIOBase):
    def __init__(self, channel: Channel, name: str, fd: int) -> None:
        super().__init__()
        self._channel = channel
        self._name = name
        self._fd = fd
        self._parts: list[str] = []
        self._size = 0
        self._lock = threading.RLock()

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._parts.append(text)
            self._size += len(text)
            if self._size >= FLUSH_SIZE:
                self._flush_locked()
        return len(text)

    def _flush_locked(self) -> None:
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        self._channel.send({"type": "stream", "name": self._name, "text": text})

    def flush(self) -> None:
        # The lock is held while sending so two flushes cannot overtake each other.
        with self._lock:
            self._flush_locked()


class Flusher(threading.Thread):
    """Flushes the streams every 50 ms while a cell runs, every 200 ms otherwise (output
    from background threads between cells)."""

    def __init__(self, *streams: FrameStream) -> None:
        super().__init__(name="sparkernel-flusher", daemon=True)
        self.streams = streams
        self.busy = threading.Event()

    def run(self) -> None:
        while True:
            time.sleep(0.05 if self.busy.is_set() else 0.2)
            for s in self.streams:
                try:
                    s.flush()
                except OSError:
                    return


def flush_all(*streams: FrameStream) -> None:
    for s in streams:
        s.flush()
