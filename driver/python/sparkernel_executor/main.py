"""The executor's main loop: read a command, run it in the shell, send the reply."""
from __future__ import annotations

import importlib
import os
import platform
import signal
import sys
import threading
import types
from typing import Any, Callable

from . import __version__
from .aioloop import CellLoop
from .debugger import Debugger, available as debugger_available, untraced
from .frames import Channel
from .quiet import install as keep_kernel_calls_out_of_logs, own_thread
from .spark import Spark, cancel_cell_jobs, stop_spark
from .streams import Flusher, flush_all, frame_stream, interrupt_later, main_thread_sending

_executing = False


def _on_sigint(signum: int, frame: Any) -> None:
    # Only a running cell is interrupted; between cells the signal is ignored.
    if _executing:
        if main_thread_sending():  # a frame of output going out: not in the middle of it
            interrupt_later()
            return
        if cancel_cell_jobs(frame):  # the cell's Spark jobs stop in the JVM too
            return  # raised as the cell's JVM call returns (spark.py)
        raise KeyboardInterrupt


STOP_DEADLINE_S = 20.0


def _on_sigterm(signum: int, frame: Any) -> None:
    """The kernel asked us to go, or died (PR_SET_PDEATHSIG sends SIGTERM when it is
    killed, even with SIGKILL). Between cells SystemExit unwinds the main loop and the
    atexit handlers stop the session. In a cell, IPython would catch SystemExit and go
    on, so the session is stopped from a thread (its application leaves the master, its
    running jobs end) and the process exits when that is done, or after a deadline."""
    _stopping()
    if not _executing:
        raise SystemExit(0)

    def terminate() -> None:
        try:
            stop_spark()  # stopping the context cancels the cell's running jobs too
        finally:
            os._exit(0)

    threading.Thread(target=terminate, name="terminate", daemon=True).start()


