"""sys.stdout and sys.stderr for the shell: text goes to the kernel as "stream" frames on
the same pipe as display data and results, so a print and a display stay in order. The
streams are ordinary io.TextIOWrapper / io.BufferedWriter stacks (C speed, the buffered
writer's lock serialises flushes from different threads) over a raw writer that turns
each flushed chunk into a frame. A background thread flushes every 50 ms while a cell
runs. Bytes written to fd 1 and 2 directly (C extensions, subprocesses, the JVM) reach the
kernel through the pipes it captured."""
from __future__ import annotations

import codecs
import io
import os
import signal
import threading
import time

from .frames import Channel

BUFFER_SIZE = 1 << 16

# The main thread is inside FrameRaw.write. A KeyboardInterrupt raised there, after the
# frame went out, makes the buffered writer keep the data and send it again at the next
# flush (seen: "before" twice when an interrupt came while print(..., flush=True) returned).
# The SIGINT handler asks main_thread_sending() and, while it is True, delivers the
# interrupt a moment later instead (interrupt_later).
_main_sending = False
_MAIN = threading.main_thread().ident


def main_thread_sending() -> bool:
    return _main_sending


def interrupt_later(delay: float = 0.01) -> None:
    """SIGINT again in `delay` seconds, from a helper thread: the handler runs once the main
    thread is out of the write."""
    t = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    t.daemon = True
    t.start()


class FrameRaw(io.RawIOBase):
    def __init__(self, channel: Channel, name: str, fd: int) -> None:
        super().__init__()
        self._channel = channel
        self._stream = name
        self._fd = fd
        self.name = f"<{name}>"
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, data: bytes) -> int:  # type: ignore[override]
        global _main_sending
        # An interrupt before this line: nothing sent, the buffered writer keeps the data.
        main = threading.get_ident() == _MAIN
        if main:
            _main_sending = True
        try:
            n = len(data)
            text = self._decoder.decode(bytes(data))  # a split character waits for the rest
            if text:
                self._channel.send({"type": "stream", "name": self._stream, "text": text})
        finally:
            if main:  # nothing after this that lets a signal handler run before the return
                _main_sending = False
        return n


class OutStream(io.TextIOWrapper):
    """The class of the shell's sys.stdout and sys.stderr: a TextIOWrapper (every method
    C's), named and placed as ipykernel's stream class. Libraries tell a cell's output from
    a pipe by that class, as they tell a notebook from a terminal by the shell's name (see
    shell.ZMQInteractiveShell): click keeps ANSI colours for a stream whose class comes from
    a module under `ipykernel.` and strips them from any other stream that is not a tty
    (click._compat._is_jupyter_kernel_output), so `click.secho` was colourless here and
    coloured on ipykernel. It is not ipykernel's class: `isinstance(sys.stdout,
    ipykernel.iostream.OutStream)` stays False, so code that goes on to use that class's
    own attributes (its session, its thread) does not take this stream for one."""


OutStream.__module__ = "ipykernel.iostream"


def frame_stream(channel: Channel, name: str, fd: int) -> io.TextIOWrapper:
    raw = FrameRaw(channel, name, fd)
    return OutStream(io.BufferedWriter(raw, BUFFER_SIZE), encoding="UTF-8",  # as ipykernel names it
                     errors="replace", line_buffering=False, write_through=False)


class Flusher(threading.Thread):
    """Flushes the streams every 50 ms while a cell runs, every 200 ms otherwise (output
    from background threads between cells)."""

    def __init__(self, *streams: io.TextIOWrapper) -> None:
        super().__init__(name="sparkernel-flusher", daemon=True)
        self.streams = streams
        self.busy = threading.Event()

    def run(self) -> None:
        while True:
            time.sleep(0.05 if self.busy.is_set() else 0.2)
            for s in self.streams:
                try:
                    s.flush()
                except (OSError, ValueError):
                    return
                except RuntimeError:
                    pass  # a flush already in progress on another thread


def flush_all(*streams: io.TextIOBase) -> None:
    for s in streams:
        s.flush()