def _stopping() -> None:
    """From here on the process only stops its session and exits. The kernel may exit
    first without waiting (its clients wait for the kernel, not for Spark), and then its
    death sends SIGTERM (PR_SET_PDEATHSIG): ignored, so it cannot cut the stop short. A
    stop that hangs ends at a deadline; the JVM exits when its stdin closes with us. What
    the stop prints has no cell to go to, and the kernel's pipes may be closed: it goes to
    /dev/null rather than failing the stop with a broken pipe."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name in ("stdout", "stderr"):
        try:
            getattr(sys, name).flush()
        except (OSError, ValueError):
            pass
        setattr(sys, name, open(os.devnull, "w"))
    deadline = threading.Timer(STOP_DEADLINE_S, os._exit, args=(0,))
    deadline.daemon = True
    deadline.start()


def _defer_terminal_frontend() -> None:
    """The IPython package imports its terminal front end (prompt_toolkit and the embed
    shell, about 80 ms of a 270 ms start) on any import, and a notebook never uses it.
    A stand-in module loads the real one the first time anything asks for it."""
    name = "IPython.terminal.embed"
    if name in sys.modules:
        return
    stub = types.ModuleType(name)

    def real() -> types.ModuleType:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        return importlib.import_module(name)

    def embed(*args: Any, **kwargs: Any) -> Any:
        return real().embed(*args, **kwargs)

    def getattr_(attr: str) -> Any:
        if attr.startswith("__"):  # the import system probes __path__ and friends
            raise AttributeError(attr)
        return getattr(real(), attr)

    stub.embed = embed  # type: ignore[attr-defined]
    stub.__getattr__ = getattr_  # type: ignore[attr-defined]
    sys.modules[name] = stub


def language_info() -> dict:
    return {
        "name": "python",
        "version": platform.python_version(),
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "ipython3",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "nbconvert_exporter": "python",
    }


class Executor:
    def __init__(self, channel: Channel) -> None:
        from .shell import make_shell  # imports IPython: after _defer_terminal_frontend()

        self.channel = channel
        self.shell, self.stdin = make_shell(channel)
        try:  # the `comm` package comes with ipykernel, not with IPython: optional
            from . import comms
        except ImportError as exc:
            comms = None
            channel.send({"type": "log", "message": "comms off: %s" % exc})
        self.comms = comms
        self.shell.kernel.comm_manager = comms.install(channel) if comms else None
        self.spark = Spark(channel, self.shell)
        self.debugger = Debugger(channel.send, self.shell)
        self.loop = CellLoop()
        self.shell.loop_runner = self.loop.run  # top-level await on the loop between cells
        # The command pipe's commands (main thread), each handler answering as its
        # command wants: a reply, a `synced`, or Spark's spark_state events.
        self.commands: dict[str, Callable[[dict], None]] = {
            "execute": self._replying(self.execute), "complete": self._replying(self.complete),
            "inspect": self._replying(self.inspect),
            "is_complete": self._replying(self.is_complete),
            "comm_open": self.comm, "comm_msg": self.comm, "comm_close": self.comm,
            "comm_info": self.comm, "sync": self.sync, **self.spark.commands,
        }
        # The control pipe's (its own thread, at any time).
        self.control: dict[str, Callable[[dict], None]] = {
            "debug_request": self.debug_request, **self.spark.control,
        }

    def reply(self, content: dict) -> None:
        flush_all(sys.stdout, sys.stderr)
        self.channel.send({"type": "reply", "content": content})

    def execute(self, msg: dict) -> dict:
        global _executing
        shell = self.shell
        shell.last_error = None
        self.stdin.allowed = bool(msg.get("allow_stdin", False))
        shell.execution_count = int(msg.get("execution_count", 1))
        result = None
        # Each cell runs with the executor's SIGINT handler, as each of ipykernel's runs with
        # its own: a handler a cell installed (the user's, or PySpark's from a context built
        # where the kernel does not see it) lasts until that cell's end.
        signal.signal(signal.SIGINT, _on_sigint)
        try:
            _executing = True
            if self.spark.before_cell(msg):  # False: no session for it, its error shown
                with self.loop.cell():
                    result = shell.run_cell(msg.get("code", ""), store_history=bool(
                        msg.get("store_history", True)), silent=bool(msg.get("silent", False)))
        except KeyboardInterrupt:
            shell.showtraceback()  # landed between the cell and us: still this cell's
        finally:
            _executing = False
            signal.signal(signal.SIGINT, _on_sigint)
            self.spark.end_cell()
        if result is not None and result.success:
            content: dict = {"status": "ok",
                             "user_expressions": shell.user_expressions(
                                 msg.get("user_expressions") or {})}
        else:
            content = {"status": "error", **self._error_of(result),
                       "user_expressions": {}}
        content["payload"] = shell.payload_manager.read_payload()
        shell.payload_manager.clear_payload()
        return content

    def _error_of(self, result: Any) -> dict:
        """The reply's error as ipykernel words it: the exception IPython recorded (a
        UsageError shows no traceback, but keeps its name and message)."""
        err = None if result is None else (result.error_before_exec or result.error_in_exec)
        shown = self.shell.last_error
        if err is None:  # the session's error, shown before the cell ran
            return shown or {"ename": "Error", "evalue": "the cell failed", "traceback": []}
        return {"ename": type(err).__name__, "evalue": str(err),
                "traceback": shown["traceback"] if shown else []}

    def complete(self, msg: dict) -> dict:
        from IPython.core.completer import provisionalcompleter, rectify_completions

        code = msg.get("code", "")
        pos = msg.get("cursor_pos")
        pos = len(code) if pos is None else int(pos)
        with provisionalcompleter():
            comps = list(rectify_completions(code, self.shell.Completer.completions(code, pos)))
        if comps:
            start, end = comps[0].start, comps[0].end
        else:
            start = end = pos
        types = [{"start": c.start, "end": c.end, "text": c.text, "type": c.type,
                  "signature": c.signature} for c in comps]
        return {"status": "ok", "matches": [c.text for c in comps], "cursor_start": start,
                "cursor_end": end, "metadata": {"_jupyter_types_experimental": types}}

    def inspect(self, msg: dict) -> dict:
        from IPython.utils.tokenutil import token_at_cursor

        code = msg.get("code", "")
        pos = msg.get("cursor_pos")
        pos = len(code) if pos is None else int(pos)
        name = token_at_cursor(code, pos)
        try:
            data = self.shell.object_inspect_mime(name,
                                                  detail_level=int(msg.get("detail_level", 0)))
            if not self.shell.enable_html_pager:  # as ipykernel: HTML only when asked for
                data.pop("text/html", None)
            found = True
        except KeyError:
            data, found = {}, False
        return {"status": "ok", "found": found, "data": data, "metadata": {}}

    def is_complete(self, msg: dict) -> dict:
        status, indent = self.shell.input_transformer_manager.check_complete(
            msg.get("code", ""))
        out = {"status": status}
        if status == "incomplete":
            out["indent"] = " " * (indent or 0)
        return out

    def handle(self, msg: dict) -> None:
        header = msg.pop("parent_header", None)
        if isinstance(header, dict):  # the Jupyter request this command answers
            self.shell.set_parent({"header": header})
        dispatch(self.commands, msg)

    def _replying(self, handler: Callable[[dict], dict]) -> Callable[[dict], None]:
        """A request answered by the reply content `handler` returns."""
        def reply(msg: dict) -> None:
            try:
                content = handler(msg)
            except KeyboardInterrupt:
                content = {"status": "error", "ename": "KeyboardInterrupt", "evalue": "",
                           "traceback": []}
            except Exception as exc:  # a bug in a hook must not kill the executor
                content = {"status": "error", "ename": type(exc).__name__,
                           "evalue": str(exc), "traceback": []}
            self.reply(content)
        return reply

    def comm(self, msg: dict) -> None:
        kind = msg["type"]
        try:
            if self.comms is None:  # no comm package: no comms, none to list
                content = {"comms": {}, "status": "ok"} if kind == "comm_info" else {}
            else:
                content = self.comms.handle(kind, msg) or {}
        except Exception as exc:  # a handler's bug is the cell-less equivalent of an error
            self.shell.showtraceback()
            content = {"status": "error", "ename": type(exc).__name__,
                       "evalue": str(exc), "traceback": []}
        self.reply(content)

    def sync(self, msg: dict) -> None:
        """Every command before this one is answered: the kernel learns whether a reply
        it could not read was the one it waits for."""
        flush_all(sys.stdout, sys.stderr)
        self.channel.send({"type": "synced", "seq": msg.get("seq")})

    def debug_request(self, msg: dict) -> None:
        self.debugger.submit(msg.get("id"), msg.get("content"))


def dispatch(commands: dict[str, Callable[[dict], None]], msg: dict) -> None:
    """Runs the handler of the command's type; a stale input_reply after an interrupt, or
    a command nobody handles, is dropped with nothing to answer."""
    kind = msg.get("type")
    handler = commands.get(kind) if isinstance(kind, str) else None
    if handler is not None:
        handler(msg)


def _control(ctl: Channel, executor: Executor) -> None:
    """The control pipe: the kernel's commands that must act while a cell runs or waits at
    a breakpoint (the debugger's requests, a session giving cores back to another
    application mid-job), read by this thread at any time. Only the reading end is this
    channel's; its events go out through the main channel."""
    untraced(threading.current_thread())
    while True:
        try:
            msg = ctl.recv()
        except (OSError, ValueError):
            return  # a frame that is not JSON: the kernel is not ours to trust any more
        if msg is None:
            return  # the kernel closed it: the process is stopping
        dispatch(executor.control, msg)


def _argv_as_ipykernel() -> None:
    """sys.argv as ipykernel's in this Python: its launcher's path, then `-f <connection
    file>` (passed on by the kernel). argparse's usage and error lines then name
    ipykernel_launcher.py as there, and code that tells a notebook by
    `sys.argv[0].endswith("ipykernel_launcher.py")` finds one. Looked up without importing
    ipykernel; our own path stays where it is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("ipykernel_launcher")
    except (ImportError, ValueError):
        return
    if spec is not None and spec.origin:
        sys.argv[0] = spec.origin


def _package_dir() -> str:
    """The directory this package was imported from, which the kernel (executor.c) puts
    first on PYTHONPATH so that `python -m sparkernel_executor` finds it."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _environment_as_ipykernel() -> None:
    """PYTHONPATH and PYTHONIOENCODING as the user's, without the kernel's (what %env,
    os.environ and a cell's subprocesses see). executor.c composes both: this package's
    directory first on PYTHONPATH (the user's entries after it), and PYTHONIOENCODING only
    when the user had none, marked by SPARKERNEL_OWN_IOENCODING. Both undone here."""
    rest = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if rest[0] and os.path.abspath(rest[0]) == _package_dir():
        if any(rest[1:]):
            os.environ["PYTHONPATH"] = os.pathsep.join(rest[1:])
        else:
            os.environ.pop("PYTHONPATH", None)
    if os.environ.pop("SPARKERNEL_OWN_IOENCODING", None):
        os.environ.pop("PYTHONIOENCODING", None)


def _sys_path_as_ipykernel() -> None:
    """sys.path as ipykernel's: not the directory the kernel started in, which `python -m`
    put first, nor this package's directory (imported by now), but '', the current
    directory whatever a cell chdirs to, before the first site-packages, after the
    standard library (IPython's init_path). A notebook's own `queue.py` or `code.py` then
    does not hide the standard library's, and after `%cd ..` or os.chdir() the notebook
    imports from where it now is, as on ipykernel."""
    ours = _package_dir()
    if sys.path and (sys.path[0] == "" or os.path.abspath(sys.path[0]) == os.getcwd()):
        del sys.path[0]
    for i, entry in enumerate(sys.path):
        if entry and os.path.abspath(entry) == ours:
            del sys.path[i]
            break
    if "" in sys.path or sys.flags.safe_path:
        return
    for idx, entry in enumerate(sys.path):
        if os.path.basename(entry) in ("site-packages", "dist-packages"):
            break
    else:
        idx = 0
    sys.path.insert(idx, "")


def main() -> None:
    _argv_as_ipykernel()
    _environment_as_ipykernel()
    _sys_path_as_ipykernel()
    cmd_fd = int(os.environ.pop("SPARKERNEL_CMD_FD", "3"))
    event_fd = int(os.environ.pop("SPARKERNEL_EVENT_FD", "4"))
    os.set_inheritable(cmd_fd, False)
    os.set_inheritable(event_fd, False)
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Python runs signal handlers in the main thread only, and a signal the kernel sends
    # may land on any thread: the wakeup pipe ends the main thread's wait for commands.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    channel = Channel(cmd_fd, event_fd, wake_r)
    sys.stdout = frame_stream(channel, "stdout", 1)
    sys.stderr = frame_stream(channel, "stderr", 2)
    flusher = untraced(Flusher(sys.stdout, sys.stderr))  # output goes on at a breakpoint
    flusher.start()
    _defer_terminal_frontend()
    keep_kernel_calls_out_of_logs()
    executor = Executor(channel)
    ctl_fd = int(os.environ.pop("SPARKERNEL_CTL_FD", "-1"))
    if ctl_fd >= 0:
        os.set_inheritable(ctl_fd, False)
        own_thread(threading.Thread(target=_control, args=(Channel(ctl_fd, -1), executor),
                                    name="control", daemon=True)).start()
    channel.send({"type": "ready", "language_info": language_info(), "pid": os.getpid(),
                  "executor_version": __version__, "debugger": debugger_available()})
    while True:
        try:
            msg = channel.recv(idle=executor.loop.wait)
        except KeyboardInterrupt:
            continue
        if msg is None:
            _stopping()
            break  # the kernel closed the pipe: shut down cleanly
        flusher.busy.set()
        try:
            executor.handle(msg)
            while channel.deferred:
                executor.handle(channel.deferred.pop(0))
        finally:
            flusher.busy.clear()
